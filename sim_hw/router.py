"""One router's firmware: banks, commit, arm, watchdog, e-stop, counters, meters.

Time is the twin's true time ``t`` in microseconds (float); the router sees only its own
clock, ``RouterClock.read(t)``. Commands take the true time they arrive at; the twin has
already run the DC bus up to that instant, so a command acts exactly when it arrives.
"""

from __future__ import annotations

import bisect
import math
import zlib
from collections import Counter
from dataclasses import dataclass, field

from firmware_bridge.headers import (
    STORE_PORT,
    HeaderAuthError,
    HeaderFormatError,
    KeyEpochError,
    KeyRing,
    MisplacedEntryError,
    ReplayError,
    RouterHeaderState,
)
from firmware_bridge.registers import register_map

_MAP = register_map()
ROW_BYTES = 2 * _MAP.params["entry_registers"]
_REFUSAL_COUNTER = {
    HeaderAuthError: "rejected_headers",
    HeaderFormatError: "rejected_headers",
    ReplayError: "replays",
    MisplacedEntryError: "misplaced",
    KeyEpochError: "epoch_refusals",
}


@dataclass
class RouterClock:
    offset_us: float = 0.0
    drift_ppm: float = 0.0

    @property
    def rate(self) -> float:
        return 1.0 + self.drift_ppm * 1e-6

    def read(self, t: float) -> int:
        return max(0, int(self.offset_us + t * self.rate))

    def true_time(self, router_us: float) -> float:
        return (router_us - self.offset_us) / self.rate


@dataclass(slots=True)
class Gate:
    """An opened entry: close in_port -> out_port during its slot."""

    in_port: int
    out_port: int
    voltage: float
    current: float
    inner: bytes
    epoch: int
    slot: int
    index: int


@dataclass(eq=False)
class Run:
    """A committed bank, and when it executes once armed (true time, us)."""

    frame: int
    crc: int
    count: int
    accepted: int
    refused: int
    slots: int
    slot_us: int
    guard_us: int
    gates: dict[int, dict[int, Gate]]  # slot -> in_port -> gate
    order: list[int]  # slots with gates, ascending
    start_us: int = 0
    t0: float = math.inf
    slot_t: float = 0.0
    guard_t: float = 0.0
    cut: float = math.inf  # gates open for good from here (swap, e-stop, watchdog)
    finished: bool = False
    counted: set[tuple[int, int, bool]] = field(default_factory=set)  # (slot, index, into)

    @property
    def end(self) -> float:
        return min(self.t0 + self.slots * self.slot_t, self.cut)

    @property
    def tau_s(self) -> float:
        return (self.slot_us - self.guard_us) * 1e-6


class CommitRefused(Exception):
    def __init__(self, status: str):
        self.status = status


class RouterModel:
    def __init__(
        self,
        router_id: str,
        wire_id: int,
        ports: int,
        storage: int,
        ring: KeyRing,
        clock: RouterClock,
        *,
        watchdog_ms: int,
        frame_slots: int,
        slot_us: int,
        guard_us: int,
    ) -> None:
        self.id, self.wire_id, self.ports, self.storage = router_id, wire_id, ports, storage
        self.clock = clock
        self.headers = RouterHeaderState(ring)
        self.config: dict[str, int] = {
            "watchdog_timeout_ms": watchdog_ms,
            "heartbeat": 0,
            "frame_slots": frame_slots,
            "slot_us": slot_us,
            "guard_us": guard_us,
            "commit_frame": 0,
            "commit_count": 0,
            "commit_crc": 0,
            "arm_frame": 0,
            "arm_start_us": 0,
            "arm_rate_ppb": 0,
            "upload_page": 0,
        }
        self.rows = bytearray(_MAP.params["bank_entries_max"] * ROW_BYTES)
        self.staging = "empty"
        self.staged: Run | None = None
        self.live: Run | None = None
        self.live_bank = 0
        self.halted: str | None = None  # "safe" (watchdog) or "fault" (e-stop)
        self.alarms: set[str] = set()
        self.counters: Counter[str] = Counter()
        self.commit_status = "none"
        self.arm_status = "none"
        self.frames_completed = 0
        self.last_beat: float | None = None
        self.armed_at: float | None = None
        self.aborted: set[tuple[int, int]] = set()  # (frame, slot) whose gates were opened
        # meters: per port [energy_in, energy_out (J), packets_in, packets_out, V, I]
        self.meters = [[0.0, 0.0, 0, 0, 0.0, 0.0] for _ in range(ports)]
        self.attribution: dict[tuple[int, int], list[float]] = {}  # (sink, transfer) -> [n, J]
        # the same per running frame, latched when the frame ends
        self.frame_attribution: dict[int, dict[tuple[int, int], list[float]]] = {}
        self.latched: tuple[int, dict[tuple[int, int], list[float]]] = (0, {})
        self.store: dict[bytes, float] = {}  # inner entry -> energy held (J)
        self.flip_bank_writes = 0  # injected fault: > 0 flips a bit of each window write
        self.bank_flips = 0

    # --- time -------------------------------------------------------------------------

    def watchdog_deadline(self) -> float | None:
        """True time the watchdog expires: it runs from the first heartbeat or arm."""
        timeout = self.config["watchdog_timeout_ms"]
        marks = [m for m in (self.last_beat, self.armed_at) if m is not None]
        if not timeout or self.halted or not marks:
            return None
        return max(marks) + timeout * 1000.0 / self.clock.rate

    def settle(self, t: float) -> None:
        """Swap banks and finish frames whose instant has come (no bus work here)."""
        staged = self.staged
        if staged is not None and self.staging == "armed" and staged.t0 <= t:
            if self.live is not None and not self.live.finished:
                self._finish(self.live, staged.t0)
            self.live, self.staged, self.staging = staged, None, "empty"
            self.live_bank ^= 1
        live = self.live
        if live is not None and not live.finished and live.end <= t:
            self._finish(live, live.end)

    def _finish(self, run: Run, t: float) -> None:
        if run.t0 + run.slots * run.slot_t <= min(t, run.cut) + 1e-6:
            self.frames_completed += 1
        run.cut = min(run.cut, t)
        run.finished = True
        # the bus has run up to t before any frame finishes: the frame's energy is all in
        self.latched = (run.frame, self.frame_attribution.pop(run.frame, {}))

    def windows(self, t0: float, t1: float) -> list[tuple[float, float, Run, int, bool]]:
        """Conduction windows of this router's gates overlapping ``[t0, t1)``, clipped to
        it; the flag says the window really ends inside (not at the clip)."""
        out = []
        armed = self.staged if self.staging == "armed" else None
        for run in (self.live, armed):
            if run is None or run.finished or run.t0 >= t1 or run.end <= t0:
                continue
            end = run.end if run is armed or armed is None else min(run.end, armed.t0)
            lo = max(0, math.floor((t0 - run.t0) / run.slot_t))
            hi = min(run.slots - 1, math.floor((t1 - run.t0) / run.slot_t))
            order = run.order
            for slot in order[bisect.bisect_left(order, lo) : bisect.bisect_right(order, hi)]:
                if (run.frame, slot) in self.aborted:
                    continue
                a = run.t0 + slot * run.slot_t + run.guard_t
                b = min(run.t0 + (slot + 1) * run.slot_t, end)
                ends = b <= t1
                a, b = max(a, t0), min(b, t1)
                if a < b:
                    out.append((a, b, run, slot, ends))
        return out

    # --- commands ---------------------------------------------------------------------

    def heartbeat(self, t: float, value: int) -> None:
        self.config["heartbeat"] = value & 0xFFFF
        self.last_beat = t

    def write_window(self, offset: int, data: bytes) -> None:
        base = self.config["upload_page"] * _MAP.params["window_entries"] * ROW_BYTES
        start = base + offset
        self.rows[start : start + len(data)] = data
        if self.flip_bank_writes and data:
            self.rows[start] ^= 0x01  # what the bus wrote is not what the memory holds
            self.bank_flips += 1
        if self.staging == "ready":
            self.staging, self.staged = "loading", None
        elif self.staging == "empty":
            self.staging = "loading"

    def read_window(self, offset: int, length: int) -> bytes:
        base = self.config["upload_page"] * _MAP.params["window_entries"] * ROW_BYTES
        return bytes(self.rows[base + offset : base + offset + length])

    def commit(self) -> None:
        frame, count, crc = (self.config[k] for k in ("commit_frame", "commit_count", "commit_crc"))
        staged = self.staged
        if self.staging == "armed":
            self.commit_status = "busy"
        elif (
            self.staging == "ready"
            and staged
            and (staged.frame, staged.count, staged.crc)
            == (
                frame,
                count,
                crc,
            )
        ):
            self.commit_status = "ok"  # a retried commit: idempotent
        else:
            try:
                self.staged = self._build(frame, count, crc)
                self.staging, self.commit_status = "ready", "ok"
            except CommitRefused as why:
                self.staged, self.commit_status = None, why.status
                self.staging = "loading" if self.staging != "empty" else "empty"

    def _build(self, frame: int, count: int, crc: int) -> Run:
        slots, slot_us, guard_us = (self.config[k] for k in ("frame_slots", "slot_us", "guard_us"))
        if not slots or guard_us >= slot_us:
            raise CommitRefused("bad_geometry")
        if count > _MAP.params["bank_entries_max"]:
            self.counters["crc_refusals"] += 1
            raise CommitRefused("bad_count")
        data = bytes(self.rows[: count * ROW_BYTES])
        if zlib.crc32(data) != crc:
            self.counters["crc_refusals"] += 1
            raise CommitRefused("crc_mismatch")
        # a row's slot is the one in its clear header; its index counts earlier rows of
        # that slot: a duplicated or shuffled row opens as misplaced
        rows, seen = [], Counter[int]()
        for r in range(count):
            blob = data[r * ROW_BYTES : r * ROW_BYTES + ROW_BYTES - 1]
            slot = int.from_bytes(blob[6:8], "big")
            rows.append((slot, seen[slot], blob))
            seen[slot] += 1
        saved = vars(self.headers).copy()
        try:
            result = self.headers.commit(frame, rows)
        except ReplayError:
            self.counters["replays"] += 1
            raise CommitRefused("replayed_frame") from None
        refused = 0
        for _, _, why in result.refused:
            self.counters[_REFUSAL_COUNTER[type(why)]] += 1
            refused += 1
        gates: dict[int, dict[int, Gate]] = {}
        used: dict[int, set[int]] = {}
        for e in result.accepted:
            if e.slot >= slots:
                self.counters["misplaced"] += 1
                refused += 1
                continue
            ports = used.setdefault(e.slot, set())
            for p in (e.in_port, e.out_port):
                if p != STORE_PORT and (p in ports or p >= self.ports):
                    self._interlock(saved)
                ports.add(p)
            g = Gate(
                e.in_port, e.out_port, e.voltage_v, e.current_a, e.inner, e.epoch, e.slot, e.index
            )
            gates.setdefault(e.slot, {})[e.in_port if e.in_port != STORE_PORT else -1 - e.index] = g
        self._check_store(gates, saved)
        if refused:
            self.alarms.add("header_refused")
        accepted = sum(len(g) for g in gates.values())
        order = sorted(gates)
        return Run(frame, crc, count, accepted, refused, slots, slot_us, guard_us, gates, order)

    def _interlock(self, saved: dict[str, object]) -> None:
        vars(self.headers).update(saved)  # a refused bank leaves the replay state as it was
        self.counters["interlock_refusals"] += 1
        self.alarms.add("interlock")
        raise CommitRefused("interlock")

    def _check_store(self, gates: dict[int, dict[int, Gate]], saved: dict[str, object]) -> None:
        held = 0
        for slot in sorted(gates):
            for g in gates[slot].values():
                held += (g.out_port == STORE_PORT) - (g.in_port == STORE_PORT)
                if held > self.storage or held < -self.storage:
                    self._interlock(saved)

    def arm(self, t: float) -> None:
        frame, start = self.config["arm_frame"], self.config["arm_start_us"]
        staged, live = self.staged, self.live
        if self.halted:
            self.arm_status = "not_allowed"
        elif staged is None and live is not None and (live.frame, live.start_us) == (frame, start):
            self.arm_status = "ok"  # a retried arm whose first reply was lost: it already runs
        elif staged is None or self.staging not in ("ready", "armed"):
            self.arm_status = "not_ready"
        elif staged.frame != frame:
            self.arm_status = "wrong_frame"
        elif self.staging == "armed" and staged.start_us == start:
            self.arm_status = "ok"  # a retried arm: idempotent
        else:
            t0 = self.clock.true_time(start)
            if t0 <= t:
                self.arm_status = "too_late"
                return
            # slot lengths on this clock, stretched as the controller asked, in true time
            rate = self.clock.rate / (1.0 + self.config["arm_rate_ppb"] * 1e-9)
            staged.start_us, staged.t0 = start, t0
            staged.slot_t, staged.guard_t = staged.slot_us / rate, staged.guard_us / rate
            self.staging, self.arm_status, self.armed_at = "armed", "ok", t

    def halt(self, t: float, why: str) -> None:
        """Open every gate now and drop the banks: e-stop ("fault") or watchdog ("safe")."""
        for run in (self.live, self.staged):
            if run is not None:
                run.cut = min(run.cut, t)
        if self.live is not None and not self.live.finished:
            self._finish(self.live, t)
        self.staged, self.staging = None, "empty"
        self.halted = why
        if why == "fault":
            self.counters["estops"] += 1
            self.alarms.add("estop")
        else:
            self.counters["watchdog_trips"] += 1
            self.alarms.add("watchdog")

    def jump_clock(self, delta_us: float) -> None:
        """The clock jumps: frames already armed start when the jumped clock says."""
        self.clock.offset_us += delta_us
        for run in (self.live, self.staged):
            if run is not None and math.isfinite(run.t0):
                run.t0 -= delta_us / self.clock.rate

    def clear_fault(self) -> None:
        self.halted, self.last_beat, self.armed_at = None, None, None
        self.alarms.clear()

    # --- what the registers show ------------------------------------------------------

    def state(self, t: float) -> tuple[str, int, int | None]:
        """(state, frame, slot) at true time ``t``."""
        if self.halted:
            return self.halted, self.live.frame if self.live else 0, None
        live = self.live
        if live is not None and live.t0 <= t < live.end:
            return "running", live.frame, int((t - live.t0) // live.slot_t)
        frame = live.frame if live else 0
        return ("armed" if self.staging == "armed" else "idle"), frame, None

    # --- what the bus tells the meters ------------------------------------------------

    def meter(
        self, port: int, into: bool, energy: float, volts: float, amps: float, run: Run, gate: Gate
    ) -> None:
        if port == STORE_PORT or port >= self.ports:
            return
        m = self.meters[port]
        m[0 if into else 1] += energy
        m[4], m[5] = volts, amps
        tag = (gate.slot, gate.index, into)
        if tag not in run.counted:
            run.counted.add(tag)
            m[2 if into else 3] += 1

    def attribute(self, frame: int, sink: int, transfer: int, energy: float, first: bool) -> None:
        for table in (self.attribution, self.frame_attribution.setdefault(frame, {})):
            rec = table.setdefault((sink, transfer), [0, 0.0])
            rec[0] += first
            rec[1] += energy
