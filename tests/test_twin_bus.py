"""The DC bus under faults: clock skew beyond the guard collides packets, within it
does not; stuck gates and tripped lines stop packets; all of it is counted."""

from __future__ import annotations

import pytest

from bench import bundled_path
from scheduler import PlannedPacket
from sim_hw.twin import Twin
from tests.twin_support import arm_all, commit_all, drivers, frame_end, seal, until

E8, TAU = 48.0 * 8.0 * 0.0049, 0.0049
T2_EACH = E8 - 64 * (0.02 + 0.08 + 0.10 + 0.03) * TAU
A = PlannedPacket("T2", ("PV1", "L12", "L23", "MEC2"), (10, 10, 10, 10))
B = PlannedPacket("T7", ("PV1", "L12", "BAT1"), (11, 11, 11))  # follows A over L12


async def _run(twin, twin_keys, packets, frame=3, after_arm=()):
    async with drivers(twin) as ds:
        await commit_all(ds, seal(twin_keys, frame, packets))
        start = await arm_all(twin, ds, frame)
        for fault in after_arm:  # after the controller synchronised and armed
            twin.inject(fault)
        await until(twin, frame_end(start))
        status = {rid: await d.read_status() for rid, d in ds.items()}
        meters = {rid: await d.read_meters() for rid, d in ds.items()}
        diag = {rid: await d.read_block("twin_diagnostics") for rid, d in ds.items()}
    got = {a.transfer: (a.packets, a.energy_j) for m in meters.values() for a in m.attributions}
    return status, got, diag


@pytest.fixture
async def twin(twin_keys):
    async with Twin(bundled_path(), twin_keys.path, transport="tcp", accel=20) as twin:
        yield twin


@pytest.mark.timeout(30)
async def test_skew_beyond_the_guard_collides_and_loses_both_packets(twin, twin_keys):
    status, got, diag = await _run(twin, twin_keys, [A, B], after_arm=["skew=-300@R2"])
    # R2 runs 300 us late: its slot-10 gates still join L12 to L23 when R1 sends B
    assert status["R1"].counters["collisions"] == status["R2"].counters["collisions"] == 1
    assert "collision" in status["R1"].alarms and "collision" in status["R2"].alarms
    assert 6 not in got  # B (T7) never reached BAT1
    assert got[1][1] < T2_EACH * 0.97  # A was cut short by the collision
    assert diag["R2"]["clock_skew_us"] == -300


@pytest.mark.timeout(30)
async def test_skew_within_the_guard_only_shortens_conduction(twin, twin_keys):
    status, got, _ = await _run(twin, twin_keys, [A, B], after_arm=["skew=-60@R2"])
    assert all(s.counters["collisions"] == 0 and not s.alarms for s in status.values())
    assert got[1] == (1, pytest.approx(T2_EACH * (4900 - 60) / 4900, rel=1e-5))
    assert got[6][0] == 1


@pytest.mark.timeout(30)
async def test_stuck_gates_and_a_tripped_line_stop_packets(twin, twin_keys):
    t1 = PlannedPacket("T1", ("PV1", "MEC1"), (3, 3))
    faults = ["stuck-open=R1:3", "trip=L23", "stuck-closed=R4:1"]
    t5 = PlannedPacket("T5", ("PV2", "L34", "MEC3"), (4, 4, 4))
    status, got, diag = await _run(twin, twin_keys, [t1, A, t5], after_arm=faults)
    assert got == {}  # nothing delivered
    r1, r2, r4 = status["R1"], status["R2"], status["R4"]
    assert r1.counters["open_circuits"] == 1 and r1.counters["gate_faults"] == 1  # T1
    assert r1.counters["overcurrent_trips"] == r2.counters["overcurrent_trips"] == 1  # A on L23
    assert r4.counters["collisions"] == 1 and r4.counters["gate_faults"] == 1  # T5 at R4
    assert (
        diag["R2"]["tripped_lines"],
        diag["R3"]["tripped_lines"],
        diag["R1"]["tripped_lines"],
    ) == (1, 1, 0)
    assert diag["R1"]["stuck_gates"] == diag["R4"]["stuck_gates"] == 1
