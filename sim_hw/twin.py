"""The software twin: every router of a scenario served over real sockets or ptys.

    async with Twin(scenario, Path("ppr-keys"), transport="tcp", accel=20) as twin:
        twin.addresses          # {"R1": "modbus-tcp://127.0.0.1:40123?unit=1", ...}

The twin knows only what real firmware would know: the register map, each router's own
keys from the key store (and each sink meter's), its own clock, the wiring of the bench,
and what its non-volatile memory kept (``nv_dir``; without one, every start is a
factory-new router's). Time runs ``accel`` times faster than the wall clock; the DC bus is evaluated
exactly (event by event) whenever a request arrives, on a periodic tick, and on demand.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bench import Scenario, Topology, load_with_topology
from firmware_bridge import framed
from firmware_bridge.headers import HeaderError
from firmware_bridge.keystore import KeyStore
from firmware_bridge.tasks import stop_tasks
from sim_hw import modbus_codec as mb
from sim_hw.bus import DcBus
from sim_hw.description import device_description
from sim_hw.errors import TwinError
from sim_hw.faults import LINK_FAULTS, Fault, parse_fault
from sim_hw.front import DeviceException, RouterFront
from sim_hw.links import Fate, PtyLine, TcpListener
from sim_hw.nv import NvMemory
from sim_hw.router import RouterClock, RouterModel

TRANSPORTS = ("tcp", "rtu", "serial")


@dataclass(frozen=True)
class FrameTiming:
    """The twin's own account of a frame's gate timing, apart from its meters: the sinks
    metered the circuit model's energy minus ``shortfall_j``."""

    frame: int
    shortfall_j: float
    start_spread_us: float  # latest minus earliest router's frame start, true time


TICK_S = 0.01  # wall-clock period of the background bus evaluation
_SCHEME = {"rtu": "modbus-rtu", "serial": "serial"}


class Twin:
    def __init__(
        self,
        scenario: Scenario | str | Path,
        keystore: str | Path = "ppr-keys",
        *,
        transport: str = "tcp",
        accel: float = 1.0,
        faults: Iterable[str | Fault] = (),
        host: str = "127.0.0.1",
        baud: int = 115200,
        line_baud: int | None = None,
        seed: int = 0,
        nv_dir: str | Path | None = None,
    ) -> None:
        if transport not in TRANSPORTS:
            raise TwinError(f"unknown transport '{transport}' (one of {', '.join(TRANSPORTS)})")
        if accel <= 0:
            raise TwinError(f"accel must be > 0 (got {accel})")
        if isinstance(scenario, Scenario):
            self.scenario, self.topology = scenario, Topology(scenario)
        else:
            self.scenario, self.topology = load_with_topology(scenario)
        self.keystore_dir = Path(keystore)
        self.nv_dir = None if nv_dir is None else Path(nv_dir)
        self.transport, self.accel, self.host = transport, accel, host
        self.baud, self.line_baud = baud, line_baud
        self.desc = device_description()
        self.rng = random.Random(seed)
        self.faults: list[Fault] = []
        for f in [*self.scenario.twin.faults, *faults]:
            self.faults.append(f if isinstance(f, Fault) else parse_fault(f, self.scenario))
        self.injected: dict[str, Counter[str]] = {r.id: Counter() for r in self.scenario.routers}
        self.addresses: dict[str, str] = {}
        self.device_path: str | None = None
        self.routers: dict[str, RouterModel] = {}
        self.units: dict[int, str] = {}
        self._fronts: dict[str, RouterFront] = {}
        self._links: list[TcpListener | PtyLine] = []
        self._tick: asyncio.Task[None] | None = None
        self._t_wall0 = 0.0
        self._t_done = 0.0  # the bus has been evaluated up to here (true us)

    # --- life cycle -------------------------------------------------------------------

    async def __aenter__(self) -> Twin:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        self._build()
        self._t_wall0 = time.monotonic()
        try:
            await self._serve()
        except BaseException:
            await self.stop()
            raise
        self._tick = asyncio.create_task(self._ticker(), name="twin tick")

    async def stop(self) -> None:
        try:
            for link in self._links:
                await link.stop()
            self._links.clear()
        finally:
            tick, self._tick = self._tick, None
            failed = await stop_tasks(tick)
            if failed:
                raise failed[0]  # a bug in the bus model surfaces here

    def _build(self) -> None:
        try:
            store = KeyStore.open(self.keystore_dir)
        except HeaderError as exc:
            raise TwinError(f"the twin's routers need their keys: {exc}") from exc
        sc, frame = self.scenario, self.scenario.frame
        clocks = {r.id: r for r in sc.twin.routers}
        watchdog = sc.twin.watchdog_timeout_ms
        if watchdog is None:
            watchdog = self.desc.defaults.watchdog_timeout_ms
        try:
            rings = {r.id: store.ring("router", r.id) for r in sc.routers}
            commands = {r.id: store.router_command_keys(r.id) for r in sc.routers}
            meters = {t.id: store.ring("terminal", t.id) for t in sc.terminals if t.can_receive}
            wires = {t.id: store.party("terminal", t.id).index for t in sc.terminals}
        except HeaderError as exc:
            raise TwinError(
                f"{exc} (add the scenario's parties: ppr keys rotate SCENARIO)"
            ) from exc
        for r in sc.routers:
            c = clocks.get(r.id)
            clock = RouterClock(
                c.clock_offset_us if c else self.desc.defaults.clock_offset_us,
                c.clock_drift_ppm if c else self.desc.defaults.clock_drift_ppm,
            )
            ring = rings[r.id]
            model = RouterModel(
                r.id, ring.party.index, r.ports, r.storage_packets, ring, clock,
                command_keys=commands[r.id], watchdog_ms=watchdog, frame_slots=frame.slots,
                slot_us=round(frame.slot_ms * 1000), guard_us=round(frame.guard_us),
                nv=NvMemory(self.nv_dir, r.id),
            )  # fmt: skip
            self.routers[r.id] = model
            unit = ring.party.index + 1
            if self.transport != "tcp" and unit > 247:
                raise TwinError(f"router {r.id}: wire id {unit - 1} exceeds Modbus unit 247")
            self.units[unit] = r.id
            epoch = store.epoch
            self._fronts[r.id] = RouterFront(
                model, self.desc, epoch, functools.partial(self._diagnostics, r.id)
            )
        self.bus = DcBus(
            sc, self.topology, self.routers, meters, wires, self.desc.limits.trip_margin
        )
        for f in self.faults:
            self._apply(f, +1)

    async def _serve(self) -> None:
        if self.transport == "tcp":
            for rid, model in self.routers.items():
                link = TcpListener(rid, self._modbus, self._bad)
                await link.start(self.host)
                self._links.append(link)
                self.addresses[rid] = (
                    f"modbus-tcp://{self.host}:{link.port}?unit={model.wire_id + 1}"
                )
            return
        line = PtyLine(
            self.transport, modbus=self._modbus, framed_handler=self._framed, bad=self._bad,
            idle_s=self.desc.timing.serial_idle_flush_ms / 1000, line_baud=self.line_baud,
        )  # fmt: skip
        self._links.append(line)
        self.device_path = line.path
        scheme = _SCHEME[self.transport]
        for rid, model in self.routers.items():
            self.addresses[rid] = (
                f"{scheme}://{line.path}?baud={self.baud}&unit={model.wire_id + 1}"
            )

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            self.advance()

    # --- time and the bus -------------------------------------------------------------

    def now(self) -> float:
        """True time since the twin started, microseconds (``accel`` times the wall)."""
        return (time.monotonic() - self._t_wall0) * self.accel * 1e6

    def router_clock(self, router_id: str) -> int:
        return self.routers[router_id].clock.read(self.now())

    def advance(self, t: float | None = None) -> float:
        """Run the bus and the routers' clocks up to ``t`` (default: now)."""
        t = self.now() if t is None else t
        while self._t_done < t:
            step = t
            for r in self.routers.values():
                deadline = r.watchdog_deadline()
                if deadline is not None and self._t_done <= deadline < step:
                    step = deadline
                staged = r.staged
                if staged is not None and r.staging == "armed" and self._t_done < staged.t0 < step:
                    step = staged.t0
            self.bus.run(self._t_done, step)
            for r in self.routers.values():
                deadline = r.watchdog_deadline()
                if deadline is not None and deadline <= step:
                    r.lapse(deadline)
                r.settle(step)
            self._t_done = step
        return t

    # --- requests ---------------------------------------------------------------------

    def _fate(self, rid: str) -> Fate | None:
        """Decide the link faults for one reply of ``rid``; None: offline, the request
        never reaches the firmware."""
        counts, fate = self.injected[rid], Fate(rid)
        for f in self.faults:
            if f.kind not in LINK_FAULTS or f.router not in (None, rid):
                continue
            if f.kind == "offline":
                counts["offline_ignored"] += 1
                return None
            if f.kind == "drop" and self.rng.random() < f.value:
                fate.drop = True
            elif f.kind == "corrupt" and self.rng.random() < f.value:
                fate.corrupt = True
            elif f.kind == "delay" and f.value > 0:
                fate.delay_s = max(fate.delay_s, f.value)
        if fate.drop:
            counts["injected_drops"] += 1
        elif fate.corrupt:
            counts["injected_corruptions"] += 1
        if fate.delay_s:
            counts["injected_delays"] += 1
        if self.desc.timing.turnaround_us:
            fate.delay_s += self.desc.timing.turnaround_us * 1e-6
        return fate

    def _request_time(self, arrived: float | None) -> float:
        """True time (us) a request acts at: when it was complete on a paced line (the
        event loop may come to it a little later), else now."""
        t = self.advance()
        if arrived is None:
            return t
        return min(t, (arrived - self._t_wall0) * self.accel * 1e6)

    def _modbus(self, unit: int, pdu: bytes, arrived: float | None) -> tuple[Fate, bytes] | None:
        rid = self.units.get(unit)
        if rid is None:
            return None
        fate = self._fate(rid)
        if fate is None:
            return Fate(rid, drop=True), b""
        t = self._request_time(arrived)
        reply = mb.handle_pdu(self._fronts[rid], pdu, t, DeviceException)
        self.routers[rid].counters["requests"] += 1
        self.advance(t)  # a command may have moved a deadline into the past
        return fate, reply

    def _framed(self, req: framed.Frame, arrived: float | None) -> tuple[Fate, framed.Frame] | None:
        rid = self.units.get(req.unit)
        if rid is None:
            return None
        fate = self._fate(rid)
        if fate is None:
            return Fate(rid, drop=True), req
        t = self._request_time(arrived)
        front, p = self._fronts[rid], req.payload
        try:
            if req.op == framed.OP_READ and len(p) == 4:
                addr, count = int.from_bytes(p[:2], "big"), int.from_bytes(p[2:], "big")
                body = b"".join(v.to_bytes(2, "big") for v in front.read(addr, count, t))
            elif req.op == framed.OP_WRITE and len(p) >= 4 and len(p) % 2 == 0:
                front.write(int.from_bytes(p[:2], "big"), framed.registers(p[2:]), t)
                body = p[:2] + (len(p) // 2 - 1).to_bytes(2, "big")
            elif req.op == framed.OP_WRITE_COIL and len(p) == 3:
                front.write_coil(int.from_bytes(p[:2], "big"), bool(p[2]), t)
                body = p
            elif req.op == framed.OP_READ_COILS and len(p) == 4:
                addr, count = int.from_bytes(p[:2], "big"), int.from_bytes(p[2:], "big")
                body = bytes(front.read_coils(addr, count, t))
            else:
                code = 1 if req.op not in framed.OPS else 3
                raise DeviceException(code)
        except DeviceException as exc:
            return fate, framed.Frame(
                req.unit, req.seq, req.op | framed.ERROR_FLAG, bytes((exc.code,))
            )
        self.routers[rid].counters["requests"] += 1
        self.advance(t)
        return fate, framed.Frame(req.unit, req.seq, req.op, body)

    def _bad(self, rid: str | None) -> None:
        for r in [self.routers[rid]] if rid else self.routers.values():
            r.counters["bad_requests"] += 1

    # --- faults -----------------------------------------------------------------------

    def inject(self, fault: str | Fault) -> Fault:
        """Add a fault now (same syntax as ``ppr twin --fault``)."""
        f = fault if isinstance(fault, Fault) else parse_fault(fault, self.scenario)
        self.advance()
        self.faults.append(f)
        self._apply(f, +1)
        return f

    def clear(self, fault: Fault) -> None:
        self.advance()
        self.faults.remove(fault)
        self._apply(fault, -1)

    def _apply(self, f: Fault, sign: int) -> None:
        faults = self.bus.faults
        if f.kind in ("stuck-open", "stuck-closed"):
            assert f.router is not None and f.port is not None
            gates = faults.stuck_open if f.kind == "stuck-open" else faults.stuck_closed
            if sign > 0:
                gates.add((f.router, f.port))
            else:
                gates.discard((f.router, f.port))
        elif f.kind == "trip":
            assert f.resource is not None
            if sign > 0:
                faults.tripped.add(f.resource)
            else:
                faults.tripped.discard(f.resource)
        elif f.kind == "skew":
            assert f.router is not None
            self.routers[f.router].jump_clock(sign * f.value)
        elif f.kind == "bank-flip":
            assert f.router is not None
            self.routers[f.router].flip_bank_writes += sign

    def _diagnostics(self, rid: str) -> dict[str, int]:
        counts = self.injected[rid]
        faults = self.bus.faults
        tripped = {x for x in faults.tripped if any(e.router == rid for e in self._ends(x))}
        return {
            "injected_drops": counts["injected_drops"],
            "injected_corruptions": counts["injected_corruptions"],
            "injected_delays": counts["injected_delays"],
            "offline_ignored": counts["offline_ignored"],
            "stuck_gates": sum(r == rid for r, _ in faults.stuck_open | faults.stuck_closed),
            "tripped_lines": len(tripped),
            "clock_skew_us": int(
                sum(f.value for f in self.faults if f.kind == "skew" and f.router == rid)
            ),
            "injected_bank_flips": self.routers[rid].bank_flips,
        }

    def _ends(self, resource: str):
        return self.topology.resources[resource].ends

    # --- inspection (tests, ppr twin, benchmarks) -------------------------------------

    def frame_timing(self, frame: int) -> FrameTiming | None:
        """How far the routers that ran ``frame`` (and latched it) were from the circuit
        model's timing: their slot starts' spread and the energy that cost their sinks.
        None when no router has latched it."""
        ran = [r for r in self.routers.values() if r.latched[0] == frame]
        if not ran:
            return None
        starts = [r.latched_start for r in ran]
        return FrameTiming(frame, sum(r.latched_shortfall for r in ran), max(starts) - min(starts))

    def wire_bytes(self) -> tuple[int, int]:
        """Bytes received and sent on the pseudo-terminal lines (0, 0 over TCP)."""
        lines = [x for x in self._links if isinstance(x, PtyLine)]
        return sum(x.bytes_in for x in lines), sum(x.bytes_out for x in lines)

    def closed_gates(self, router_id: str, t: float | None = None) -> set[tuple[int, int]]:
        """Gates (in_port, out_port) of ``router_id`` conducting at true time ``t``."""
        t = self.advance(t)
        r = self.routers[router_id]
        return {
            (g.in_port, g.out_port)
            for _, _, run, slot, _ in r.windows(t, t + 1e-3)
            for g in run.gates[slot].values()
        }
