"""The framed serial protocol: pure encode / decode, no I/O.

It carries the register map's operations (read and write holding registers, write and
read coils) with larger limits than Modbus, so 63 slot-table rows travel in one frame::

    A5 5A | unit u8 | seq u8 | op u8 | length u16 | payload (length bytes) | CRC-32 u32

Integers big-endian; the CRC-32 (IEEE, zlib.crc32) covers unit .. payload. A reply
repeats the request's unit, seq and op; an error reply has ``op | 0x80`` and a one-byte
payload, the Modbus exception code. Payloads:

    op 0x01 read coils     req: addr u16, count u16     reply: count bytes (0/1)
    op 0x03 read registers req: addr u16, count u16     reply: count u16 values
    op 0x05 write coil     req: addr u16, value u8      reply: the request payload
    op 0x10 write regs     req: addr u16, values u16..  reply: addr u16, count u16

A receiver looks for the sync bytes, checks the length against ``MAX_PAYLOAD`` and the
CRC, and on any failure drops one byte and searches again (resynchronisation), so
garbage on the line costs the frames it overlaps, never the ones after it.
"""

from __future__ import annotations

import struct
import zlib
from typing import NamedTuple

SYNC = b"\xa5\x5a"
_HEAD = struct.Struct(">2sBBBH")  # sync, unit, seq, op, length
_CRC = struct.Struct(">I")
HEADER_BYTES = _HEAD.size
OVERHEAD = HEADER_BYTES + _CRC.size

OP_READ_COILS = 0x01
OP_READ = 0x03
OP_WRITE_COIL = 0x05
OP_WRITE = 0x10
ERROR_FLAG = 0x80
OPS = (OP_READ_COILS, OP_READ, OP_WRITE_COIL, OP_WRITE)

MAX_REGISTERS = 2048  # an upload command of 63 rows per write (3 in Modbus)
MAX_PAYLOAD = 4 + 2 * MAX_REGISTERS


class Frame(NamedTuple):
    unit: int
    seq: int
    op: int
    payload: bytes

    @property
    def is_error(self) -> bool:
        return bool(self.op & ERROR_FLAG)


class Decoded(NamedTuple):
    used: int  # bytes consumed from the buffer (garbage included)
    frame: Frame | None  # None: need more bytes
    skipped: int  # garbage bytes dropped while resynchronising


def encode(unit: int, seq: int, op: int, payload: bytes = b"") -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    head = _HEAD.pack(SYNC, unit, seq & 0xFF, op, len(payload))
    return head + payload + _CRC.pack(zlib.crc32(head[2:] + payload))


def decode(buf: bytes | bytearray) -> Decoded:
    """The first complete, valid frame of ``buf``, or how much garbage to drop."""
    pos, n = 0, len(buf)
    while True:
        at = buf.find(SYNC, pos)
        if at < 0:  # keep a trailing first sync byte: the second may follow
            keep = 1 if n and buf[-1] == SYNC[0] else 0
            return Decoded(n - keep, None, n - keep)
        if n - at < HEADER_BYTES:
            return Decoded(at, None, at)
        _, unit, seq, op, length = _HEAD.unpack_from(buf, at)
        if length > MAX_PAYLOAD:  # an impossible length: this sync was garbage
            pos = at + 1
            continue
        end = at + HEADER_BYTES + length + _CRC.size
        if n < end:
            return Decoded(at, None, at)
        body = bytes(buf[at + 2 : end - _CRC.size])
        (crc,) = _CRC.unpack_from(buf, end - _CRC.size)
        if crc != zlib.crc32(body):
            pos = at + 1
            continue
        return Decoded(end, Frame(unit, seq, op, body[5:]), at)


class FrameBuffer:
    """Bytes in, frames out; counts what it had to throw away."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.garbage_bytes = 0
        self.resyncs = 0

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames = []
        while self._buf:
            used, frame, skipped = decode(self._buf)
            if skipped:
                self.garbage_bytes += skipped
                self.resyncs += 1
            del self._buf[:used]
            if frame is None:
                break
            frames.append(frame)
        return frames

    @property
    def pending(self) -> int:
        return len(self._buf)

    def flush(self) -> int:
        """Drop a partial frame (the line went quiet in the middle of it)."""
        dropped = len(self._buf)
        if dropped:
            self.garbage_bytes += dropped
            self.resyncs += 1
        self._buf.clear()
        return dropped


# --- payloads ---------------------------------------------------------------------------


def read_request(addr: int, count: int) -> bytes:
    return struct.pack(">HH", addr, count)


def write_request(addr: int, values: list[int] | tuple[int, ...]) -> bytes:
    return struct.pack(f">H{len(values)}H", addr, *values)


def coil_request(addr: int, value: bool) -> bytes:
    return struct.pack(">HB", addr, 1 if value else 0)


def registers(payload: bytes) -> list[int]:
    return list(struct.unpack(f">{len(payload) // 2}H", payload))
