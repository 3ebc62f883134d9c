"""The twin's side of the wire: Modbus TCP listeners and pseudo-terminal serial lines.

Each router gets its own loopback TCP port (as behind its own gateway); all routers of a
serial transport share one pseudo-terminal, as they share one RS-485 line, and answer to
their unit ids. A link only moves bytes: it finds requests, hands them to the twin, and
applies the link faults the twin decides on (drop, corrupt, delay, offline), so framing
and retries are exercised for real.

``line_baud`` paces a serial line like a real one: a transaction completes no sooner
than its request and reply would take on the wire at that baud rate (8N1, 10 bits a
byte, plus the 3.5-character silences of RTU). Pseudo-terminals otherwise move bytes as
fast as the kernel copies them, whatever baud rate the port is set to.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass

from firmware_bridge import framed
from firmware_bridge.fdio import write_all
from firmware_bridge.tasks import stop_tasks
from sim_hw import modbus_codec as mb

GATEWAY_NO_RESPONSE = 0x0B  # Modbus exception 11: gateway target device failed to respond
RTU_GAP_CHARS = 7  # 3.5 character times of silence before the request and the reply


@dataclass
class Fate:
    """What the link does with one reply (decided by the twin, counted there)."""

    router: str
    drop: bool = False
    corrupt: bool = False
    delay_s: float = 0.0


# the twin: (unit, request) -> (fate, reply) or None when no router has that unit
# the twin: (unit, request, when the request was complete on a paced line or None: now)
# -> (fate, reply), or None when no router has that unit
ModbusHandler = Callable[[int, bytes, float | None], tuple[Fate, bytes] | None]
FramedHandler = Callable[[framed.Frame, float | None], tuple[Fate, framed.Frame] | None]
BadRequest = Callable[[str | None], None]  # router id, or None: every router on the line


SPIN_S = 0.0015  # the event loop wakes timers to the millisecond: spin the last stretch


async def _until(t: float) -> None:
    """Sleep until monotonic ``t`` to tens of microseconds, not the event loop's
    millisecond: a line's timing is what clock sync over it measures."""
    while (left := t - time.monotonic()) > 0:
        await asyncio.sleep(left - SPIN_S if left > SPIN_S else 0)


async def _hold(fate: Fate) -> bool:
    """Apply delay; True if the reply is to be sent."""
    if fate.delay_s:
        await asyncio.sleep(fate.delay_s)
    return not fate.drop


class TcpListener:
    """Modbus TCP for one router on a loopback port."""

    def __init__(self, router: str, handler: ModbusHandler, bad: BadRequest) -> None:
        self.router, self.handler, self.bad = router, handler, bad
        self.server: asyncio.Server | None = None
        self.port = 0
        self._conns: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    async def start(self, host: str, port: int = 0) -> None:
        self.server = await asyncio.start_server(self._serve, host, port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns[task] = writer
        buf = bytearray()
        try:
            while True:
                data = await reader.read(4096)
                if not data:
                    break
                buf += data
                while True:
                    try:
                        used, req = mb.decode_mbap(buf)
                    except mb.MbapError:
                        self.bad(self.router)
                        return  # not Modbus TCP: drop this connection, keep listening
                    if req is None:
                        break
                    del buf[:used]
                    answer = self.handler(req.unit, req.pdu, None)
                    if answer is None:  # no such unit behind this gateway
                        fate, pdu = Fate(self.router), mb.exception_pdu(req.pdu[0], 0x0B)
                    else:
                        fate, pdu = answer
                    if fate.corrupt:  # TCP has no CRC: answer as a gateway whose RTU side saw one
                        pdu = mb.exception_pdu(req.pdu[0], GATEWAY_NO_RESPONSE)
                    if await _hold(fate):
                        writer.write(mb.mbap_frame(req.tid, req.unit, pdu))
                        await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # loop shutdown: asyncio's stream callback cannot take a cancelled handler
        finally:
            self._conns.pop(task, None)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            for writer in self._conns.values():  # the reads end, the handlers return
                writer.transport.abort()
            await asyncio.gather(*self._conns, return_exceptions=True)
            await self.server.wait_closed()


class PtyLine:
    """One serial line on a pseudo-terminal: the twin holds the master (and keeps the
    slave open so the line survives clients coming and going); clients open ``path``."""

    def __init__(
        self,
        protocol: str,
        *,
        modbus: ModbusHandler | None = None,
        framed_handler: FramedHandler | None = None,
        bad: BadRequest,
        idle_s: float,
        line_baud: int | None = None,
    ) -> None:
        self.protocol = protocol
        self.modbus, self.framed_handler, self.bad = modbus, framed_handler, bad
        self.idle_s, self.line_baud = idle_s, line_baud
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self.rtu = mb.RtuBuffer()
        self.frames = framed.FrameBuffer()
        self.queue: asyncio.Queue[tuple[float, int, object]] = asyncio.Queue()
        self._first_byte: float | None = None
        self._idle: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.master, self._readable)
        self._worker = asyncio.create_task(self._work(), name=f"pty {self.path}")
        self.bytes_in = self.bytes_out = 0

    def _readable(self) -> None:
        try:
            data = os.read(self.master, 65536)
        except (BlockingIOError, OSError):
            return
        now = time.monotonic()
        if self._first_byte is None:
            self._first_byte = now
        self.bytes_in += len(data)
        if self._idle is not None:
            self._idle.cancel()
        self._idle = self._loop.call_later(self.idle_s, self._on_idle)
        self._collect(data, now)

    def _collect(self, data: bytes, now: float) -> None:
        if self.protocol == "rtu":
            before = self.rtu.bad_frames
            for req in self.rtu.feed(data):
                self._enqueue(now, req, 2 + 1 + len(req.pdu))
            if self.rtu.bad_frames != before:
                self.bad(None)
        else:
            before = self.frames.resyncs
            for frame in self.frames.feed(data):
                self._enqueue(now, frame, framed.OVERHEAD + len(frame.payload))
            if self.frames.resyncs != before:
                self.bad(None)

    def _enqueue(self, now: float, request: object, size: int) -> None:
        self.queue.put_nowait((self._first_byte or now, size, request))
        self._first_byte = None

    def _on_idle(self) -> None:
        self._idle = None
        now = time.monotonic()
        if self.protocol == "rtu":
            had = bool(self.rtu.buf)
            for req in self.rtu.idle():
                self._enqueue(now, req, 3 + len(req.pdu))
            if had:
                self.bad(None)
        elif self.frames.flush():
            self.bad(None)
        self._first_byte = None

    async def _work(self) -> None:
        while True:
            started, size, request = await self.queue.get()
            gap = RTU_GAP_CHARS if isinstance(request, mb.RtuRequest) else 0
            arrived = None
            if self.line_baud:  # a router acts once the request (and its silence) is in
                arrived = started + (size + gap / 2) * 10 / self.line_baud
                await _until(arrived)
            if isinstance(request, mb.RtuRequest):
                answer = self.modbus(request.unit, request.pdu, arrived) if self.modbus else None
                if answer is None:
                    continue  # another unit's request, or no router answers it
                fate, pdu = answer
                reply = mb.rtu_frame(request.unit, pdu)
                if fate.corrupt:
                    reply = reply[:-1] + bytes((reply[-1] ^ 0xFF,))
            else:
                assert isinstance(request, framed.Frame)
                got = self.framed_handler(request, arrived) if self.framed_handler else None
                if got is None:
                    continue
                fate, frame = got
                reply = framed.encode(*frame)
                if fate.corrupt:
                    reply = reply[:-1] + bytes((reply[-1] ^ 0xFF,))
            if self.line_baud:  # the transaction's time on a real line
                await _until(started + (size + len(reply) + gap) * 10 / self.line_baud)
            if await _hold(fate):
                await self._send(reply)

    async def _send(self, data: bytes) -> None:
        self.bytes_out += await write_all(self.master, data)

    async def stop(self) -> None:
        self._loop.remove_reader(self.master)
        if self._idle is not None:
            self._idle.cancel()
        failed = await stop_tasks(self._worker)
        if failed:
            raise failed[0]
        os.close(self.master)
        os.close(self.slave)
