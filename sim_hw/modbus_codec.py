"""Modbus on the twin's side of the wire: pure framing and PDU handling, no I/O.

* ``handle_pdu``: one request PDU to one reply PDU (function codes 1, 3, 5, 6, 15, 16;
  anything else answers exception 1);
* RTU: ``rtu_frame`` and ``RtuBuffer`` (frames found by function-code length and CRC-16,
  one byte dropped and the search repeated on any mismatch, a partial frame dropped when
  the line goes quiet);
* TCP: ``mbap_frame`` and ``decode_mbap`` (a header with a protocol id other than 0 or an
  impossible length is a protocol error: the connection is closed, as the standard says).
"""

from __future__ import annotations

import struct
from typing import NamedTuple, Protocol

MAX_READ = 125
MAX_WRITE = 123
MAX_COILS = 2000


class Device(Protocol):
    def read(self, addr: int, count: int, t: float) -> list[int]: ...

    def write(self, addr: int, values: list[int], t: float) -> None: ...

    def read_coils(self, addr: int, count: int, t: float) -> list[bool]: ...

    def write_coil(self, addr: int, value: bool, t: float) -> None: ...


class DeviceError(Protocol):
    code: int


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc_table()


def crc16(data: bytes | bytearray | memoryview) -> int:
    """Modbus CRC-16 (poly 0xA001, init 0xFFFF); sent low byte first."""
    crc = 0xFFFF
    for b in data:
        crc = (crc >> 8) ^ _TABLE[(crc ^ b) & 0xFF]
    return crc


def exception_pdu(function: int, code: int) -> bytes:
    return bytes((function | 0x80, code))


def handle_pdu(device: Device, pdu: bytes, t: float, error: type[Exception]) -> bytes:
    """Execute one request on ``device``; ``error`` is the device's exception type
    (carrying ``.code``), turned into an exception reply."""
    fc = pdu[0] if pdu else 0
    try:
        if fc == 3 and len(pdu) == 5:
            addr, count = struct.unpack_from(">HH", pdu, 1)
            if not 1 <= count <= MAX_READ:
                return exception_pdu(fc, 3)
            regs = device.read(addr, count, t)
            return struct.pack(f">BB{count}H", fc, 2 * count, *regs)
        if fc == 1 and len(pdu) == 5:
            addr, count = struct.unpack_from(">HH", pdu, 1)
            if not 1 <= count <= MAX_COILS:
                return exception_pdu(fc, 3)
            bits = device.read_coils(addr, count, t)
            packed = bytearray((count + 7) // 8)
            for i, b in enumerate(bits):
                packed[i // 8] |= b << (i % 8)
            return bytes((fc, len(packed))) + bytes(packed)
        if fc == 5 and len(pdu) == 5:
            addr, value = struct.unpack_from(">HH", pdu, 1)
            if value not in (0x0000, 0xFF00):
                return exception_pdu(fc, 3)
            device.write_coil(addr, value == 0xFF00, t)
            return pdu
        if fc == 6 and len(pdu) == 5:
            addr, value = struct.unpack_from(">HH", pdu, 1)
            device.write(addr, [value], t)
            return pdu
        if fc == 16 and len(pdu) >= 6:
            addr, count, nbytes = struct.unpack_from(">HHB", pdu, 1)
            if not 1 <= count <= MAX_WRITE or nbytes != 2 * count or len(pdu) != 6 + nbytes:
                return exception_pdu(fc, 3)
            device.write(addr, list(struct.unpack_from(f">{count}H", pdu, 6)), t)
            return pdu[:5]
        if fc == 15 and len(pdu) >= 6:
            addr, count, nbytes = struct.unpack_from(">HHB", pdu, 1)
            if not 1 <= count <= MAX_COILS or nbytes != (count + 7) // 8 or len(pdu) != 6 + nbytes:
                return exception_pdu(fc, 3)
            for i in range(count):
                device.write_coil(addr + i, bool(pdu[6 + i // 8] >> (i % 8) & 1), t)
            return pdu[:5]
    except error as exc:
        return exception_pdu(fc, exc.code)  # type: ignore[attr-defined]
    if fc in (1, 3, 5, 6, 15, 16):
        return exception_pdu(fc, 3)  # known function, malformed request
    return exception_pdu(fc, 1)


# --- RTU --------------------------------------------------------------------------------


def rtu_frame(unit: int, pdu: bytes) -> bytes:
    body = bytes((unit,)) + pdu
    return body + crc16(body).to_bytes(2, "little")


def _rtu_length(buf: bytearray) -> int | None:
    """Length of the request frame at the start of ``buf`` (None: need more bytes;
    0: not a request this server can frame)."""
    if len(buf) < 2:
        return None
    fc = buf[1]
    if fc in (1, 2, 3, 4, 5, 6):
        return 8
    if fc in (15, 16):
        return None if len(buf) < 7 else 9 + buf[6]
    if fc & 0x80 or fc == 0:
        return 0
    return -1  # unknown function: framed by the line going quiet


class RtuRequest(NamedTuple):
    unit: int
    pdu: bytes


class RtuBuffer:
    """Requests out of the byte stream of an RS-485 line (twin side)."""

    MAX_FRAME = 256

    def __init__(self) -> None:
        self.buf = bytearray()
        self.dropped = 0  # garbage bytes thrown away
        self.bad_frames = 0  # resynchronisations
        self._resyncing = False

    def feed(self, data: bytes) -> list[RtuRequest]:
        self.buf += data
        out = []
        while True:
            n = _rtu_length(self.buf)
            if n is None or n == -1 or n > len(self.buf):
                break
            if n > 0 and crc16(self.buf[: n - 2]) == int.from_bytes(self.buf[n - 2 : n], "little"):
                out.append(RtuRequest(self.buf[0], bytes(self.buf[1 : n - 2])))
                del self.buf[:n]
                self._resyncing = False
                continue
            self._drop(1)
        return out

    def idle(self) -> list[RtuRequest]:
        """The line went quiet: what is buffered is one frame (an unknown function),
        or garbage before frames the length rule could not find."""
        out: list[RtuRequest] = []
        if len(self.buf) > self.MAX_FRAME:
            self._drop(len(self.buf) - self.MAX_FRAME)
        while self.buf:
            buf = self.buf
            if len(buf) >= 4 and crc16(buf[:-2]) == int.from_bytes(buf[-2:], "little"):
                out.append(RtuRequest(buf[0], bytes(buf[1:-2])))
                buf.clear()
                break
            self._drop(1)
            out += self.feed(b"")
        self._resyncing = False
        return out

    def _drop(self, n: int) -> None:
        if not self._resyncing:
            self.bad_frames += 1
        self._resyncing = True
        self.dropped += n
        del self.buf[:n]


# --- TCP --------------------------------------------------------------------------------

_MBAP = struct.Struct(">HHHB")  # transaction, protocol, length (unit + pdu), unit
MAX_ADU = 260


def mbap_frame(tid: int, unit: int, pdu: bytes) -> bytes:
    return _MBAP.pack(tid, 0, len(pdu) + 1, unit) + pdu


class MbapRequest(NamedTuple):
    tid: int
    unit: int
    pdu: bytes


class MbapError(Exception):
    """The stream is not Modbus TCP: close the connection."""


def decode_mbap(buf: bytearray) -> tuple[int, MbapRequest | None]:
    if len(buf) < _MBAP.size:
        return 0, None
    tid, proto, length, unit = _MBAP.unpack_from(buf)
    if proto != 0 or not 2 <= length <= MAX_ADU - 6:
        raise MbapError(f"bad MBAP header (protocol {proto}, length {length})")
    end = 6 + length
    if len(buf) < end:
        return 0, None
    return end, MbapRequest(tid, unit, bytes(buf[_MBAP.size : end]))
