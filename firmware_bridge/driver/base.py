"""The router driver: one abstract class, the operations of the register map.

Backends (Modbus TCP, Modbus RTU, the framed serial protocol) fill in four small hooks:
connect, disconnect, read registers, write registers, write a coil. Everything else is
here, written once against the register map: paging and batching of bank uploads, the
CRC commit, arming, status and meter decoding, bounded retries with backoff.

Retries: a request that times out or gets a corrupted or mismatched reply is sent
again, at most ``MAX_ATTEMPTS`` times, sleeping ``BACKOFF_BASE_S * 2**n`` (capped at
``BACKOFF_MAX_S``) in between. Every operation is idempotent on the router (writes set
registers; a command repeated with its sequence number is answered, not carried out
twice), so a retry after a lost reply is safe. An exception reply is not retried.

Commands (claim, heartbeat, commit, arm, clear fault, abort, release) need the driver's
``Credentials`` (``driver.credentials``); reads and the e-stop do not. The first command
claims the router; closing the driver releases it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import time
import zlib
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, TypeVar

from firmware_bridge.driver.address import RouterAddress
from firmware_bridge.driver.commands import Credentials, command_registers
from firmware_bridge.driver.links import bulk
from firmware_bridge.errors import (
    ArmError,
    BridgeError,
    CommandRefused,
    CommitError,
    IdentityError,
    OwnedError,
    ProtocolError,
    RouterRefused,
    RouterTimeout,
)
from firmware_bridge.registers import Block, RegisterMap, register_map

MAX_ATTEMPTS = 4
BACKOFF_BASE_S = 0.005
BACKOFF_MAX_S = 0.2
DEFAULT_TIMEOUT_S = 0.5
RELEASE_TIMEOUT_S = 0.5  # closing a driver releases its router, but never waits long
PAD = b"\x00"

T = TypeVar("T")


class Transient(Exception):
    """Raised by a backend hook for a failure worth a retry (bad CRC, stale reply)."""


class NoReply(Transient):
    """A backend's own timeout: no reply at all."""


@dataclass(frozen=True)
class Identity:
    router_wire_id: int
    port_count: int
    storage_places: int
    bank_entries_max: int
    window_entries: int
    firmware_version: int
    key_epoch: int
    map_version: int


@dataclass(frozen=True)
class RouterStatus:
    state: str  # idle / armed / running / safe / fault
    alarms: tuple[str, ...]
    frame: int
    slot: int | None
    live_bank: int
    staging: str
    staged_frame: int
    commit_status: str
    arm_status: str
    commit_accepted: int
    commit_refused: int
    frames_completed: int
    counters: dict[str, int]
    owner_session: int = 0  # 0: nobody owns the router
    replay_mark: int = 0  # last frame it committed (kept across power-up)


@dataclass(frozen=True)
class CommitResult:
    frame: int
    crc: int
    entries: int
    accepted: int
    refused: int


@dataclass(frozen=True)
class PortMeter:
    port: int
    energy_in_j: float
    energy_out_j: float
    packets_in: int
    packets_out: int
    voltage_v: float
    current_a: float


@dataclass(frozen=True)
class Attribution:
    sink: int  # terminal wire id
    transfer: int  # transfer wire id
    packets: int
    energy_j: float


@dataclass(frozen=True)
class Meters:
    ports: tuple[PortMeter, ...]
    attributions: tuple[Attribution, ...]

    def delivered_j(self, transfer: int) -> float:
        return sum(a.energy_j for a in self.attributions if a.transfer == transfer)


@dataclass
class RoundTrip:
    """Local monotonic clock (us) as a request went on the link and as its reply came
    back, stamped by the backend while it holds the link (each attempt overwrites)."""

    sent_us: int = 0
    received_us: int = 0

    def sending(self) -> None:
        self.sent_us = time.monotonic_ns() // 1000

    def received(self) -> None:
        self.received_us = time.monotonic_ns() // 1000


class ClockSample(NamedTuple):
    """Local monotonic clock before sending and after the reply (us), and the router
    clock latched when the request arrived: offset ~ router - (send + recv) / 2."""

    t_send_us: int
    t_router_us: int
    t_recv_us: int


def bank_bytes(entries: Sequence[bytes], entry_bytes: int) -> bytes:
    """Rows as they sit in the bank: each entry and one pad byte."""
    for i, e in enumerate(entries):
        if len(e) != entry_bytes:
            raise ValueError(f"entry {i} is {len(e)} bytes, not {entry_bytes}")
    return PAD.join(entries) + PAD if entries else b""


def bank_crc(entries: Sequence[bytes], entry_bytes: int = 63) -> int:
    return zlib.crc32(bank_bytes(entries, entry_bytes))


def words(data: bytes) -> list[int]:
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


class RouterDriver(ABC):
    """One router at one address. Use ``async with driver:`` or ``open()``/``close()``."""

    scheme: ClassVar[str]
    max_read: ClassVar[int] = 125
    max_write: ClassVar[int] = 123

    def __init__(
        self,
        address: RouterAddress,
        router_id: str | None = None,
        *,
        timeout: float | None = None,
        attempts: int = MAX_ATTEMPTS,
        credentials: Credentials | None = None,
    ) -> None:
        self.address = address
        self.router_id = router_id
        self.timeout = (
            timeout if timeout is not None else address.float("timeout", DEFAULT_TIMEOUT_S)
        )
        self.attempts = attempts
        self.credentials = credentials
        self.map: RegisterMap = register_map()
        self.identity: Identity | None = None
        self.retries = 0  # requests sent again after a transient failure
        self._uploaded: tuple[int, int] | None = None  # (entries, crc) of the last upload
        self._seq: int | None = None  # the last command's number; None: not claimed
        self._commands = asyncio.Lock()  # one numbered command in flight at a time
        self.watchdog_ms: int | None = None  # None: the router's default, read at the claim
        self.geometry: tuple[int, int, int] | None = None  # (slots, slot_us, guard_us)

    # --- hooks ------------------------------------------------------------------------

    @abstractmethod
    async def _connect(self) -> None: ...

    @abstractmethod
    async def _disconnect(self) -> None: ...

    @abstractmethod
    async def _read(self, addr: int, count: int, trip: RoundTrip | None = None) -> list[int]:
        """Read registers; with ``trip``, stamp it while holding the link."""

    @abstractmethod
    async def _write(self, addr: int, values: Sequence[int]) -> None: ...

    @abstractmethod
    async def _write_coil(self, addr: int, value: bool) -> None: ...

    # --- life cycle -------------------------------------------------------------------

    async def open(self) -> None:
        await self._connect()
        try:
            await self.identify()
        except BaseException:
            await self._disconnect()
            raise

    async def close(self) -> None:
        """Release the router (if this driver claimed it), then let go of the link."""
        try:
            if self._seq is not None:
                with contextlib.suppress(BridgeError, TimeoutError):
                    async with asyncio.timeout(RELEASE_TIMEOUT_S):
                        await self.release()
        finally:
            await self._disconnect()

    async def __aenter__(self) -> RouterDriver:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def where(self, register: str | None = None) -> dict[str, Any]:
        return {"router_id": self.router_id, "address": str(self.address), "register": register}

    # --- retries ----------------------------------------------------------------------

    async def _retry(self, register: str, call: Callable[[], Awaitable[T]]) -> T:
        last: BaseException | None = None
        for attempt in range(self.attempts):
            if attempt:
                self.retries += 1
                await asyncio.sleep(min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2**attempt))
            try:
                # backends time out at self.timeout, counted from when the request went on
                # the link: waiting for a link other routers share is not a lost reply
                return await call()
            except (TimeoutError, Transient) as exc:
                last = exc
        if isinstance(last, Transient) and not isinstance(last, NoReply):
            raise ProtocolError(
                f"no valid reply after {self.attempts} attempts: {last}", **self.where(register)
            ) from last
        raise RouterTimeout(
            f"no reply within {self.timeout:g} s, {self.attempts} attempts", **self.where(register)
        ) from last

    async def read_registers(self, addr: int, count: int, register: str) -> list[int]:
        out: list[int] = []
        for at in range(addr, addr + count, self.max_read):
            n = min(self.max_read, addr + count - at)
            got = await self._retry(register, functools.partial(self._read, at, n))
            if len(got) != n:
                raise ProtocolError(f"asked {n} registers, got {len(got)}", **self.where(register))
            out += got
        return out

    async def write_registers(self, addr: int, values: Sequence[int], register: str) -> None:
        for i in range(0, len(values), self.max_write):
            chunk = values[i : i + self.max_write]
            await self._retry(register, functools.partial(self._write, addr + i, chunk))

    async def write_coil(self, name: str, value: bool = True) -> None:
        addr = self.map.block("control").field(name).address
        await self._retry(name, functools.partial(self._write_coil, addr, value))

    async def read_block(self, name: str, instance: int = 0) -> dict[str, int | float]:
        block = self.map.block(name)
        regs = await self.read_registers(block.base(instance), block.size, name)
        return block.decode(regs)

    async def write_fields(self, **values: int | float) -> None:
        """Write fields of one block that sit next to each other, in one request."""
        fields = sorted((self.map.field(n) for n in values), key=lambda f: f.address)
        regs: list[int] = []
        for prev, f in zip([None, *fields], fields, strict=False):
            if prev is not None and prev.address + prev.registers != f.address:
                raise ValueError(f"{prev.name} and {f.name} are not adjacent")
            regs += f.encode(values[f.name])
        await self.write_registers(fields[0].address, regs, fields[0].name)

    # --- operations -------------------------------------------------------------------

    async def identify(self) -> Identity:
        got = await self.read_block("identity")
        if got["magic"] != self.map.magic:
            raise IdentityError(
                f"magic {got['magic']:#010x} is not {self.map.magic:#010x}: not a ppr router",
                **self.where("magic"),
            )
        if got["map_version"] != self.map.version:
            raise IdentityError(
                f"register map version {got['map_version']}, this driver speaks {self.map.version}",
                **self.where("map_version"),
            )
        fields = {k: int(v) for k, v in got.items() if k != "magic"}
        self.identity = Identity(**fields)
        return self.identity

    async def set_frame_geometry(self, slots: int, slot_us: int, guard_us: int) -> None:
        """Slots per frame, slot length and switching guard for banks committed next (the
        commit command carries them)."""
        self.geometry = (slots, slot_us, guard_us)

    async def set_watchdog(self, timeout_ms: int) -> None:
        """The watchdog timeout of this driver's session (0: off), sent at once."""
        self.watchdog_ms = timeout_ms
        await self.heartbeat()

    # --- authenticated commands ------------------------------------------------------

    async def claim(self) -> None:
        """Make this driver's session the router's owner (or find it is already)."""
        async with self._commands:
            await self._claim()

    async def _claim(self) -> None:
        creds = self._credentials("cmd_claim")
        session = await self.read_block("session")
        owner = int(session["owner_session"])
        if owner == creds.session:  # ours already (a reply lost, a probe after a mute spell)
            self._seq = int(session["owner_seq"])
            return
        if owner:
            raise self._owned(owner, "cmd_claim")
        if self.watchdog_ms is None:
            self.watchdog_ms = int(session["watchdog_timeout_ms"])
        if self.geometry is None:
            c = await self.read_block("config")
            self.geometry = (int(c["frame_slots"]), int(c["slot_us"]), int(c["guard_us"]))
        regs = command_registers(
            self.map, creds.key, "claim", epoch=creds.key.epoch, session=creds.session,
            challenge=int(session["challenge"]), watchdog_ms=self.watchdog_ms,
        )  # fmt: skip
        try:
            await self.write_registers(self.map.block("cmd_claim").start, regs, "cmd_claim")
        except RouterRefused as exc:
            after = await self.read_block("session")
            if int(after["owner_session"]) != creds.session:  # not a retried success
                raise self._refused(exc, int(after["owner_session"]), "cmd_claim") from None
        self._seq = 0

    async def _command(self, kind: str, **values: int) -> None:
        """One numbered, tagged command; claims the router first (again, if its
        ownership lapsed with the watchdog while this driver could not reach it)."""
        async with self._commands:
            for attempt in (0, 1):
                if self._seq is None:
                    await self._claim()
                assert self._seq is not None
                creds = self._credentials(f"cmd_{kind}")
                seq = self._seq = self._seq + 1
                regs = command_registers(
                    self.map, creds.key, kind, session=creds.session, seq=seq, **values
                )
                block = f"cmd_{kind}"
                try:
                    await self.write_registers(self.map.block(block).start, regs, block)
                    return
                except RouterRefused as exc:
                    owner = int((await self.read_block("session"))["owner_session"])
                    if owner == 0 and attempt == 0 and kind != "release":
                        self._seq = None  # lapsed: claim again, once
                        continue
                    if owner != creds.session:
                        self._seq = None
                    raise self._refused(exc, owner, block) from None

    def _credentials(self, register: str) -> Credentials:
        if self.credentials is None:
            raise BridgeError(
                "no command key: commands are authenticated; open the driver with the key "
                "store's command key for this router (firmware_bridge.driver.Credentials)",
                **self.where(register),
            )
        return self.credentials

    def _owned(self, owner: int, register: str) -> OwnedError:
        return OwnedError(
            f"owned by another session ({owner:#010x}): another controller drives this "
            f"router; stop that run, or wait for its watchdog to lapse",
            session=owner,
            **self.where(register),
        )

    def _refused(self, exc: RouterRefused, owner: int, register: str) -> CommandRefused:
        creds = self.credentials
        if owner and (creds is None or owner != creds.session):
            return self._owned(owner, register)
        return CommandRefused(
            f"command refused ({exc.message}): the router holds other keys than this "
            f"key store's epoch {creds.key.epoch if creds else '?'}, or a sequence number "
            f"was reused",
            **self.where(register),
        )

    async def upload_bank(self, frame: int, entries: Sequence[bytes]) -> int:
        """Write ``entries`` (sealed outer entries, table order) into the staging bank;
        return their CRC-32 for ``commit``. Nothing takes effect until the commit."""
        entry_bytes = self.map.params["entry_bytes"]
        limit = self.identity.bank_entries_max if self.identity else 0
        if len(entries) > limit:
            raise BridgeError(
                f"frame {frame}: {len(entries)} entries, the bank holds {limit}",
                **self.where("upload_window"),
            )
        try:
            data = bank_bytes(entries, entry_bytes)
        except ValueError as exc:
            raise BridgeError(f"frame {frame}: {exc}", **self.where("upload_window")) from None
        self._uploaded = None
        regs = words(data)
        per_page = self.map.params["window_entries"] * self.map.params["entry_registers"]
        window = self.map.field("window").address
        with bulk():  # heartbeats, clock samples and arms go first on a shared link
            for page in range(math.ceil(len(regs) / per_page)):
                await self.write_fields(upload_page=page)
                await self.write_registers(
                    window, regs[page * per_page : (page + 1) * per_page], "window"
                )
        crc = zlib.crc32(data)
        self._uploaded = (len(entries), crc)
        return crc

    async def commit(self, frame: int, crc: int) -> CommitResult:
        """Ask the router to verify and stage the uploaded bank for ``frame``."""
        if self._uploaded is None or self._uploaded[1] != crc:
            raise CommitError(
                f"frame {frame}: no completed upload with CRC {crc:#010x}",
                status="not_uploaded",
                **self.where("commit_crc"),
            )
        count = self._uploaded[0]
        if self.geometry is None and self._seq is None:
            await self.claim()  # reads the router's geometry
        assert self.geometry is not None
        slots, slot_us, guard_us = self.geometry
        await self._command(
            "commit", frame=frame, count=count, crc=crc, slots=slots, slot_us=slot_us,
            guard_us=guard_us,
        )  # fmt: skip
        status = await self.read_block("status")
        name = self.map.enum_name("commit_status", int(status["commit_status"]))
        if name != "ok":
            raise CommitError(
                f"frame {frame}: commit refused ({name})", status=name, **self.where("commit")
            )
        if status["staged_frame"] != frame:  # accepted, then its bank was dropped
            raise CommitError(
                f"frame {frame}: committed, then dropped before it could run (the router "
                f"was e-stopped or halted meanwhile)",
                status="dropped",
                **self.where("commit"),
            )
        return CommitResult(
            frame, crc, count, int(status["commit_accepted"]), int(status["commit_refused"])
        )

    async def arm(self, frame: int, start_us: int, rate_ppb: int = 0) -> None:
        """Start the committed ``frame`` at ``start_us`` on the router's clock, its slots
        stretched by ``rate_ppb`` (how much faster this clock runs than the others)."""
        await self._command("arm", frame=frame, start_us=start_us, rate_ppb=rate_ppb)
        status = await self.read_block("status")
        name = self.map.enum_name("arm_status", int(status["arm_status"]))
        if name != "ok":
            raise ArmError(f"frame {frame}: arm refused ({name})", status=name, **self.where("arm"))

    async def heartbeat(self) -> None:
        if self.watchdog_ms is None and self._seq is None:
            await self.claim()  # reads the router's default watchdog
        assert self.watchdog_ms is not None
        await self._command("heartbeat", watchdog_ms=self.watchdog_ms)

    async def estop(self) -> None:
        """The one command anyone may give: no key needed."""
        await self.write_coil("estop")

    async def clear_fault(self) -> None:
        """Leave safe or fault (a latched e-stop) for idle: authenticated."""
        await self._command("clear_fault")

    async def abort(self) -> None:
        """Open every gate and drop the armed and running frames, without a fault."""
        await self._command("abort")

    async def release(self) -> None:
        """Give up ownership (as abort, then no owner)."""
        if self._seq is None:
            return
        try:
            await self._command("release")
        finally:
            self._seq = None

    async def read_status(self) -> RouterStatus:
        status, counters = self.map.block("status"), self.map.block("counters")
        session = self.map.block("session")
        regs = await self.read_registers(status.start, counters.end - status.start, "status")
        s = status.decode(regs)
        c = counters.decode(regs[counters.start - status.start :])
        own = session.decode(regs[session.start - status.start :])
        m = self.map
        slot = int(s["slot"])
        return RouterStatus(
            state=m.enum_name("state", int(s["state"])),
            alarms=tuple(m.bit_names("alarms", int(s["alarms"]))),
            frame=int(s["frame"]),
            slot=None if slot == 0xFFFF else slot,
            live_bank=int(s["live_bank"]),
            staging=m.enum_name("staging", int(s["staging"])),
            staged_frame=int(s["staged_frame"]),
            commit_status=m.enum_name("commit_status", int(s["commit_status"])),
            arm_status=m.enum_name("arm_status", int(s["arm_status"])),
            commit_accepted=int(s["commit_accepted"]),
            commit_refused=int(s["commit_refused"]),
            frames_completed=int(s["frames_completed"]),
            counters={k: int(v) for k, v in c.items()},
            owner_session=int(own["owner_session"]),
            replay_mark=int(own["replay_mark"]),
        )

    async def read_meters(self) -> Meters:
        ports = self.identity.port_count if self.identity else 0
        meters = self.map.block("meters")
        regs = await self.read_registers(meters.start, ports * meters.stride, "meters")
        out = []
        for p in range(ports):
            f = meters.decode(regs[p * meters.stride :])
            out.append(
                PortMeter(
                    p,
                    f["energy_in_nj"] / 1e9,
                    f["energy_out_nj"] / 1e9,
                    int(f["packets_in"]),
                    int(f["packets_out"]),
                    float(f["last_voltage"]),
                    float(f["last_current"]),
                )
            )
        return Meters(tuple(out), await self._attributions())

    async def read_frame_attribution(self) -> tuple[int, tuple[Attribution, ...]]:
        """(frame, records) of the last frame that ended, latched at its end: what the
        sink meters on this router attributed during that frame alone."""
        head = await self.read_block("frame_attribution")
        frame, count = int(head["latched_frame"]), int(head["latched_count"])
        return frame, await self._records("frame_attribution_records", count)

    async def _attributions(self) -> tuple[Attribution, ...]:
        count = int((await self.read_block("attribution"))["attribution_count"])
        return await self._records("attribution_records", count)

    async def _records(self, block: str, count: int) -> tuple[Attribution, ...]:
        records: Block = self.map.block(block)
        regs = await self.read_registers(records.start, count * records.stride, block)
        out = []
        for i in range(count):
            f = records.decode(regs[i * records.stride :])
            out.append(
                Attribution(
                    int(f["sink"]), int(f["transfer"]), int(f["packets"]), f["energy_nj"] / 1e9
                )
            )
        return tuple(out)

    async def read_clock(self) -> ClockSample:
        field = self.map.field("router_clock_us")
        # stamped holding the link: time queued behind another request (an upload, a
        # heartbeat) is not round-trip time
        trip = RoundTrip()
        regs = await self._retry(
            "router_clock_us", functools.partial(self._read, field.address, field.registers, trip)
        )
        return ClockSample(trip.sent_us, int(field.decode(regs)), trip.received_us)
