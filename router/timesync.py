"""Router clocks from request/response round trips, as NTP does. Pure math, no I/O.

A sample is ``(t1, t2, t3)``: the local clock when the request left, the router's clock
in its reply, the local clock when the reply arrived (seconds; use a monotonic clock).
The router's offset at the local midpoint ``m = (t1+t3)/2`` is ``t2 - m``: exactly so if
the link is equally fast both ways, and give or take half the round trip ``d = t3 - t1``
however unequal the two ways are.

The estimate keeps the fastest round trips (min-delay filtering: slow ones carry
queueing, not clock), fits ``offset(t) = offset + drift * (t - reference)`` to them by
least squares, and reports two error figures for an instant t:

* ``uncertainty_at(t)``, NTP's view: on a symmetric link (the same delay each way) the
  residuals around the fit measure the noise, and the uncertainty is ``COVERAGE``
  standard errors of the fitted line at t (3 sigma, widened by Student's t for few
  samples) plus the router clock's tick. The frame loop checks this against the slot
  guard. It grows as t moves away from the samples (the drift is only known so well), so
  keep a window of round trips tens of seconds long.
* ``bound_at(t)``, the worst case for *any* asymmetry: the fit at t is a weighted sum
  ``sum w_i(t) * theta_i`` with ``sum w_i = 1``, each theta_i off by at most d_i/2, so the
  fit is off by at most ``sum |w_i(t)| * d_i / 2`` plus the tick. A constant asymmetry
  shifts every sample alike and no round-trip method can see it; a driver that knows a
  link's frame times can narrow t1..t3 to the instants the router could have read its
  clock, and both figures shrink with them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

DEFAULT_KEEP = 0.5  # the fastest half of the round trips
MIN_SAMPLES = 4  # round trips before filtering
MIN_KEPT = 4  # fitted after filtering: two degrees of freedom for the residual noise
COVERAGE = 3.0  # standard errors (99.73 % two-sided when the noise is normal)
# Student's t quantiles for 99.73 % two-sided, by degrees of freedom: few samples know
# their noise poorly. Between rows the smaller dof (the larger quantile) applies.
_T_QUANTILE = ((2, 19.21), (3, 9.22), (4, 6.62), (5, 5.51), (6, 4.90), (8, 4.28),
               (10, 3.96), (15, 3.59), (20, 3.42), (30, 3.27), (60, 3.13))  # fmt: skip


class TimeSyncError(Exception):
    """Root of the errors of ``router.timesync``; ``router_id`` when one router is meant."""

    def __init__(self, message: str, *, router_id: str | None = None) -> None:
        self.router_id = router_id
        super().__init__(f"router {router_id}: {message}" if router_id else message)


class SampleError(TimeSyncError):
    """Samples that cannot be used: too few, not finite, or a reply before its request."""


class ClockSkewError(TimeSyncError):
    """The routers may disagree about a frame's start by more than the switching guard."""

    def __init__(self, skew_s: float, guard_s: float, uncertainty_s: Mapping[str, float]):
        self.skew_s, self.guard_s = skew_s, guard_s
        self.uncertainty_s = dict(uncertainty_s)
        worst = sorted(uncertainty_s.items(), key=lambda kv: -kv[1])[:2]
        each = ", ".join(f"{r} ±{u * 1e6:.0f} us" for r, u in worst)
        super().__init__(
            f"clock skew up to {skew_s * 1e6:.0f} us ({each}) exceeds the slot guard of "
            f"{guard_s * 1e6:.0f} us: gates could switch out of step; sync over a faster "
            f"link or with more round trips, or raise guard_us"
        )


@dataclass(frozen=True, slots=True)
class Sample:
    t1: float  # local clock, request sent
    t2: float  # router clock, in the reply
    t3: float  # local clock, reply received

    @property
    def delay(self) -> float:
        return self.t3 - self.t1

    @property
    def midpoint(self) -> float:
        return 0.5 * (self.t1 + self.t3)

    @property
    def offset(self) -> float:
        return self.t2 - self.midpoint


@dataclass(frozen=True, slots=True)
class ClockEstimate:
    """``router clock = local + offset_s + drift * (local - reference_s)``."""

    router_id: str
    offset_s: float
    drift: float  # dimensionless: 50e-6 is a router clock 50 ppm fast
    reference_s: float  # local time the offset refers to (mean midpoint of kept samples)
    residual_s: float  # standard deviation of the kept samples around the fit
    resolution_s: float
    midpoints: tuple[float, ...]  # of the kept samples
    delays: tuple[float, ...]
    total: int  # samples given, before filtering

    def offset_at(self, local_s: float) -> float:
        return self.offset_s + self.drift * (local_s - self.reference_s)

    def to_router(self, local_s: float) -> float:
        return local_s + self.offset_at(local_s)

    def to_local(self, router_s: float) -> float:
        return (router_s - self.offset_s + self.drift * self.reference_s) / (1.0 + self.drift)

    def uncertainty_at(self, local_s: float) -> float:
        """Error of ``to_router(local_s)`` on a symmetric link (see the module docstring)."""
        n, sxx = len(self.midpoints), self._sxx()
        dt = local_s - self.reference_s
        if sxx == 0.0 and dt != 0.0:
            return math.inf  # no drift information: nothing is known away from the samples
        spread = 1.0 / n + (dt * dt / sxx if sxx > 0 else 0.0)
        return _t_quantile(n - 2) * self.residual_s * math.sqrt(spread) + self.resolution_s

    def bound_at(self, local_s: float) -> float:
        """Worst-case error of ``to_router(local_s)`` for any link asymmetry."""
        n, sxx = len(self.midpoints), self._sxx()
        dt = local_s - self.reference_s
        bound = 0.0
        for m, d in zip(self.midpoints, self.delays, strict=True):
            w = 1.0 / n + ((m - self.reference_s) * dt / sxx if sxx > 0 else 0.0)
            bound += abs(w) * d / 2.0
        return bound + self.resolution_s

    @property
    def min_delay_s(self) -> float:
        return min(self.delays)

    def _sxx(self) -> float:
        return math.fsum((m - self.reference_s) ** 2 for m in self.midpoints)


def _t_quantile(dof: int) -> float:
    if dof < _T_QUANTILE[0][0]:
        return math.inf
    if dof > _T_QUANTILE[-1][0]:
        return COVERAGE
    return [q for d, q in _T_QUANTILE if d <= dof][-1]


def estimate_clock(
    router_id: str,
    samples: Sequence[Sample],
    *,
    keep: float = DEFAULT_KEEP,
    resolution_s: float = 0.0,
) -> ClockEstimate:
    """Offset and drift of one router's clock from ``samples`` (at least ``MIN_SAMPLES``).

    ``keep``: the fraction of fastest round trips to fit (min-delay filter), in (0, 1];
    ``resolution_s``: the router clock's tick (a register in microseconds: 1e-6)."""
    if not 0.0 < keep <= 1.0:
        raise SampleError(f"keep = {keep!r} is outside (0, 1]", router_id=router_id)
    if len(samples) < MIN_SAMPLES:
        raise SampleError(
            f"{len(samples)} round trips; at least {MIN_SAMPLES} are needed",
            router_id=router_id,
        )
    for i, s in enumerate(samples):
        if not all(math.isfinite(t) for t in (s.t1, s.t2, s.t3)):
            raise SampleError(f"sample {i} is not finite: {s}", router_id=router_id)
        if s.delay < 0:
            raise SampleError(
                f"sample {i}: reply received (t3 = {s.t3!r}) before the request was sent "
                f"(t1 = {s.t1!r})",
                router_id=router_id,
            )
    n_keep = min(len(samples), max(MIN_KEPT, math.ceil(keep * len(samples))))
    kept = sorted(samples, key=lambda s: s.delay)[:n_keep]
    mids = [s.midpoint for s in kept]
    thetas = [s.offset for s in kept]
    ref = math.fsum(mids) / len(mids)
    theta0 = math.fsum(thetas) / len(thetas)
    sxx = math.fsum((m - ref) ** 2 for m in mids)
    sxy = math.fsum((m - ref) * (y - theta0) for m, y in zip(mids, thetas, strict=True))
    drift = sxy / sxx if sxx > 0 else 0.0
    residuals = [y - (theta0 + drift * (m - ref)) for m, y in zip(mids, thetas, strict=True)]
    return ClockEstimate(
        router_id=router_id,
        offset_s=theta0,
        drift=drift,
        reference_s=ref,
        residual_s=math.sqrt(math.fsum(r * r for r in residuals) / (len(kept) - 2)),
        resolution_s=resolution_s,
        midpoints=tuple(mids),
        delays=tuple(s.delay for s in kept),
        total=len(samples),
    )


@dataclass(frozen=True, slots=True)
class StartPlan:
    local_start_s: float
    router_start_s: dict[str, float]  # the same instant on each router's clock
    uncertainty_s: dict[str, float]
    skew_s: float  # how far two routers may disagree about the start, at most
    guard_s: float


def plan_start(
    estimates: Mapping[str, ClockEstimate],
    local_start_s: float,
    guard_s: float,
    *,
    worst_case: bool = False,
) -> StartPlan:
    """Express a local start instant on every router's clock; raise ``ClockSkewError``
    when two routers may disagree about it by more than ``guard_s``.

    Each router's start is off the intended instant by at most its uncertainty (with
    ``worst_case``: its bound for any link asymmetry), so two routers disagree by at most
    the sum of the two largest (one router: its own, against the controller's timeline)."""
    if not estimates:
        raise TimeSyncError("no router clocks to plan a start for")
    uncertainty = {
        r: e.bound_at(local_start_s) if worst_case else e.uncertainty_at(local_start_s)
        for r, e in estimates.items()
    }
    skew = math.fsum(sorted(uncertainty.values(), reverse=True)[:2])
    if not skew <= guard_s:  # also refuses an infinite or NaN skew
        raise ClockSkewError(skew, guard_s, uncertainty)
    return StartPlan(
        local_start_s=local_start_s,
        router_start_s={r: e.to_router(local_start_s) for r, e in estimates.items()},
        uncertainty_s=uncertainty,
        skew_s=skew,
        guard_s=guard_s,
    )
