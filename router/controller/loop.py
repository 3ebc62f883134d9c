"""The frame loop: plan, seal, upload, commit, arm and settle frame after frame.

A rolling pipeline. While frame f runs on the routers, frame f+1 is planned (market first
when the scenario quotes prices), sealed, uploaded to every live router's staging bank
and committed, then armed to start the instant f ends. After f ends its meters are read
from the registers each router latched at the end of f, settled, journaled and
published. Frame numbers are above every frame of the journal and every frame the key
store ever reserved (another run's journal, another output folder); each is made
durable in both before its headers are sealed, so no restart reuses a number or a
header nonce.

Faults: a router that stops answering is left out of the next plan (its transfers are
rerouted or reported undelivered) and probed before every frame until it answers. A
commit that fails anywhere skips that frame on every router: no half frame runs. A
router whose clock steps between two samples has its armed and running frames aborted,
is re-synchronised and planned again once in step; frames planned with it are skipped.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench import Scenario, Topology
from firmware_bridge.driver import Attribution, CommitResult, Meters, RouterDriver, RouterStatus
from firmware_bridge.errors import ArmError, BridgeError, CommitError
from firmware_bridge.keystore import KeyStore
from firmware_bridge.tasks import stop_tasks
from router.controller.clocks import FIRST_SAMPLES, ClockKeeper, ClockStep, now
from router.controller.fleet import Fleet
from router.controller.outcome import FrameOutcome, RunOptions
from router.controller.prepare import Prepared, prepare_frame
from router.controller.stages import FrameStage, MarketStage
from router.journal import Journal
from router.settlement import settle_frame
from router.timesync import ClockSkewError
from scheduler import LrOptions

log = logging.getLogger(__name__)

FIRST_LEAD_S = 0.5  # the first frame starts this long after it is committed
STAGING_FREE_S = 0.002  # after a frame's start: its bank has swapped in, staging is free
MAX_WAIT_FRAMES = 3  # the loop never sleeps longer than this many frames at once
ARM_AHEAD_S = 0.1  # arm the next frame this long before it starts, at least ...
ARM_AHEAD_FACTOR = 3  # ... or three times what arming typically takes (slow links),
ARM_RETRIES = 2  # plus this many reply timeouts: lost replies are retried before the start
ARM_WAKE_S = 0.02  # wake this much before arming is due: a late wake-up delays the frame
SAMPLE_PERIOD_S = 0.02  # one clock round trip per router this often, in the background
SAMPLE_SHARE = 5  # ... but never more than a fifth of the links' time
SYNC_MARGIN = 0.6  # before the first frame, wait for the skew to be this far inside the guard
SYNC_BASELINE_S = 1.0  # sample at least this long before the first frame (the drift)
SYNC_TIMEOUT_S = 10.0  # before the first frame, sample this long at most for the clocks to agree
LATE_ALARM_MS = 1.0  # a frame starting this much after the one before ended: frame_late
METER_POLL_S = 0.01  # how often to look for a frame's latched meters after it ended
MAX_RATE_PPB = 2**31 - 1  # the arm_rate_ppb register is an i32


class ControllerError(BridgeError):
    """The frame loop cannot go on (clocks out of step, no router left)."""


@dataclass
class Controller:
    scenario: Scenario  # the base scenario: transfers and quotes as requested
    fleet: Fleet
    store: KeyStore
    journal: Journal
    options: RunOptions = field(default_factory=RunOptions)
    # decides each frame's transfers (by default the market, when offers and bids are quoted)
    stage: FrameStage = field(default_factory=MarketStage)
    on_frame: Callable[[FrameOutcome], None] = lambda outcome: None
    on_alarm: Callable[[int | None, str, str, str], None] = lambda f, src, code, text: None
    clocks: ClockKeeper = field(init=False)
    outcomes: list[FrameOutcome] = field(default_factory=list)
    stop_reason: str | None = None
    # with options.telemetry: the last status and port meters read from each router
    status: dict[str, RouterStatus] = field(default_factory=dict)
    ports: dict[str, Meters] = field(default_factory=dict)
    port_delta_j: dict[str, dict[int, float]] = field(default_factory=dict)
    last_prepared: Prepared | None = None  # of the last frame that ran
    _arm_took: collections.deque[float] = field(
        default_factory=lambda: collections.deque(maxlen=9)
    )  # seconds, the last arms
    stopped_at: float | None = None  # local time of an e-stop
    # per router: start (its clock, us) and slot stretch (ppb) of the last frame armed
    _last_armed: dict[str, tuple[int, int]] = field(default_factory=dict)
    syncing: dict[str, float] = field(default_factory=dict)  # back, clock not yet in step
    _warm: object | None = None  # the last plan's end state: the next plan starts there
    # the journal's head to keep with each frame reservation (journal id, JSON), if any
    witness_for: Callable[[int], tuple[str, dict[str, object]]] | None = None
    arming: bool = False  # a frame was (being) armed in this run: a gate may conduct
    _planned_frames: int = 0  # frames planned in this run: the stage's frame index
    _inflight: list[_Frame] = field(default_factory=list)  # armed, not yet finished
    # each router's counters as last read, how many of its refusals were our own
    # commands' then, and our refusals it had not counted yet: what changed since is
    # this frame's
    _counters: dict[str, tuple[dict[str, int], int, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.topology = Topology(self.scenario)
        # Routers may start a slot up to one guard apart (the clocks are refused beyond),
        # and conduction shortens by as much: within the meter's tolerance plus the
        # guard's share of tau, a delivery is complete and nobody owes for it.
        f = self.scenario.frame
        base = self.options.settlement
        self.settlement_config = dataclasses.replace(
            base, tolerance=min(0.5, base.tolerance + f.guard_us / 1e6 / f.tau_s)
        )
        self.clocks = ClockKeeper(guard_s=self.scenario.frame.guard_us / 1e6)
        self.keys = self.store.sealing_keys()
        self.fleet.on_alarm = lambda router, code, text: self.alarm(None, router, code, text)

    # -- the loop -------------------------------------------------------------------------
    async def run(self) -> list[FrameOutcome]:
        opts = self.options
        await self.journal.append_async(
            "start",
            {
                "scenario": self.scenario.name,
                "frames": opts.frames,
                "routers": self.fleet.addresses,
            },
        )
        for rid, what in self.fleet.cleared.items():  # done before the journal was open
            self.alarm(None, rid, "fault_cleared", f"at start: {what}")
        await self._read_telemetry(None, self.fleet.live)  # the counters' baseline
        await self.clocks.sample(self._live_drivers(), rounds=FIRST_SAMPLES)
        sampler = asyncio.create_task(self._sample_clocks(), name="clock sampling")
        try:
            return await self._frames()
        finally:
            await stop_tasks(sampler)

    async def _frames(self) -> list[FrameOutcome]:
        opts = self.options
        if self.stop_reason:  # stopped before the first frame: plan nothing
            await self.journal.append_async("stop", {"reason": self.stop_reason})
            return self.outcomes
        current = await self._plan()  # the sampler builds the clocks' baseline meanwhile
        await self._upload(current)  # ... and meanwhile (seconds on a slow serial line)
        await self._synchronised()  # the first start is armed on fits this fresh
        await self._arm(current, now() + max(FIRST_LEAD_S, self._arm_lead()))
        for i in range(opts.frames):
            nxt = None
            if i + 1 < opts.frames and not self.stop_reason:
                nxt = await self._plan()  # while the current frame is armed or running
                # the staging bank is free once the current frame has swapped in
                await self._sleep_until(current.start_local + STAGING_FREE_S)
                await self._between_frames()
                if self.stop_reason:
                    nxt.failed["controller"] = f"not run: the run stopped ({self.stop_reason})"
                else:
                    await self._upload(nxt)
                    # arm late: the start instant is then extrapolated from fresh clock
                    # fits over a short time, not most of a frame ahead
                    await self._sleep_until(current.end_local - self._arm_lead() - ARM_WAKE_S)
                    if self.stop_reason:
                        nxt.failed["controller"] = f"not run: the run stopped ({self.stop_reason})"
                    began = now()
                    start = max(current.end_local, now() + self._arm_lead())
                    await self._arm(nxt, start, after=current)
                    self._arm_took.append(now() - began)
            await self._sleep_until(current.end_local)
            await self._finish(current)
            if nxt is None:
                break
            current = nxt
        await self.journal.append_async("stop", {"reason": self.stop_reason or "done"})
        return self.outcomes

    def _arm_lead(self) -> float:
        """How long before a frame's start its arming must begin."""
        typical = statistics.median(self._arm_took) if self._arm_took else 0.0
        return max(ARM_AHEAD_S, ARM_AHEAD_FACTOR * typical) + ARM_RETRIES * self.fleet.timeout_s

    async def _between_frames(self) -> None:
        """Probe routers that stopped answering; one that answers again has its clock
        sampled anew and rejoins the plans once the clock is in step (``_in_step``)."""
        back = await self.fleet.probe() if self.fleet.down else []
        for rid in back:
            self.clocks.forget(rid)
            self.syncing[rid] = now()
        if back:
            try:
                await self.clocks.sample(
                    {rid: self.fleet.drivers[rid] for rid in back}, rounds=FIRST_SAMPLES
                )
            except BridgeError as exc:
                self.alarm(None, "controller", "clock_sample_failed", f"clock sample failed: {exc}")

    async def _sample_clocks(self) -> None:
        """Poll every live router's clock, as NTP does: the fits always have fresh round
        trips and a baseline of seconds for the drift. A slow link (RS-485 at 115200) is
        polled less often: never more than 1/SAMPLE_SHARE of its time."""
        took: collections.deque[float] = collections.deque(maxlen=9)
        while True:
            # pace by the link time of a typical round (lost replies and queueing behind
            # uploads are not a slow link)
            typical = statistics.median(took) if took else 0.0
            await asyncio.sleep(max(SAMPLE_PERIOD_S, SAMPLE_SHARE * typical))
            live = [r for r in self.fleet.live if r in self.clocks.estimates]
            if not live:
                continue
            # a mute router is the heartbeat's and the upload's business, not this loop's
            with contextlib.suppress(BridgeError):
                took.append(await self.clocks.sample({r: self.fleet.drivers[r] for r in live}))
            for step in self.clocks.take_steps():
                await self._clock_stepped(step)

    async def _clock_stepped(self, step: ClockStep) -> None:
        """A router's clock jumped: the frames it was armed for start at the wrong instant
        on it now. Abort them there (gates open: no collision), leave it out of the plans,
        and sample its clock afresh; ``_in_step`` plans it again once it is in step."""
        rid = step.router
        self.syncing[rid] = now()
        self.alarm(
            None,
            rid,
            "clock_skew",
            f"router {rid}'s clock stepped by {step.step_s * 1e6:+.0f} us between two clock "
            f"samples; its frames aborted, left out of the plans until its clock is in step",
        )
        for f in self._inflight:
            if rid in f.routers and rid not in f.arm_failed and f.start_local > now():
                f.arm_failed[rid] = "aborted before its start: its clock stepped"
        try:
            await self.fleet.drivers[rid].abort()
            await self.clocks.sample({rid: self.fleet.drivers[rid]}, rounds=FIRST_SAMPLES)
        except BridgeError as exc:
            self.alarm(None, rid, "clock_sample_failed", f"router {rid}: {exc}")
            if _unreachable(exc):
                self.fleet.mark_down(rid, str(exc))

    async def _synchronised(self) -> None:
        """Wait (the sampler sampling) until the clocks agree within the guard about a
        start FIRST_LEAD_S from now, or refuse to run."""
        began = now()
        deadline = began + SYNC_TIMEOUT_S
        while True:
            if not self.fleet.live:
                raise ControllerError(
                    f"cannot run: no router answers ({'; '.join(self.fleet.down.values())})"
                )
            # a router whose clock stepped meanwhile has no fit until it is sampled afresh:
            # wait for it (past the deadline, the frames leave it out until it is in step)
            fitted = [r for r in self.fleet.live if r in self.clocks.estimates]
            if not fitted:
                if now() > deadline:
                    raise ControllerError(
                        f"cannot run: no router's clock could be fitted in {SYNC_TIMEOUT_S:g} s"
                    )
                await asyncio.sleep(SAMPLE_PERIOD_S)
                continue
            try:
                plan = self.clocks.start(now() + FIRST_LEAD_S, fitted)
                settled = now() - began >= SYNC_BASELINE_S and len(fitted) == len(self.fleet.live)
                if (settled and plan.skew_s <= SYNC_MARGIN * plan.guard_s) or now() > deadline:
                    return  # with a baseline and a margin: the first frames need the fit

            except ClockSkewError as exc:
                if now() > deadline:
                    raise ControllerError(
                        f"cannot run: {exc} (after {SYNC_TIMEOUT_S:g} s of clock sampling)"
                    ) from exc
            await asyncio.sleep(SAMPLE_PERIOD_S)

    # -- one frame ------------------------------------------------------------------------
    async def _plan(self) -> _Frame:
        """Reserve a frame number (journaled before anything is sealed), plan and seal."""
        # above every frame of this journal and every frame this key store ever sealed
        frame = await asyncio.to_thread(
            self.store.reserve_frame, self.journal.next_frame(), self.witness_for
        )
        await self.journal.append_async("frame", {"phase": "reserved"}, frame=frame)
        self._in_step()
        down = frozenset(self.fleet.down) | frozenset(self.syncing)
        planned = self._planned()  # what the plan routes through (a clock may step meanwhile)
        prep = await asyncio.to_thread(
            prepare_frame,
            self.scenario,
            self.topology,
            frame,
            self.keys,
            index=self._planned_frames,
            down=down,
            stage=self.stage,
            lr_options=self._lr_options(),
            warm=self._warm,
        )
        self._planned_frames += 1
        self._warm = prep.plan.warm
        record = _plan_record(prep, down, self.stage.name)
        await self.journal.append_async("plan", record, frame=frame)
        return _Frame(prep, routers=self._planned(), down=sorted(down), planned=planned)

    def _alarm_late(self, f: _Frame, after: _Frame) -> None:
        p = f.prep
        budget = self._lr_options().time_limit_s
        limit = f", its budget {budget * 1e3:.0f} ms" if budget is not None else ""
        self.alarm(
            p.frame,
            "controller",
            "frame_late",
            f"frame {p.frame} starts {f.late_ms:.0f} ms after frame {after.prep.frame} ended: "
            f"it was not ready in time (plan {p.plan_ms:.0f} ms{limit}, seal {p.seal_ms:.0f}, "
            f"upload {f.upload_ms:.0f}, commit {f.commit_ms:.0f} ms)",
        )

    def _lr_options(self) -> LrOptions:
        lr = self.options.lr
        if lr.time_limit_s is not None:
            return lr
        return dataclasses.replace(lr, time_limit_s=self.options.plan_share * self._frame_seconds())

    def _planned(self) -> list[str]:
        """The routers the plans use: answering, and with their clocks in step."""
        return [r for r in self.fleet.live if r not in self.syncing]

    def _in_step(self) -> None:
        """Let routers that came back into the plans once their clocks are known well
        enough, by the first frame's rule: a baseline of SYNC_BASELINE_S, then the skew a
        frame ahead with them in the plan within SYNC_MARGIN of the guard (within the
        guard once they have been sampled for SYNC_TIMEOUT_S: a loaded host)."""
        ahead = now() + self._frame_seconds()
        for rid, since in list(self.syncing.items()):
            if rid in self.fleet.down:
                del self.syncing[rid]  # gone again: probed again
                continue
            waited = now() - since
            planned = [r for r in self._planned() if r in self.clocks.estimates]
            if waited < SYNC_BASELINE_S or rid not in self.clocks.estimates:
                continue
            try:
                skew = self.clocks.start(ahead, [*planned, rid]).skew_s
            except ClockSkewError:
                continue
            if skew <= SYNC_MARGIN * self.clocks.guard_s or waited >= SYNC_TIMEOUT_S:
                del self.syncing[rid]
                self.alarm(
                    None, rid, "router_back", f"router {rid} is in step again: planned again"
                )

    async def _upload(self, f: _Frame) -> None:
        tables = f.prep.sealed.tables
        entries = {rid: [blob for _, _, blob in tables.get(rid, [])] for rid in f.routers}
        t0 = time.perf_counter()
        up = await self.fleet.each(
            lambda rid: self.fleet.drivers[rid].upload_bank(f.prep.frame, entries[rid]), f.routers
        )
        t1 = time.perf_counter()
        ok = {rid: crc for rid, crc in up.items() if not isinstance(crc, BaseException)}
        commits = await self.fleet.each(
            lambda rid: self.fleet.drivers[rid].commit(f.prep.frame, ok[rid]), list(ok)
        )
        # a bank whose memory changed between upload and commit (a flipped bit; nobody
        # else can write it) fails its CRC: upload it once more before giving up the frame
        again = [
            r
            for r, c in commits.items()
            if isinstance(c, CommitError) and c.status == "crc_mismatch"
        ]
        if again:

            async def reupload(rid: str) -> CommitResult:
                d = self.fleet.drivers[rid]
                return await d.commit(f.prep.frame, await d.upload_bank(f.prep.frame, entries[rid]))

            commits.update(await self.fleet.each(reupload, again))
        t2 = time.perf_counter()
        f.upload_ms, f.commit_ms = (t1 - t0) * 1e3, (t2 - t1) * 1e3
        records: dict[str, object] = {}
        for rid in f.routers:
            uploaded = up[rid]
            res: CommitResult | BaseException = (
                uploaded if isinstance(uploaded, BaseException) else commits[rid]
            )
            if isinstance(res, BaseException):
                f.failed[rid] = str(res)
                records[rid] = {"error": str(res)}
                if _unreachable(res):
                    self.fleet.mark_down(rid, str(res))
            else:
                records[rid] = {
                    "entries": len(entries[rid]),
                    "crc": ok[rid],
                    "accepted": res.accepted,
                    "refused": res.refused,
                }
                if res.refused:
                    self.alarm(
                        f.prep.frame,
                        rid,
                        "entries_refused",
                        f"router {rid} refused {res.refused} slot-table entries",
                    )
        await self.journal.append_async("commit", {"routers": records}, frame=f.prep.frame)
        if f.failed:
            rid, why = next(iter(f.failed.items()))
            self.alarm(
                f.prep.frame,
                rid,
                "commit_failed",
                f"frame {f.prep.frame} skipped on every router: {rid} did not commit ({why})",
            )

    async def _arm(self, f: _Frame, start_local: float, after: _Frame | None = None) -> None:
        """Arm ``f`` to start at ``start_local`` on every router's clock (right ``after``
        the frame before, when the links kept up)."""
        self.arming = True  # from here on a gate may conduct: a failure e-stops
        f.start_local = start_local
        f.end_local = start_local + self._frame_seconds()
        if after is not None:
            f.late_ms = max(0.0, start_local - after.end_local) * 1e3
        if f.failed:
            return
        if f.late_ms >= LATE_ALARM_MS and after is not None:
            self._alarm_late(f, after)
        f.routers = [r for r in f.routers if r not in self.fleet.down]
        if not f.routers:
            f.failed["controller"] = "no router answers"
            self.alarm(
                f.prep.frame,
                "controller",
                "commit_failed",
                f"frame {f.prep.frame} skipped: no router answers",
            )
            return
        stepped = [
            r
            for r in dict.fromkeys([*f.planned, *f.routers])  # planned with, or uploaded to
            if r in self.syncing or r not in self.clocks.estimates
        ]
        if stepped:
            f.failed["clocks"] = f"the clock of {', '.join(stepped)} stepped: being re-synced"
            self.alarm(
                f.prep.frame,
                "controller",
                "clock_skew",
                f"frame {f.prep.frame} skipped: planned with {', '.join(stepped)}, whose clock "
                f"stepped since",
            )
            return
        try:
            plan = self.clocks.start(f.start_local, f.routers)
        except ClockSkewError as exc:
            f.failed["clocks"] = str(exc)
            self.alarm(
                f.prep.frame, "controller", "clock_skew", f"frame {f.prep.frame} skipped: {exc}"
            )
            return
        starts = {r: round(s * 1e6) for r, s in plan.router_start_s.items()}
        rates = self._rates_ppb(f.routers)
        # never before the router's own end of the frame before: a newer clock fit must
        # not make the next frame's swap cut the running one's last slot short
        frame_us = self.scenario.frame.slots * self.scenario.frame.slot_ms * 1000
        for r, (prev, prev_ppb) in self._last_armed.items():
            if r in starts:
                starts[r] = max(starts[r], prev + math.ceil(frame_us * (1 + prev_ppb * 1e-9)))
        armed = await self.fleet.each(
            lambda rid: self.fleet.drivers[rid].arm(f.prep.frame, starts[rid], rates[rid]),
            f.routers,
        )
        for rid, res in armed.items():
            if isinstance(res, BaseException):
                f.arm_failed[rid] = str(res)
                self.alarm(f.prep.frame, rid, "arm_failed", f"router {rid} did not arm: {res}")
                if _unreachable(res):
                    self.fleet.mark_down(rid, str(res))
                elif isinstance(res, ArmError) and res.status == "not_allowed":
                    await self._halted(rid)
        if f.arm_failed.keys() >= set(f.routers):
            f.failed["arm"] = "no router armed"  # it runs nowhere: skipped, not settled
        f.skew_us = plan.skew_s * 1e6
        self._inflight.append(f)
        self._last_armed = {r: (starts[r], rates[r]) for r in f.routers if r not in f.arm_failed}
        await self.journal.append_async(
            "frame",
            {
                "phase": "armed",
                "start_us": starts,
                "rate_ppb": rates,
                "skew_us": f.skew_us,
                "not_armed": f.arm_failed,
            },
            frame=f.prep.frame,
        )

    def _rates_ppb(self, routers: list[str]) -> dict[str, int]:
        """How much faster each router's clock runs than the bench's (the median router's),
        in ppb: each stretches its slots by as much, so that a frame's last slot is as
        much in step as its first. Unstretched, routers 300 ppm apart drift 300 us apart
        (three guards of 100 us) over a 1 s frame, and packets are lost late in it."""
        ref = self.clocks.rate(routers)
        out = {}
        for r in routers:
            ppb = ((1.0 + self.clocks.estimates[r].drift) / ref - 1.0) * 1e9
            out[r] = max(-MAX_RATE_PPB, min(MAX_RATE_PPB, round(ppb)))
        return out

    async def _halted(self, rid: str) -> None:
        """A router refused to arm because it is halted. Its watchdog tripped (the link was
        too slow or broken for a while): clear it, it runs the next frame. Someone
        e-stopped it (``ppr estop``, its own button): that stops the whole run."""
        try:
            state = (await self.fleet.drivers[rid].read_status()).state
            if state == "safe":
                await self.fleet.drivers[rid].clear_fault()
                self.alarm(
                    None,
                    rid,
                    "watchdog_tripped",
                    f"router {rid}'s watchdog had opened its gates (no heartbeat for "
                    f"{self.fleet.watchdog_ms} ms); cleared, it runs the next frame",
                )
            elif state == "fault":
                self.request_stop(f"router {rid} was e-stopped")
        except BridgeError as exc:
            self.fleet.mark_down(rid, str(exc))

    async def _finish(self, f: _Frame) -> None:
        """After the frame's end: its latched meters, the settlement, the record."""
        prep = f.prep
        if self.stopped_at is not None and self.stopped_at <= f.start_local and not f.failed:
            # an e-stop drops armed banks: the routers never started this frame
            f.failed["controller"] = "not run: e-stopped before it started"
        delivered: dict[str, float] = {t.id: 0.0 for t in prep.scenario.transfers}
        packets = 0
        ran = [r for r in f.routers if r not in f.arm_failed]
        if not f.failed:
            latched = await self._latched(prep.frame, ran)
            names = [t.id for t in prep.scenario.transfers]
            for rid, records in latched.items():
                if records is None:
                    self.alarm(
                        prep.frame,
                        rid,
                        "meters_unread",
                        f"meters of {rid} for frame {prep.frame} could not be read",
                    )
                    continue
                for a in records:
                    if a.transfer < len(names):
                        delivered[names[a.transfer]] += a.energy_j
                        packets += a.packets
            await self.journal.append_async(
                "meters",
                {
                    rid: None if recs is None else [a.__dict__ for a in recs]
                    for rid, recs in latched.items()
                },
                frame=prep.frame,
            )
        settlement = None  # a skipped frame ran nowhere: nothing to settle, nobody owes
        stage_record = None
        if not f.failed:
            settlement = settle_frame(
                prep.frame,
                prep.base,  # a transfer added by command since is not this frame's
                prep.plan,
                delivered,
                market=prep.market,
                config=self.settlement_config,
            )
            await self.journal.append_async("settlement", settlement.to_json(), frame=prep.frame)
            stage_record = self.stage.settled(prep.stage, settlement)
            if stage_record is not None:
                stage_record = {"stage": self.stage.name, **stage_record}
                await self.journal.append_async("stage", stage_record, frame=prep.frame)
            short = [t for t in settlement.transfers if t.shortfall_packets > 0]
            if short:
                listed = ", ".join(t.transfer for t in short[:5]) + (", ..." if short[5:] else "")
                self.alarm(
                    prep.frame,
                    "controller",
                    "delivery_short",
                    f"frame {prep.frame}: {sum(t.shortfall_j for t in short):.2f} J of "
                    f"{sum(t.planned_sink_j for t in short):.2f} J due short, on "
                    f"{len(short)} transfers ({listed})",
                )
        if f in self._inflight:
            self._inflight.remove(f)
        await self._read_telemetry(prep.frame, ran)
        if not f.failed:
            self.last_prepared = prep
        outcome = FrameOutcome.of(f, settlement, packets, stage_record)
        await self.journal.append_async("frame", outcome.record(), frame=prep.frame)
        self.outcomes.append(outcome)
        self.on_frame(outcome)

    async def _read_telemetry(self, frame: int | None, routers: list[str]) -> None:
        """Status of each router, for its counters (collisions; refused commands and
        writes that were not ours: interference); with telemetry, its port meters too,
        port energy as the difference from the previous reading (out of the router
        positive), about one frame's worth. ``frame`` None: the baseline, no alarms."""

        async def read(rid: str) -> tuple[RouterStatus, Meters | None]:
            d = self.fleet.drivers[rid]
            status = await d.read_status()
            return status, await d.read_meters() if self.options.telemetry else None

        results = await self.fleet.each(read, routers)
        collided: dict[str, int] = {}
        foreign: dict[str, dict[str, int]] = {}
        for rid, res in results.items():
            if isinstance(res, BaseException):
                continue
            status, meters = res
            # read after the status: a refusal of ours may be counted here and not yet
            # there (never the other way round), so the difference is carried over
            own = self.fleet.drivers[rid].own_refusals
            counted, own_before, pending = self._counters.get(rid, (status.counters, own, 0))
            grew = {k: _grew(counted.get(k, 0), n) for k, n in status.counters.items()}
            if grew["collisions"]:
                collided[rid] = grew["collisions"]
            commands = grew["command_refusals"] - (own - own_before) - pending
            self._counters[rid] = (status.counters, own, max(0, -commands))
            theirs = {"commands": max(0, commands), "writes": grew["write_refusals"]}
            if any(theirs.values()):
                foreign[rid] = theirs
            if meters is None:
                continue
            before = self.ports.get(rid)
            self.port_delta_j[rid] = {
                m.port: (m.energy_out_j - m.energy_in_j)
                - (
                    (before.ports[m.port].energy_out_j - before.ports[m.port].energy_in_j)
                    if before is not None and m.port < len(before.ports)
                    else 0.0
                )
                for m in meters.ports
            }
            self.status[rid], self.ports[rid] = status, meters
        if frame is None:
            return
        if collided:
            each = ", ".join(f"{r} ({n})" for r, n in collided.items())
            self.alarm(
                frame,
                "controller",
                "collision",
                f"frame {frame}: slots collided at {each}: both packets lost (routers out of "
                f"step by more than the guard, or a gate stuck closed)",
            )
        if foreign:
            each = ", ".join(
                f"{r} ({n['commands']} commands, {n['writes']} plain writes)"
                for r, n in foreign.items()
            )
            self.alarm(
                frame,
                "controller",
                "interference",
                f"frame {frame}: writes that were not this controller's, refused unexecuted by "
                f"{each}: another client on the bus (an attack, a misconfigured tool) is "
                f"writing to the routers; nothing of it was carried out",
                refused=foreign,
            )

    async def _latched(
        self, frame: int, routers: list[str]
    ) -> dict[str, tuple[Attribution, ...] | None]:
        """Each router's latched attribution for ``frame``, once the frame has ended."""

        async def read(rid: str) -> tuple[Attribution, ...]:
            deadline = now() + self.options.meters_timeout_s
            while True:
                got, records = await self.fleet.drivers[rid].read_frame_attribution()
                if got == frame:
                    return records
                if got > frame or now() > deadline:
                    raise ControllerError(f"router {rid} latched frame {got}, not {frame}")
                await asyncio.sleep(METER_POLL_S)

        results = await self.fleet.each(read, routers)
        return {r: None if isinstance(v, BaseException) else v for r, v in results.items()}

    # -- helpers --------------------------------------------------------------------------
    def _live_drivers(self) -> dict[str, RouterDriver]:
        live = self.fleet.live
        if not live:
            raise ControllerError("no router answers: nothing to run")
        return {rid: self.fleet.drivers[rid] for rid in live}

    def _frame_seconds(self) -> float:
        """One frame's length on the local clock (router clocks may run at another rate)."""
        f = self.scenario.frame
        return (
            f.slots
            * f.slot_ms
            / 1000.0
            / self.clocks.rate(self._planned() or list(self.clocks.estimates))
        )

    async def _sleep_until(self, t: float) -> None:
        # never longer than a few frames: a wrong instant must not stall the bench
        t = min(t, now() + MAX_WAIT_FRAMES * self._frame_seconds())
        while (left := t - now()) > 0:
            await asyncio.sleep(min(left, 0.05))
            if self.stop_reason:
                return

    def alarm(self, frame: int | None, source: str, code: str, text: str, **detail: object) -> None:
        """Say it (``on_alarm``: the console, MQTT) and journal it, with ``detail`` as
        more fields of the record."""
        log.info("alarm %s: %s", code, text)  # shown by on_alarm; logged for those who ask
        self.on_alarm(frame, source, code, text)
        record = {"source": source, "code": code, "message": text, **detail}
        self.journal.append("alarm", record, frame=frame)

    def request_stop(self, reason: str) -> None:
        self.stop_reason = self.stop_reason or reason


@dataclass
class _Frame:
    prep: Prepared
    routers: list[str]  # live when it was uploaded
    down: list[str]
    planned: list[str]  # the routers the plan counted on
    failed: dict[str, str] = field(default_factory=dict)  # commit (or clock) failures
    arm_failed: dict[str, str] = field(default_factory=dict)
    upload_ms: float = 0.0
    commit_ms: float = 0.0
    start_local: float = math.nan
    end_local: float = math.nan
    late_ms: float = 0.0
    skew_us: float = math.nan


def _grew(before: int, after: int) -> int:
    """How much a router's counter grew: it wraps at 2**32, and a power-up restarts it
    (a counter below its last reading: all of it is new)."""
    return after - before if after >= before else after


def _unreachable(exc: BaseException) -> bool:
    """A router that does not answer (as opposed to one that answers 'no')."""
    from firmware_bridge.errors import RouterTimeout, RouterUnavailable

    return isinstance(exc, RouterTimeout | RouterUnavailable | OSError | asyncio.TimeoutError)


def _plan_record(prep: Prepared, down: frozenset[str], stage: str) -> dict[str, object]:
    record = prep.plan.to_json()
    record["down_routers"] = sorted(down)
    if prep.stage.record:
        record["stage"] = {"name": stage, **prep.stage.record}
    return record
