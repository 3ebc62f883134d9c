"""Small instances whose optimum was worked out by hand; every solver must find it
(lr and milp exactly, greedy where its rule reaches it) and every plan passes the
independent checker.

The chain bench: routers A - B - C, lines AB and BC of 0.1 ohm, terminal accesses of
0.02 ohm, packets of 48 V x 5 A, slots of 5 ms with a 100 us guard (tau = 4.9 ms).
"""

from __future__ import annotations

import pytest

from bench import parse_dict
from scheduler import plan_transfers, verify_plan
from tests.helpers import chain, transfer

SOLVERS = ("lr", "milp", "greedy")


def solve_all(data):
    scenario, topology = parse_dict(data)
    plans = {s: plan_transfers(scenario, topology, s) for s in SOLVERS}
    for plan in plans.values():
        recomputed = verify_plan(scenario, plan.to_json())
        assert recomputed == pytest.approx(plan.objective, rel=1e-12, abs=1e-12)
    return plans


def test_one_transfer_takes_consecutive_slots():
    """3 packets from slot 0 on the only route: delays 0 + 1 + 2 slots at 0.01 = 0.03."""
    data = chain()
    data["transfers"] = [transfer("T1", "S1", "L1", 3)]
    for solver, plan in solve_all(data).items():
        assert plan.objective == pytest.approx(0.03, abs=1e-12), solver
        assert sorted(p.slots[0] for p in plan.packets) == [0, 1, 2]
    assert 0.03 * (1 - 1e-4) - 1e-12 <= solve_all(data)["lr"].lower_bound <= 0.03 + 1e-12


def test_shared_line_serialises_packets():
    """T1 (3 packets over AB, BC) and T2 (2 packets from B over BC) share BC: 5 packets
    in slots 0..4, delays 0+1+2+3+4 = 10 slots = 0.10, whoever goes first."""
    data = chain()
    data["transfers"] = [transfer("T1", "S1", "L1", 3), transfer("T2", "S3", "L2", 2)]
    for solver, plan in solve_all(data).items():
        assert plan.objective == pytest.approx(0.10, abs=1e-12), solver
        assert sorted(p.slots[-1] for p in plan.packets) == [0, 1, 2, 3, 4]


def storage_case(storage_b: int):
    """T3 holds BC in slot 0, T2 holds AB in slot 1 (one-slot windows). T1 (window 0..1)
    crosses AB then BC: without storage it only fits by pushing one of them out."""
    data = chain(storage_b=storage_b, slots=4)
    data["transfers"] = [
        transfer("T1", "S1", "L1", 1, release_slot=0, deadline_slot=1),
        transfer("T2", "S2", "L3", 1, release_slot=1, deadline_slot=1),
        transfer("T3", "S3", "L2", 1, release_slot=0, deadline_slot=0),
    ]
    return data


def test_storage_router_holds_a_packet_for_a_slot():
    """With one buffer place at B: T1 crosses AB in slot 0, waits at B during slot 0,
    crosses BC in slot 1: delay 1 slot (0.01) + 1 slot held (0.001) = 0.011."""
    plans = solve_all(storage_case(storage_b=1))
    for solver in ("lr", "milp"):
        plan = plans[solver]
        assert plan.objective == pytest.approx(0.011, abs=1e-12), solver
        t1 = next(p for p in plan.packets if p.transfer == "T1")
        assert t1.route == ("S1", "AB", "BC", "L1")
        assert t1.slots == (0, 0, 1, 1)


def test_without_storage_one_packet_is_dropped():
    """No storage at B: some packet must go; the cheapest loss is one value (1.0)."""
    plans = solve_all(storage_case(storage_b=0))
    for solver in ("lr", "milp"):
        assert plans[solver].objective == pytest.approx(1.0, abs=1e-12), solver
        assert sum(plans[solver].undelivered.values()) == 1


def test_packet_costing_more_than_its_value_stays_home():
    """Loss of one packet: 5 A^2 x (0.02 + 0.1 + 0.1 + 0.02) ohm x 4.9 ms = 0.0294 J; at
    1 per joule it costs 0.0294: worth sending at value 1, not at value 0.001."""
    data = chain(loss_price_per_j=1.0)
    data["transfers"] = [
        transfer("T1", "S1", "L1", 1, value=1.0),
        transfer("T2", "S2", "L2", 1, value=0.001),
    ]
    for solver, plan in solve_all(data).items():
        assert plan.undelivered == {"T1": 0, "T2": 1}, solver
        # T1 at slot 0, T2's packet (value 0.001) undelivered
        assert plan.objective == pytest.approx(0.0294 + 0.001, rel=1e-12), solver


def test_short_frame_drops_the_cheaper_packets():
    """3 slots on AB/BC for 5 packets: deliver T2's two (value 2) and one of T1's
    (value 1); drop two of T1 (2.0) + delays 0+1+2 (0.03) = 2.03."""
    data = chain(slots=3)
    data["transfers"] = [
        transfer("T1", "S1", "L1", 3, value=1.0),
        transfer("T2", "S2", "L2", 2, value=2.0),
    ]
    plans = solve_all(data)
    for solver in ("lr", "milp"):
        assert plans[solver].objective == pytest.approx(2.03, abs=1e-12), solver
        assert plans[solver].undelivered == {"T1": 2, "T2": 0}
    # lr stops once its certified gap is within LrOptions.target_gap (1e-4)
    assert 2.03 * (1 - 1e-4) - 1e-9 <= plans["lr"].lower_bound <= 2.03 + 1e-9
