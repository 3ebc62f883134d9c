"""Time sync against synthetic router clocks with known offset, drift and link delays."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.timesync import (
    MIN_SAMPLES,
    ClockSkewError,
    Sample,
    SampleError,
    TimeSyncError,
    estimate_clock,
    plan_start,
)

T0 = 1000.0  # local monotonic seconds at the first round trip


class Clock:
    """A router clock: ``router(t) = t + offset + drift * (t - T0)``, read in ticks."""

    def __init__(self, offset: float, drift: float, tick: float = 0.0) -> None:
        self.offset, self.drift, self.tick = offset, drift, tick

    def read(self, t: float) -> float:
        value = t + self.offset + self.drift * (t - T0)
        return math.floor(value / self.tick) * self.tick if self.tick else value

    def offset_at(self, t: float) -> float:
        return self.offset + self.drift * (t - T0)


def round_trips(
    clock: Clock,
    n: int,
    *,
    forward: float = 50e-6,
    back: float = 50e-6,
    jitter: float = 0.0,
    period: float = 0.01,
    seed: int = 0,
) -> list[Sample]:
    """``n`` request/response pairs; each direction takes its base delay plus an
    exponential queueing delay of mean ``jitter``."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        t1 = T0 + i * period
        d1 = forward + (rng.expovariate(1 / jitter) if jitter else 0.0)
        d2 = back + (rng.expovariate(1 / jitter) if jitter else 0.0)
        out.append(Sample(t1, clock.read(t1 + d1), t1 + d1 + d2))
    return out


def test_symmetric_links_give_offset_and_drift_exactly():
    clock = Clock(offset=2.5e-3, drift=40e-6)
    est = estimate_clock("R1", round_trips(clock, 20))
    for t in (T0, T0 + 0.1, T0 + 5.0):
        assert est.offset_at(t) == pytest.approx(clock.offset_at(t), abs=1e-12)
    assert est.drift == pytest.approx(40e-6, rel=1e-6)
    assert est.uncertainty_at(T0 + 1.0) == pytest.approx(0.0, abs=1e-9)  # no noise at all
    assert est.bound_at(est.reference_s) == pytest.approx(50e-6)  # half the round trip


def test_an_asymmetric_link_biases_the_offset_by_half_the_difference_within_the_bound():
    clock = Clock(offset=-1e-3, drift=0.0)
    est = estimate_clock("R1", round_trips(clock, 20, forward=300e-6, back=100e-6))
    bias = est.offset_at(T0) - clock.offset_at(T0)
    assert bias == pytest.approx(100e-6, abs=1e-12)  # (forward - back) / 2
    assert est.uncertainty_at(T0) < 1e-9  # invisible to NTP's view: the samples agree
    assert abs(bias) <= est.bound_at(T0)


def test_conversions_are_inverse():
    est = estimate_clock("R1", round_trips(Clock(3e-3, -75e-6), 16, jitter=20e-6))
    for t in (T0, T0 + 1.234, T0 + 60.0):
        assert est.to_local(est.to_router(t)) == pytest.approx(t, abs=1e-9)


def test_the_router_clock_tick_widens_both_figures():
    clock = Clock(offset=1e-3, drift=0.0, tick=1e-6)
    est = estimate_clock("R1", round_trips(clock, 20), resolution_s=1e-6)
    assert est.bound_at(est.reference_s) == pytest.approx(51e-6)
    assert est.uncertainty_at(est.reference_s) >= 1e-6
    assert abs(est.offset_at(T0) - clock.offset_at(T0)) <= est.uncertainty_at(T0)


@settings(max_examples=60, deadline=None)
@given(
    offset=st.floats(-0.5, 0.5),
    drift=st.floats(-200e-6, 200e-6),
    forward=st.floats(10e-6, 2e-3),
    back=st.floats(10e-6, 2e-3),
    jitter=st.floats(0.0, 5e-3),
    n=st.integers(MIN_SAMPLES, 64),
    seed=st.integers(0, 2**16),
    ahead=st.floats(0.0, 2.0),
)
def test_the_error_never_exceeds_the_worst_case_bound(
    offset, drift, forward, back, jitter, n, seed, ahead
):
    clock = Clock(offset, drift)
    samples = round_trips(clock, n, forward=forward, back=back, jitter=jitter, seed=seed)
    est = estimate_clock("R1", samples)
    t = T0 + n * 0.01 + ahead  # a start instant after the last round trip
    assert abs(est.offset_at(t) - clock.offset_at(t)) <= est.bound_at(t) + 1e-12


def test_on_symmetric_links_the_uncertainty_covers_the_error():
    """Queueing noise on both ways, 300 independent links: the 3-sigma uncertainty half a
    second after the last round trip covers the true error nearly always."""
    misses = 0
    for seed in range(300):
        clock = Clock(offset=seed * 1e-5, drift=(seed % 7 - 3) * 20e-6)
        est = estimate_clock("R1", round_trips(clock, 32, jitter=30e-6, seed=seed))
        t = T0 + 0.32 + 0.5
        misses += abs(est.offset_at(t) - clock.offset_at(t)) > est.uncertainty_at(t)
    assert misses <= 6  # 2 %


def test_min_delay_filtering_discards_queueing():
    clock = Clock(offset=4e-3, drift=10e-6)
    samples = round_trips(clock, 64, jitter=2e-3, seed=7)  # heavy queueing on both ways
    fastest = estimate_clock("R1", samples, keep=0.25)
    everything = estimate_clock("R1", samples, keep=1.0)
    t = T0 + 1.0
    assert fastest.bound_at(t) < everything.bound_at(t) / 2
    assert fastest.uncertainty_at(t) < everything.uncertainty_at(t)
    assert abs(fastest.offset_at(t) - clock.offset_at(t)) <= fastest.uncertainty_at(t)
    assert fastest.total == 64 and len(fastest.delays) == 16


def test_a_longer_window_knows_the_drift_better():
    clock = Clock(offset=1e-3, drift=50e-6)
    short = estimate_clock("R1", round_trips(clock, 40, jitter=20e-6, period=0.01, seed=3))
    long = estimate_clock("R1", round_trips(clock, 40, jitter=20e-6, period=1.0, seed=3))
    ahead = 1.0  # the next frame's start, a second after the last round trip
    assert long.uncertainty_at(T0 + 39.0 + ahead) < short.uncertainty_at(T0 + 0.39 + ahead) / 4


def test_start_instants_on_each_router_clock_and_the_skew():
    clocks = {"R1": Clock(1e-3, 20e-6), "R2": Clock(-2e-3, -30e-6), "R3": Clock(0.0, 0.0)}
    est = {
        r: estimate_clock(r, round_trips(c, 64, jitter=5e-6, period=0.5, seed=i))
        for i, (r, c) in enumerate(clocks.items())
    }
    start = T0 + 32.0
    plan = plan_start(est, start, guard_s=100e-6)
    for r, c in clocks.items():
        assert abs(plan.router_start_s[r] - c.read(start)) <= plan.uncertainty_s[r]
    two_largest = sorted(plan.uncertainty_s.values())[1:]
    assert plan.skew_s == pytest.approx(sum(two_largest))
    assert 0 < plan.skew_s < 100e-6


def test_refuses_to_start_when_the_skew_exceeds_the_guard():
    clocks = {"R1": (Clock(1e-3, 0.0), 150e-6), "R2": (Clock(0.0, 0.0), 60e-6)}
    est = {
        r: estimate_clock(r, round_trips(c, 8, forward=d, back=d)) for r, (c, d) in clocks.items()
    }
    start = est["R1"].reference_s  # where each bound is exactly half the round trip
    assert plan_start(est, start, guard_s=100e-6).skew_s == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ClockSkewError) as info:
        plan_start(est, start, guard_s=100e-6, worst_case=True)
    assert info.value.skew_s == pytest.approx(210e-6)
    assert str(info.value) == (
        "clock skew up to 210 us (R1 ±150 us, R2 ±60 us) exceeds the slot guard of 100 us: "
        "gates could switch out of step; sync over a faster link or with more round trips, "
        "or raise guard_us"
    )


def test_noisy_clocks_are_refused_by_the_uncertainty():
    est = {
        r: estimate_clock(r, round_trips(Clock(0.0, 0.0), 16, jitter=1e-3, seed=i))
        for i, r in enumerate(("R1", "R2"))
    }
    with pytest.raises(ClockSkewError):
        plan_start(est, T0 + 1.0, guard_s=100e-6)


@pytest.mark.parametrize(
    ("samples", "kwargs", "message"),
    [
        ([Sample(0, 0, 1)] * 3, {}, "router R1: 3 round trips; at least 4 are needed"),
        ([Sample(0, 0, 1)] * 3 + [Sample(2, 0, 1)], {}, "router R1: sample 3: reply received"),
        ([Sample(0, math.nan, 1)] * 4, {}, "router R1: sample 0 is not finite"),
        ([Sample(0, 0, 1)] * 4, {"keep": 0.0}, "router R1: keep = 0.0 is outside (0, 1]"),
    ],
)
def test_unusable_samples_are_refused_with_the_reason(samples, kwargs, message):
    with pytest.raises(SampleError) as info:
        estimate_clock("R1", samples, **kwargs)
    assert str(info.value).startswith(message)
    assert info.value.router_id == "R1"


def test_no_routers_no_start():
    with pytest.raises(TimeSyncError, match="no router clocks"):
        plan_start({}, T0, 100e-6)
