"""Router clocks as the frame loop sees them: round trips kept in a sliding window per
router, fitted NTP-style (``router.timesync``), turned into start instants on each
router's own clock.

Local time is ``time.monotonic()`` in seconds; router time is its clock register in
microseconds. A twin run faster than real time is just a router whose clock drifts.

A clock that *steps* (a router's clock jumps, as ``skew=300@R2`` makes the twin's do) is
caught between two samples: a router reads its clock between the request leaving and
the reply arriving, so the fit must put its reading inside ``[t1, t3]``, give or take
the fit's own uncertainty. Two round trips in a row outside that window on the same side
by more than a quarter of the guard are a step: the router's old round trips are dropped
(they describe another clock), and the step is reported (``steps``) for the frame loop
to act on.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field

from firmware_bridge.driver import ClockSample, RouterDriver
from router.timesync import (
    MIN_SAMPLES,
    ClockEstimate,
    Sample,
    StartPlan,
    estimate_clock,
    plan_start,
)

WINDOW = 128  # round trips kept per router: seconds of baseline for the drift
FIRST_SAMPLES = 8  # round trips per router to start fitting at all (more in one burst
# would crowd the min-delay filter with samples of no baseline: spread them out instead)
SPACING_S = 0.002  # between rounds of one burst
RESOLUTION_S = 1e-6  # the clock register counts microseconds
MAX_RATE_ERROR = 2.0  # a router clock twice too fast or slow is broken, not drifting
STEP_SHARE = 0.25  # a reading this share of the guard outside its window is suspect ...
STEP_CONFIRM = 2  # ... and this many in a row, on one side, are a step


def to_sample(s: ClockSample) -> Sample:
    return Sample(s.t_send_us / 1e6, s.t_router_us / 1e6, s.t_recv_us / 1e6)


@dataclass(frozen=True)
class ClockStep:
    """A router's clock moved between two samples by about ``step_s`` (router seconds)."""

    router: str
    step_s: float


@dataclass
class ClockKeeper:
    guard_s: float
    samples: dict[str, deque[Sample]] = field(default_factory=dict)
    estimates: dict[str, ClockEstimate] = field(default_factory=dict)
    steps: list[ClockStep] = field(default_factory=list)  # found, not yet taken
    _suspect: dict[str, list[tuple[Sample, int]]] = field(default_factory=dict)
    _rounds: int = 0

    async def sample(self, drivers: dict[str, RouterDriver], rounds: int = 1) -> float:
        """Take ``rounds`` round trips with each router (routers in turn, so that their
        replies do not queue behind each other) and refit. Returns the seconds the round
        trips themselves took: the link time used, not the time spent queueing behind an
        upload for the link.

        The first round trip after a sleep is slow and uneven (the process and the link
        wake up: measured 2-3x the delay and 8x the scatter on loopback), so the order
        rotates from round to round: every router gets its share of the fast turns, and
        the min-delay filter drops the slow ones."""
        link_s = 0.0
        order = list(drivers)
        for i in range(rounds):
            if i:
                await asyncio.sleep(SPACING_S)
            self._rounds += 1
            k = self._rounds % len(order)
            for rid in order[k:] + order[:k]:
                got = to_sample(await drivers[rid].read_clock())
                self._add(rid, got)
                link_s += got.delay
        for rid in drivers:
            kept = list(self.samples[rid])
            if len(kept) >= MIN_SAMPLES:  # fewer: a clock that just stepped, being resampled
                self.estimates[rid] = estimate_clock(rid, kept, resolution_s=RESOLUTION_S)
        return link_s

    def _add(self, rid: str, got: Sample) -> None:
        side = self._outside(rid, got)
        suspect = self._suspect.setdefault(rid, [])
        if not side or (suspect and suspect[-1][1] != side):
            suspect.clear()
        if not side:
            self.samples.setdefault(rid, deque(maxlen=WINDOW)).append(got)
            return
        suspect.append((got, side))
        if len(suspect) < STEP_CONFIRM:
            return
        est = self.estimates.pop(rid)  # the old round trips describe another clock
        step = sum(g.t2 - est.to_router(g.midpoint) for g, _ in suspect) / len(suspect)
        self.samples[rid] = deque((g for g, _ in suspect), maxlen=WINDOW)
        suspect.clear()
        self.steps.append(ClockStep(rid, step))

    def _outside(self, rid: str, got: Sample) -> int:
        """+1 (-1): the router read its clock later (earlier) than the fit allows."""
        est = self.estimates.get(rid)
        if est is None:
            return 0
        slack = est.uncertainty_at(got.midpoint) + STEP_SHARE * self.guard_s + RESOLUTION_S
        if got.t2 > est.to_router(got.t3) + slack:
            return 1
        if got.t2 < est.to_router(got.t1) - slack:
            return -1
        return 0

    def take_steps(self) -> list[ClockStep]:
        steps, self.steps = self.steps, []
        return steps

    def forget(self, rid: str) -> None:
        """A router that went away may come back with a new clock."""
        self.samples.pop(rid, None)
        self.estimates.pop(rid, None)
        self._suspect.pop(rid, None)

    def start(self, local_start_s: float, routers: list[str]) -> StartPlan:
        """The instant ``local_start_s`` on every router's clock; raises
        ``ClockSkewError`` when two routers may disagree about it by more than the guard."""
        return plan_start({r: self.estimates[r] for r in routers}, local_start_s, self.guard_s)

    def rate(self, routers: list[str]) -> float:
        """Router seconds per local second: the median over the routers, within
        [1/MAX_RATE_ERROR, MAX_RATE_ERROR]. A fit whose kept round trips bunch in a short
        window can give a wild drift; the frame loop only uses the rate to know when to
        wake up, and a rate near 0 would make it sleep through a hundred frames."""
        rates = sorted(1.0 + self.estimates[r].drift for r in routers)
        mid = rates[len(rates) // 2]
        return min(MAX_RATE_ERROR, max(1.0 / MAX_RATE_ERROR, mid))


def now() -> float:
    return time.monotonic()
