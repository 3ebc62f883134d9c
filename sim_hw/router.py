"""One router's firmware: sessions, banks, commit, arm, watchdog, e-stop, counters, meters.

Time is the twin's true time ``t`` in microseconds (float); the router sees only its own
clock, ``RouterClock.read(t)``. Commands take the true time they arrive at; the twin has
already run the DC bus up to that instant, so a command acts exactly when it arrives.

Every command but the e-stop is authenticated (``command``): a claim makes a session
the owner, and the owner's commands carry a sequence number and a tag under the
router's command key. What survives a power-up lives in ``NvState`` (``sim_hw.nv``).
"""

from __future__ import annotations

import bisect
import math
import zlib
from collections import Counter
from dataclasses import dataclass, field

from firmware_bridge.headers import (
    STORE_PORT,
    CommandKey,
    HeaderAuthError,
    HeaderFormatError,
    KeyEpochError,
    KeyRing,
    MisplacedEntryError,
    ReplayError,
    RouterHeaderState,
)
from firmware_bridge.registers import register_map
from sim_hw.nv import NvMemory, NvState

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
    rate_ppb: int = 0
    t0: float = math.inf
    slot_t: float = 0.0
    guard_t: float = 0.0
    cut: float = math.inf  # gates open for good from here (swap, e-stop, watchdog)
    finished: bool = False
    counted: set[tuple[int, int, bool]] = field(default_factory=set)  # (slot, index, into)
    legs: set[tuple[int, int]] = field(default_factory=set)  # (slot, index) heads that conducted
    released: dict[tuple[int, int], float] = field(default_factory=dict)  # store release W

    @property
    def end(self) -> float:
        return min(self.t0 + self.slots * self.slot_t, self.cut)

    @property
    def tau_s(self) -> float:
        return (self.slot_us - self.guard_us) * 1e-6


class CommitRefused(Exception):
    def __init__(self, status: str):
        self.status = status


class CommandRefused(Exception):
    """A command not carried out: not the owner's, a bad tag, a stale sequence number."""

    def __init__(self, why: str):
        self.why = why
        super().__init__(why)


@dataclass
class Owner:
    """The session that commands the router, and its last accepted command."""

    session: int
    epoch: int
    seq: int = 0
    last: tuple[str, bytes, bytes] | None = None  # kind, body, tag


# the geometry a commit command carries, in its fields' names
_GEOMETRY = (("frame_slots", "commit_slots"), ("slot_us", "commit_slot_us"),
             ("guard_us", "commit_guard_us"))  # fmt: skip


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
        command_keys: dict[int, CommandKey],
        watchdog_ms: int,
        frame_slots: int,
        slot_us: int,
        guard_us: int,
        nv: NvMemory | None = None,
    ) -> None:
        self.id, self.wire_id, self.ports, self.storage = router_id, wire_id, ports, storage
        self.clock = clock
        self.command_keys = command_keys
        self.headers = RouterHeaderState(ring)
        self.config: dict[str, int] = {
            "upload_page": 0,
            "frame_slots": frame_slots,
            "slot_us": slot_us,
            "guard_us": guard_us,
        }
        self.default_watchdog_ms = watchdog_ms  # shown until a claim sets the owner's
        self.watchdog_ms = 0
        self.owner: Owner | None = None
        self.claims = 0  # since power-up: the low half of the challenge
        self.rows = bytearray(_MAP.params["bank_entries_max"] * ROW_BYTES)  # upload buffer
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
        self.last_beat: float | None = None  # the owner's last accepted command
        self.aborted: set[tuple[int, int]] = set()  # (frame, slot) whose gates were opened
        # meters: per port [energy_in, energy_out (J), packets_in, packets_out, V, I]
        self.meters = [[0.0, 0.0, 0, 0, 0.0, 0.0] for _ in range(ports)]
        self.attribution: dict[tuple[int, int], list[float]] = {}  # (sink, transfer) -> [n, J]
        # the same per running frame, latched when the frame ends
        self.frame_attribution: dict[int, dict[tuple[int, int], list[float]]] = {}
        self.latched: tuple[int, dict[tuple[int, int], list[float]]] = (0, {})
        self.store: dict[bytes, float] = {}  # inner entry -> energy held (J)
        self.store_nominal: dict[bytes, float] = {}  # ... and what the circuit model says
        # energy the circuit model gives this router's sinks minus what they metered (J),
        # per running frame, latched at its end with the attribution
        self.frame_shortfall: dict[int, float] = {}
        self.latched_shortfall = 0.0
        self.latched_start = 0.0  # true time (us) the latched frame started
        self.flip_bank_writes = 0  # injected fault: > 0 flips a bit of each window write
        self.bank_flips = 0
        self.nv = nv or NvMemory(None, router_id)
        self._power_up(self.nv.load())

    # --- power-up ---------------------------------------------------------------------

    def _power_up(self, kept: NvState) -> None:
        """Restore what non-volatile memory kept; count this power-up."""
        h = self.headers
        if kept.epoch is not None:
            h.last_committed, h.epoch = kept.replay_mark, kept.epoch
            h.previous, h.epoch_since = kept.previous, kept.epoch_since
        if kept.estop:
            self.halted = "fault"
            self.alarms.add("estop")
        self.boot_count = kept.boot_count + 1
        self._save()

    def _save(self) -> None:
        h = self.headers
        self.nv.save(
            NvState(
                self.boot_count, h.last_committed, h.epoch, h.previous, h.epoch_since,
                self.halted == "fault",
            )
        )  # fmt: skip

    @property
    def challenge(self) -> int:
        """Never the same twice: power-ups (kept across them) and claims since."""
        return (self.boot_count & 0xFFFFFFFF) << 32 | (self.claims & 0xFFFFFFFF)

    # --- time -------------------------------------------------------------------------

    def watchdog_deadline(self) -> float | None:
        """True time the owner's watchdog expires (its last command + the timeout)."""
        if self.owner is None or not self.watchdog_ms or self.last_beat is None:
            return None
        return self.last_beat + self.watchdog_ms * 1000.0 / self.clock.rate

    def lapse(self, t: float) -> None:
        """The watchdog expired: ownership lapses, and a router not halted goes safe."""
        self.owner = None
        if not self.halted:
            self.halt(t, "safe")

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
        self.latched_shortfall = self.frame_shortfall.pop(run.frame, 0.0)
        self.latched_start = run.t0 if math.isfinite(run.t0) else 0.0

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

    # --- commands -----------------------------------------------------------------------

    def command(self, kind: str, fields: dict[str, int], body: bytes, tag: bytes, t: float) -> None:
        """Carry out an authenticated command, or raise ``CommandRefused`` having changed
        nothing but the refusal counter."""
        try:
            self._carry_out(kind, fields, body, tag, t)
        except CommandRefused:
            self.counters["command_refusals"] += 1
            raise

    def _carry_out(
        self, kind: str, fields: dict[str, int], body: bytes, tag: bytes, t: float
    ) -> None:
        code = _MAP.code("command", kind)
        if kind == "claim":
            return self._claim(fields, body, tag, t)
        owner = self.owner
        prefix = "clear" if kind == "clear_fault" else kind
        if owner is None or fields[f"{prefix}_session"] != owner.session:
            raise CommandRefused("not the owner's session")
        if not self.command_keys[owner.epoch].verify(code, body, tag):
            raise CommandRefused("tag does not verify")
        seq = fields[f"{prefix}_seq"]
        if seq == owner.seq and owner.last == (kind, body, tag):
            return None  # a master whose reply was lost repeats it: answered, not redone
        if seq <= owner.seq:
            raise CommandRefused(f"sequence number {seq} is not above {owner.seq}")
        owner.seq, owner.last = seq, (kind, body, tag)
        self.last_beat = t  # every command of the owner feeds the watchdog
        if kind == "heartbeat":
            self.watchdog_ms = fields["heartbeat_watchdog_ms"]
        elif kind == "commit":
            self.commit(fields)
        elif kind == "arm":
            self.arm(t, fields["arm_frame"], fields["arm_start_us"], fields["arm_rate_ppb"])
        elif kind == "clear_fault":
            self.clear_fault()
        elif kind in ("abort", "release"):
            self.abort(t)
            if kind == "release":
                self.owner = None
        return None

    def _claim(self, fields: dict[str, int], body: bytes, tag: bytes, t: float) -> None:
        epoch = fields["claim_epoch"]
        key = self.command_keys.get(epoch)
        if key is None or not key.verify(_MAP.code("command", "claim"), body, tag):
            raise CommandRefused("tag does not verify")
        frame = (self.headers.last_committed or 0) + 1
        if epoch not in self.headers.acceptable_epochs(frame):
            raise CommandRefused(f"epoch {epoch} is retired")
        if fields["claim_challenge"] != self.challenge:
            raise CommandRefused("not the current challenge")
        if self.owner is not None or not fields["claim_session"]:
            raise CommandRefused("owned by another session")
        self.owner = Owner(fields["claim_session"], epoch)
        self.claims += 1
        self.watchdog_ms, self.last_beat = fields["claim_watchdog_ms"], t
        return None

    def write_window(self, offset: int, data: bytes) -> None:
        """Write the upload buffer. A committed bank was opened out of it: it stays."""
        base = self.config["upload_page"] * _MAP.params["window_entries"] * ROW_BYTES
        start = base + offset
        self.rows[start : start + len(data)] = data
        if self.flip_bank_writes and data:
            self.rows[start] ^= 0x01  # what the bus wrote is not what the memory holds
            self.bank_flips += 1
        if self.staging == "empty":
            self.staging = "loading"

    def read_window(self, offset: int, length: int) -> bytes:
        base = self.config["upload_page"] * _MAP.params["window_entries"] * ROW_BYTES
        return bytes(self.rows[base + offset : base + offset + length])

    def commit(self, fields: dict[str, int]) -> None:
        frame, count, crc = (fields[k] for k in ("commit_frame", "commit_count", "commit_crc"))
        geometry = tuple(fields[k] for _, k in _GEOMETRY)
        staged = self.staged
        if self.staging == "armed":
            self.commit_status = "busy"
        elif (
            self.staging == "ready"
            and staged is not None
            and (staged.frame, staged.count, staged.crc) == (frame, count, crc)
            and (staged.slots, staged.slot_us, staged.guard_us) == geometry
        ):
            self.commit_status = "ok"  # committed already: idempotent
        else:
            try:
                self.staged = self._build(frame, count, crc, *geometry)
                self.staging, self.commit_status = "ready", "ok"
                self.config.update({k: v for (k, _), v in zip(_GEOMETRY, geometry, strict=True)})
            except CommitRefused as why:
                self.commit_status = why.status  # the staging bank stays as it was
            self._save()

    def _build(
        self, frame: int, count: int, crc: int, slots: int, slot_us: int, guard_us: int
    ) -> Run:
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

    def arm(self, t: float, frame: int, start: int, rate_ppb: int) -> None:
        staged, live = self.staged, self.live
        armed_as = (start, rate_ppb)
        if self.halted:
            self.arm_status = "not_allowed"
        elif staged is None and live is not None and live.frame == frame:
            # a retry whose first reply was lost: it already runs; never another start
            self.arm_status = (
                "ok" if (live.start_us, live.rate_ppb) == armed_as else "already_armed"
            )
        elif staged is None or self.staging not in ("ready", "armed"):
            self.arm_status = "not_ready"
        elif staged.frame != frame:
            self.arm_status = "wrong_frame"
        elif self.staging == "armed":
            self.arm_status = (
                "ok" if (staged.start_us, staged.rate_ppb) == armed_as else "already_armed"
            )
        else:
            t0 = self.clock.true_time(start)
            if t0 <= t:
                self.arm_status = "too_late"
                return
            # slot lengths on this clock, stretched as the controller asked, in true time
            rate = self.clock.rate / (1.0 + rate_ppb * 1e-9)
            staged.start_us, staged.rate_ppb, staged.t0 = start, rate_ppb, t0
            staged.slot_t, staged.guard_t = staged.slot_us / rate, staged.guard_us / rate
            self.staging, self.arm_status = "armed", "ok"

    def abort(self, t: float) -> None:
        """Open every gate now and drop both banks, without a fault (the owner's abort)."""
        self._drop_banks(t)

    def _drop_banks(self, t: float) -> None:
        for run in (self.live, self.staged):
            if run is not None:
                run.cut = min(run.cut, t)
        if self.live is not None and not self.live.finished:
            self._finish(self.live, t)
        self.staged, self.staging = None, "empty"

    def halt(self, t: float, why: str) -> None:
        """Open every gate now and drop the banks: e-stop ("fault") or watchdog ("safe")."""
        self._drop_banks(t)
        if why == "fault":
            self.counters["estops"] += 1
            self.alarms.add("estop")
            self.halted = why
            self._save()  # a latched e-stop outlives a power cut
        else:
            self.halted = self.halted or why
            self.counters["watchdog_trips"] += 1
            self.alarms.add("watchdog")

    def jump_clock(self, delta_us: float) -> None:
        """The clock jumps: frames already armed start when the jumped clock says."""
        self.clock.offset_us += delta_us
        for run in (self.live, self.staged):
            if run is not None and math.isfinite(run.t0):
                run.t0 -= delta_us / self.clock.rate

    def clear_fault(self) -> None:
        was = self.halted
        self.halted = None
        self.alarms.clear()
        if was == "fault":
            self._save()

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
