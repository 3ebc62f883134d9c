"""Packets as master columns: their rows and coefficients, worked out by hand on the
chain bench (A - B - C, storage at B; see tests/test_golden.py)."""

from __future__ import annotations

import numpy as np
import pytest

from bench import parse_dict
from scheduler import build_problem
from scheduler.lagrangian.columns import capacities, column_entries, columns_of
from scheduler.plan import Assignment
from tests.helpers import chain, transfer


def held_packet():
    """T1 crosses AB in slot 1, waits at B during slots 1 and 2, crosses BC in slot 3."""
    data = chain(storage_b=2, slots=8)
    data["transfers"] = [transfer("T1", "S1", "L1", 1, release_slot=1)]
    scenario, topology = parse_dict(data)
    problem = build_problem(scenario, topology, k_routes=1)
    plan = Assignment.empty(problem)
    plan.route[0] = 0
    plan.seg_slots[0, :2] = [1, 3]
    return problem, columns_of(problem.arrays, plan.packets)


def names(problem, keys, block):
    """Dense row keys back to (what, block) pairs."""
    n_blocks = -(-problem.n_slots // block)
    n_res = problem.n_resources
    out = []
    for key in keys:
        if key < n_res * n_blocks:
            out.append((problem.resource_ids[key // n_blocks], key % n_blocks))
        elif key < (n_res + len(problem.store_ids)) * n_blocks:
            b, blk = divmod(key - n_res * n_blocks, n_blocks)
            out.append((f"store {problem.store_ids[b]}", blk))
        else:
            k, t = divmod(key - (n_res + len(problem.store_ids)) * n_blocks, problem.n_slots)
            out.append((f"start {problem.transfer_ids[k]}", t))
    return out


def test_a_held_packet_takes_its_resources_and_buffer_places_slot_by_slot():
    problem, cols = held_packet()
    assert problem.route(0) == ("S1", "AB", "BC", "L1")
    # delay 3 - 1 = 2 slots at 0.01, held 2 slots at 0.001, losses at price 0: minus value 1
    assert cols.cost[0] == pytest.approx(2 * 0.01 + 2 * 0.001 - 1.0)
    ptr, keys, coefs = column_entries(
        problem.arrays, cols.k, cols.r, cols.slots, 1, problem.n_slots, problem.n_resources
    )
    got = sorted(zip(names(problem, keys, 1), coefs.tolist(), strict=True))
    assert got == sorted(
        [(("S1", 1), 1.0), (("AB", 1), 1.0), (("BC", 3), 1.0), (("L1", 3), 1.0),
         (("store B", 1), 1.0), (("store B", 2), 1.0)]
    )  # fmt: skip
    assert ptr.tolist() == [0, 6]


def test_blocks_sum_a_packets_places_and_add_its_start():
    """Blocks of 2 slots: AB in block 0; BC and L1 in block 1; both held slots (1, 2)
    straddle blocks 0 and 1; one (T1, start slot 1) row."""
    problem, cols = held_packet()
    _, keys, coefs = column_entries(
        problem.arrays, cols.k, cols.r, cols.slots, 2, problem.n_slots, problem.n_resources
    )
    got = sorted(zip(names(problem, keys, 2), coefs.tolist(), strict=True))
    assert got == sorted(
        [(("S1", 0), 1.0), (("AB", 0), 1.0), (("BC", 1), 1.0), (("L1", 1), 1.0),
         (("store B", 0), 1.0), (("store B", 1), 1.0), (("start T1", 1), 1.0)]
    )  # fmt: skip


def test_block_capacities_are_slots_times_places():
    """8 slots in blocks of 3: blocks of 3, 3 and 2 slots; storage of 2 places doubles."""
    caps = capacities(np.array([2]), n_res=1, n_slots=8, block=3)
    assert caps.tolist() == [3.0, 3.0, 2.0, 6.0, 6.0, 4.0]


def test_columns_tell_packets_apart_by_their_key():
    problem, cols = held_packet()
    plan = Assignment.empty(problem)
    plan.route[0] = 0
    plan.seg_slots[0, :2] = [1, 2]  # held one slot less: another column
    other = columns_of(problem.arrays, plan.packets)
    assert other.key[0] != cols.key[0]
    assert columns_of(problem.arrays, Assignment.empty(problem).packets).k.size == 0
