"""What anyone on the bus can do without a key, for the attack tests: a relay that
records what the controller sends (a sniffer), a plain pymodbus client that forges
commits, arms, fault clears and slot-table writes from the register map alone, and a
raw replay of recorded requests.

The forgeries follow the map of the code under test: where the map has plain commit,
arm or clear-fault coils, the attacker uses them (as on a version 2 router); where it
has authenticated command blocks, it fills them with everything but a valid tag."""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct

from pymodbus.client import AsyncModbusTcpClient

from firmware_bridge.driver import parse_address
from firmware_bridge.registers import register_map

MAP = register_map()
COMMAND_BLOCKS = [b for b in MAP.blocks if b.name.startswith("cmd_")]


def _has(name: str) -> bool:
    try:
        MAP.field(name)
    except KeyError:
        return False
    return True


class RecordingRelay:
    """A TCP relay in front of one router's Modbus TCP port; ``requests`` holds every
    request ADU (MBAP header included) the client sent, in order."""

    def __init__(self, address: str) -> None:
        a = parse_address(address)
        self.target, self.unit = (a.host, a.port), a.unit
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> RecordingRelay:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for w in self._writers:  # the reads end, the handlers return (never cancel them:
            w.transport.abort()  # asyncio's stream callback cannot take a cancelled handler)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.server.wait_closed()

    @property
    def address(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"modbus-tcp://127.0.0.1:{port}?unit={self.unit}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        up_r, up_w = await asyncio.open_connection(*self.target)
        self._writers += [writer, up_w]
        back = asyncio.create_task(self._pipe(up_r, writer))
        buf = bytearray()
        try:
            while data := await reader.read(4096):
                buf += data
                while len(buf) >= 6 and len(buf) >= 6 + struct.unpack(">H", buf[4:6])[0]:
                    n = 6 + struct.unpack(">H", buf[4:6])[0]
                    self.requests.append(bytes(buf[:n]))
                    del buf[:n]
                up_w.write(data)
                await up_w.drain()
        except ConnectionError:
            pass
        finally:
            for w in (up_w, writer):
                w.transport.abort()
            await asyncio.gather(back, return_exceptions=True)
            self._tasks.discard(task)

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(4096):
                writer.write(data)
                await writer.drain()


def commands(requests: list[bytes]) -> list[bytes]:
    """The recorded requests that command the router (not reads, not slot-table rows)."""
    window = (MAP.block("upload_window").start, MAP.field("upload_page").address)
    out = []
    for adu in requests:
        function, addr = adu[7], struct.unpack(">H", adu[8:10])[0]
        if function in (5, 6, 16) and not (addr == window[1] or addr >= window[0]):
            out.append(adu)
    return out


async def replay(address: str, adus: list[bytes]) -> int:
    """Send recorded request ADUs verbatim to ``address``; return how many were answered
    without an exception."""
    a = parse_address(address)
    reader, writer = await asyncio.open_connection(a.host, a.port)
    ok = 0
    try:
        for adu in adus:
            writer.write(adu)
            await writer.drain()
            head = await asyncio.wait_for(reader.readexactly(6), 2)
            body = await reader.readexactly(struct.unpack(">H", head[4:6])[0])
            ok += not body[1] & 0x80
    finally:
        writer.close()
        await writer.wait_closed()
    return ok


class PlainClient:
    """A pymodbus client on one router, with the register map and no key."""

    def __init__(self, address: str) -> None:
        a = parse_address(address)
        self.unit = a.unit
        self.client = AsyncModbusTcpClient(a.host, port=a.port, timeout=1, retries=0)
        self.refused = 0  # requests the router answered with an exception

    async def __aenter__(self) -> PlainClient:
        assert await self.client.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.client.close()

    async def _write(self, addr: int, regs: list[int]) -> None:
        reply = await self.client.write_registers(addr, regs, device_id=self.unit)
        self.refused += reply.isError()

    async def _coil(self, name: str) -> None:
        reply = await self.client.write_coil(MAP.field(name).address, True, device_id=self.unit)
        self.refused += reply.isError()

    async def _command(self, kind: str, **values: int) -> None:
        """A command block with every field the attacker likes and a tag it cannot make."""
        block = MAP.block(f"cmd_{kind}")
        regs: list[int] = []
        for f in block.fields:
            if f.type == "bytes":
                regs += list(struct.unpack(f">{f.registers}H", os.urandom(2 * f.registers)))
            else:
                regs += f.encode(values.get(f.name, 0))
        await self._write(block.start, regs)

    async def status(self) -> dict[str, int | float]:
        block = MAP.block("status")
        reply = await self.client.read_holding_registers(
            block.start, count=block.size, device_id=self.unit
        )
        return block.decode(reply.registers)

    async def frame_start(self) -> int:
        f = MAP.field("frame_start_us")
        reply = await self.client.read_holding_registers(
            f.address, count=f.registers, device_id=self.unit
        )
        return int(f.decode(reply.registers))

    async def overwrite_bank(self) -> None:
        """Garbage into the first rows of the staging bank (the upload window)."""
        await self._write(MAP.field("upload_page").address, [0])
        regs = list(struct.unpack(">120H", os.urandom(240)))
        await self._write(MAP.field("window").address, regs)

    async def forge_commit(self, frame: int, count: int = 1, crc: int = 0) -> None:
        if _has("commit_session"):
            await self._command("commit", commit_frame=frame, commit_count=count, commit_crc=crc)
        else:
            block = [
                *MAP.field("commit_frame").encode(frame),
                count,
                *MAP.field("commit_crc").encode(crc),
            ]
            await self._write(MAP.field("commit_frame").address, block)
            await self._coil("commit")

    async def forge_arm(self, frame: int, start_us: int) -> None:
        if _has("arm_session"):
            await self._command("arm", arm_frame=frame, arm_start_us=start_us)
        else:
            regs = [
                *MAP.field("arm_frame").encode(frame),
                *MAP.field("arm_start_us").encode(start_us),
            ]
            await self._write(MAP.field("arm_frame").address, regs)
            await self._coil("arm")

    async def clear_fault(self) -> None:
        """Every way to clear a fault the map offers a client without a key."""
        for f in MAP.block("control").fields:
            if f.name != "estop":
                await self._coil(f.name)
        if _has("clear_session"):
            await self._command("clear_fault")

    async def feed_watchdog(self) -> None:
        if _has("heartbeat_session"):
            await self._command("heartbeat", heartbeat_watchdog_ms=0)
        else:
            await self._write(MAP.field("heartbeat").address, [1])
