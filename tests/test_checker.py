"""The independent plan checker: accepts a valid plan and names every broken rule."""

from __future__ import annotations

import copy

import pytest

from bench import parse_dict
from scheduler import check_plan
from tests.helpers import chain, transfer

# chain bench, loss price 0, delay 0.01/slot, hold 0.001/slot (see tests/helpers.py)


def scenario(storage_b: int = 1):
    data = chain(storage_b=storage_b, slots=6)
    data["transfers"] = [
        transfer("T1", "S1", "L1", 2, release_slot=1, deadline_slot=5),
        transfer("T2", "S3", "L2", 1, value=0.5),
    ]
    return parse_dict(data)[0]


def valid_plan() -> dict:
    # T1: one packet straight through at slot 1, one that waits at B from slot 2 to 4;
    # T2 undelivered. Objective: T1 delays (1-1)+(4-1) = 3 slots -> 0.03, held 2 slots
    # -> 0.002, T2's value 0.5: 0.532.
    return {
        "scenario": "chain",
        "solver": "hand",
        "objective": 0.532,
        "lower_bound": 0.5,
        "packets": [
            {"transfer": "T1", "route": ["S1", "AB", "BC", "L1"], "slots": [1, 1, 1, 1]},
            {"transfer": "T1", "route": ["S1", "AB", "BC", "L1"], "slots": [2, 2, 4, 4]},
        ],
        "undelivered": {"T1": 0, "T2": 1},
    }


def test_valid_plan_passes_and_objective_is_recomputed():
    report = check_plan(scenario(), valid_plan())
    assert report.ok, report.problems
    assert report.objective == pytest.approx(0.532, abs=1e-12)


def set_packet(i, **fields):
    def mutate(plan):
        plan["packets"][i].update(fields)

    return mutate


def add_packet(**fields):
    def mutate(plan):
        plan["packets"].append(fields)

    return mutate


CASES = [
    ("same resource, same slot",
     add_packet(transfer="T2", route=["S3", "BC", "L2"], slots=[1, 1, 1]),
     "BC carries packets[0] in slot 1 too"),
    ("leaves before it arrives", set_packet(1, slots=[3, 3, 2, 2]),
     "leaves router B before it arrives"),
    ("before release", set_packet(0, slots=[0, 0, 0, 0]), "outside window 1..5"),
    ("after the frame", set_packet(0, slots=[6, 6, 6, 6]), "slot outside the frame"),
    ("route not connected", set_packet(0, route=["S1", "BC", "L1"], slots=[1, 1, 1]),
     "BC is not attached to router A"),
    ("route to wrong sink", set_packet(0, route=["S1", "AB", "BC", "L2"]),
     "does not join S1 to L1"),
    ("unknown transfer", set_packet(0, transfer="T9"), "unknown transfer 'T9'"),
    ("slot count", set_packet(0, slots=[1, 1, 1]), "one whole slot per route resource"),
    ("too many packets",
     add_packet(transfer="T1", route=["S1", "AB", "BC", "L1"], slots=[3, 3, 3, 3]),
     "3 packets planned, only 2 asked"),
    ("undelivered count wrong", lambda p: p["undelivered"].update({"T2": 0}),
     "undelivered says 0, plan leaves 1"),
    ("objective wrong", lambda p: p.update(objective=0.5), "does not match the recomputed 0.532"),
    ("bound above objective", lambda p: p.update(lower_bound=0.6), "lower_bound 0.6 is above"),
    ("wrong scenario", lambda p: p.update(scenario="other"), "plan is for scenario 'other'"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "mutate", "words"), CASES, ids=[c[0] for c in CASES])
def test_each_broken_rule_is_named(what, mutate, words):
    plan = copy.deepcopy(valid_plan())
    mutate(plan)
    problems = check_plan(scenario(), plan).problems
    assert any(words in p for p in problems), problems


def test_wait_at_router_without_storage():
    problems = check_plan(scenario(storage_b=0), valid_plan()).problems
    assert any("waits 2 slots at router B, which has no storage" in p for p in problems)


def test_buffer_over_capacity():
    plan = valid_plan()
    # packet 0 waits at B in slots 1-2, packet 1 in slots 2-3: two places in slot 2.
    # Delays 2 + 3 slots (0.05), 4 slots held (0.004), T2's value 0.5: 0.554.
    plan["packets"][0]["slots"] = [1, 1, 3, 3]
    plan["objective"] = 0.554
    assert check_plan(scenario(storage_b=1), plan).problems == [
        "router B holds 2 packets in slot 2, storage is 1"
    ]


def test_over_current_limit():
    data = chain(slots=6)
    data["lines"][1]["max_current_a"] = 4.0
    data["transfers"] = [transfer("T1", "S1", "L1", 1)]
    s = parse_dict(data)[0]
    plan = {
        "scenario": "chain",
        "objective": 0.0,
        "lower_bound": None,
        "undelivered": {"T1": 0},
        "packets": [{"transfer": "T1", "route": ["S1", "AB", "BC", "L1"], "slots": [0] * 4}],
    }
    assert any("BC cannot carry 48 V x 5 A" in p for p in check_plan(s, plan).problems)
