"""The framed serial protocol (``firmware_bridge.framed``) over pyserial.

One port per link, shared by every router on that RS-485 line; one request in flight
per port (the link's lock). Replies are matched on unit, sequence number and op, so a
late reply to an earlier request is recognised and dropped, never taken for the answer
to the current one.
"""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import Sequence

import serial

from firmware_bridge import framed
from firmware_bridge.driver.base import RoundTrip, RouterDriver, Transient
from firmware_bridge.driver.links import LinkPool, Shared
from firmware_bridge.errors import RouterRefused, RouterUnavailable
from firmware_bridge.fdio import write_all


class SerialLink:
    """A serial port read by the event loop; frames in, frames out."""

    def __init__(self, path: str, baud: int) -> None:
        try:
            self.port = serial.Serial(path, baudrate=baud, timeout=0, write_timeout=0)
        except (serial.SerialException, OSError) as exc:
            raise RouterUnavailable(f"cannot open {path}: {exc}") from exc
        self.fd = self.port.fileno()
        os.set_blocking(self.fd, False)
        self.buffer = framed.FrameBuffer()
        self.replies: asyncio.Queue[framed.Frame] = asyncio.Queue()
        self.seq = 0
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.fd, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        for frame in self.buffer.feed(data):
            self.replies.put_nowait(frame)

    async def send(self, data: bytes) -> None:
        await write_all(self.fd, data)

    def close(self) -> None:
        self._loop.remove_reader(self.fd)
        self.port.close()


_POOL: LinkPool[SerialLink] = LinkPool()


def reply_size(op: int, payload: bytes) -> int:
    """Bytes of the reply to a request: a read's registers, or an echo of 4 bytes."""
    if op == framed.OP_READ and len(payload) >= 4:
        return framed.OVERHEAD + 2 * int.from_bytes(payload[2:4], "big")
    return framed.OVERHEAD + 4


class FramedSerialDriver(RouterDriver):
    scheme = "serial"
    max_read = framed.MAX_REGISTERS
    max_write = framed.MAX_REGISTERS

    _shared: Shared[SerialLink] | None = None

    async def _connect(self) -> None:
        async def opener() -> SerialLink:
            try:
                return SerialLink(self.address.path, self.address.baud)
            except RouterUnavailable as exc:
                raise RouterUnavailable(exc.message, **self.where()) from None

        self._shared = await _POOL.acquire(self.address.link, opener)

    async def _disconnect(self) -> None:
        if self._shared is None:
            return
        self._shared = None
        await _POOL.release(self.address.link)

    async def _request(self, op: int, payload: bytes, trip: RoundTrip | None = None) -> bytes:
        assert self._shared is not None, "driver is not open"
        link, unit = self._shared.link, self.address.unit
        async with self._shared.lock.hold():
            link.seq = (link.seq + 1) & 0xFF
            seq = link.seq
            while not link.replies.empty():  # late replies to requests already given up
                link.replies.get_nowait()
            request = framed.encode(unit, seq, op, payload)
            # a reply cannot come before the request and the reply crossed the line:
            # frames of up to MAX_REGISTERS take a good part of a second at 115200 baud
            wire_s = (len(request) + reply_size(op, payload)) * 10 / self.address.baud
            if trip is not None:
                trip.sending()
            await link.send(request)
            async with asyncio.timeout(self.timeout + wire_s):
                while True:
                    reply = await link.replies.get()
                    if (reply.unit, reply.seq) == (unit, seq) and reply.op & 0x7F == op:
                        break
            if trip is not None:
                trip.received()
        if reply.is_error:
            code = reply.payload[0] if reply.payload else 0
            name = next((k for k, v in self.map.exceptions.items() if v == code), "unknown")
            raise RouterRefused(f"exception {code} ({name})", code=code, **self.where())
        return reply.payload

    async def _read(self, addr: int, count: int, trip: RoundTrip | None = None) -> list[int]:
        payload = await self._request(framed.OP_READ, framed.read_request(addr, count), trip)
        if len(payload) != 2 * count:
            raise Transient(f"reply has {len(payload)} bytes, expected {2 * count}")
        return framed.registers(payload)

    async def _write(self, addr: int, values: Sequence[int]) -> None:
        payload = await self._request(framed.OP_WRITE, framed.write_request(addr, tuple(values)))
        if payload != struct.pack(">HH", addr, len(values)):
            raise Transient("reply does not echo the write")

    async def _write_coil(self, addr: int, value: bool) -> None:
        request = framed.coil_request(addr, value)
        if await self._request(framed.OP_WRITE_COIL, request) != request:
            raise Transient("reply does not echo the coil write")
