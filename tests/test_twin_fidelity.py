"""The healthy twin meters exactly what the circuit model says, and tells gate timing
apart. Numbers are worked out here by hand from bench-4's resistances (48 V, 8 A
packets; I^2 R per line and access, 2 % of V I through the SOP), to 1e-9 relative.

A packet flows while every gate on its path is closed, so when routers start their
slots a little apart (within the guard) it conducts for less than tau; the twin's sink
meters show that, and its diagnostics report the difference from the circuit model
(the timing shortfall) apart. Under the controller the two add up to what is due."""

from __future__ import annotations

import pytest

from bench import bundled_path
from router.controller.session import Session
from scheduler import PlannedPacket
from sim_hw.twin import Twin
from tests.controller_support import bench, config
from tests.twin_support import commit_all, drivers, frame_end, seal, until

V, I = 48.0, 8.0  # noqa: E741 (the current)
P = V * I  # W at the source
PACKETS = [
    PlannedPacket("T1", ("PV1", "MEC1"), (3, 3)),  # R1 alone
    PlannedPacket("T2", ("PV1", "L12", "L23", "MEC2"), (5, 5, 5, 5)),  # R1, R2, R3
    PlannedPacket("T2", ("PV1", "L12", "L23", "MEC2"), (10, 10, 12, 12)),  # R2 holds it
    PlannedPacket("T10", ("BAT1", "SOP24", "MEC3"), (120, 120, 120)),  # R2, R4
]
SINKS = {"R1": 1, "R3": 4, "R4": 5}  # sink meters' terminal wire ids (MEC1, MEC2, MEC3)


def expected(late_r2_us: float, r3_ppb: float) -> tuple[dict[int, float], dict[str, float]]:
    """Energy at each sink (J, by transfer wire id) and each sink router's timing
    shortfall, when R2 starts its frame ``late_r2_us`` after the others and R3's slots
    are stretched by ``r3_ppb`` (slot 5000 us, guard 100 us, tau 4900 us)."""
    tau = 4900e-6
    k3 = 1 + r3_ppb * 1e-9  # R3's slot s runs [s * 5000 k3 + 100 k3, (s + 1) * 5000 k3]

    def r3(s: int) -> tuple[float, float]:
        return s * 5000 * k3 + 100 * k3, (s + 1) * 5000 * k3

    def overlap(*windows: tuple[float, float]) -> float:
        return (min(b for _, b in windows) - max(a for a, _ in windows)) * 1e-6

    def r(s: int, late: float = 0.0) -> tuple[float, float]:
        return s * 5000 + 100 + late, (s + 1) * 5000 + late

    t1 = (P - I * I * (0.02 + 0.03)) * tau
    line = P - I * I * (0.02 + 0.08 + 0.10 + 0.03)
    t2_cut = line * overlap(r(5), r(5, late_r2_us), r3(5))
    held = (P - I * I * (0.02 + 0.08)) * overlap(r(10), r(10, late_r2_us))
    out = overlap(r(12, late_r2_us), r3(12))  # the store releases over its 4900 us window
    t2_held = held * out / tau - I * I * (0.10 + 0.03) * out
    sop = P - I * I * (0.01 + 0.03) - 0.02 * P
    t10 = sop * overlap(r(120, late_r2_us), r(120))
    energy = {0: t1, 1: t2_cut + t2_held, 9: t10}
    # the circuit model: every gate on time for tau (both T2 packets: line * tau)
    shortfall = {"R1": 0.0, "R3": 2 * line * tau - energy[1], "R4": sop * tau - t10}
    return energy, shortfall


async def run_frame(twin: Twin, twin_keys, late_r2_us: int, r3_ppb: int):
    sealed = seal(twin_keys, 7, PACKETS)
    async with drivers(twin) as ds:
        await commit_all(ds, sealed)
        start = (await ds["R1"].read_clock()).t_router_us + int(0.4 * twin.accel * 1e6)
        for rid, d in ds.items():
            await d.arm(7, start + (late_r2_us if rid == "R2" else 0), r3_ppb if rid == "R3" else 0)
        # the bus is evaluated whenever a request comes: cut slot 12's window (R2's store
        # releasing) in three, as a busy link would (the router clocks read true time)
        for at_us in (62_000, 63_500):
            twin.advance(start + at_us)
        await until(twin, frame_end(start) + 2 * late_r2_us + 1000)
        meters = {rid: await d.read_meters() for rid, d in ds.items()}
        diag = {rid: await d.read_block("twin_diagnostics") for rid, d in ds.items()}
    got = {a.transfer: a.energy_j for m in meters.values() for a in m.attributions}
    return got, {rid: diag[rid]["timing_shortfall_nj"] * 1e-9 for rid in SINKS}


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("late_r2_us", "r3_ppb"), [(0, 0), (3, 2000)])
async def test_one_frame_meters_the_hand_computed_energy(twin_keys, late_r2_us, r3_ppb):
    async with Twin(bundled_path(), twin_keys.path, accel=20) as twin:
        got, shortfall = await run_frame(twin, twin_keys, late_r2_us, r3_ppb)
    energy, short = expected(late_r2_us, r3_ppb)
    assert got.keys() == energy.keys()
    for transfer, joules in energy.items():
        assert got[transfer] == pytest.approx(joules, rel=1e-9, abs=0), transfer
    for rid, joules in short.items():  # registers count nJ
        assert shortfall[rid] == pytest.approx(joules, abs=1e-9), rid
    if not late_r2_us:
        assert all(x == 0 for x in shortfall.values())


@pytest.mark.timeout(120)
async def test_under_the_controller_metered_plus_timing_is_what_is_due(tmp_path):
    """The controller's clock estimates put the routers' starts a few microseconds apart
    (never exactly together): the meters fall short of the plan by exactly the twin's
    reported timing shortfall, nothing else."""
    session = Session(config(tmp_path, bench(), frames=2))
    result = await session.run()
    timing = {t.frame: t for t in session.twin_timing}
    for o in result.outcomes:
        assert o.packets_delivered == o.packets_planned == 240
        accounted = o.energy_delivered_j + timing[o.frame].shortfall_j
        assert accounted == pytest.approx(o.energy_planned_j, rel=1e-9), o.frame
        assert 0 <= timing[o.frame].start_spread_us < 100  # within the guard
