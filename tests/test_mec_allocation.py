"""MEC stage 2 LPs (HiGHS) against an independent formulation in scipy's linprog, on
random small instances, and the exact front's points checked for feasibility."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from bench.loader import bundled_path, load_with_topology
from scheduler.mec import MecInstance, build_instance, deferred_acceptance, preferences
from scheduler.mec.allocation import (
    AllocationLp,
    all_pairs,
    exact_front,
    objectives,
    pick,
    violation,
)
from scheduler.mec.matching import pairs_of


def _instance(data) -> MecInstance:
    n_src = data.draw(st.integers(1, 3))
    n_srv = data.draw(st.integers(1, 4))
    loss = np.array(
        [
            [data.draw(st.sampled_from([0.01, 0.05, 0.2])) for _ in range(n_srv)]
            for _ in range(n_src)
        ]
    )
    routes = {(k, j): ("a", "b") for k in range(n_src) for j in range(n_srv)}
    uses = (tuple(p for p in sorted(routes) if p[1] == 0),)  # a router before server 0
    return MecInstance(
        servers=tuple(f"S{j}" for j in range(n_srv)),
        sources=tuple(f"K{k}" for k in range(n_src)),
        demand_j=np.array([data.draw(st.sampled_from([0.0, 5.0, 20.0])) for _ in range(n_srv)]),
        available_j=np.array([data.draw(st.sampled_from([3.0, 10.0, 30.0])) for _ in range(n_src)]),
        quota=np.ones(n_src, dtype=np.int64),
        loss=loss,
        routes=routes,
        routers=("R",),
        capacity_j=np.array([data.draw(st.sampled_from([2.0, 50.0]))]),
        uses=uses,
    )


def _scipy_best_mean(inst: MecInstance, pairs, min_sat: float) -> float | None:
    """Max mean satisfaction with delivered_j >= D_j s_j, by linprog on [x, s]."""
    n_p, n_s = len(pairs), len(inst.servers)
    c = np.concatenate([np.zeros(n_p), -np.ones(n_s) / n_s])
    a, b = [], []
    for j in range(n_s):
        row = np.zeros(n_p + n_s)
        row[n_p + j] = inst.demand_j[j]
        for i, (k, jj) in enumerate(pairs):
            if jj == j:
                row[i] = -(1 - inst.loss[k, j])
        a.append(row)
        b.append(0.0)
    for k in range(len(inst.sources)):
        a.append(np.array([1.0 * (p[0] == k) for p in pairs] + [0.0] * n_s))
        b.append(inst.available_j[k])
    a.append(np.array([1.0 * (p in inst.uses[0]) for p in pairs] + [0.0] * n_s))
    b.append(inst.capacity_j[0])
    bounds = [(0, None)] * n_p + [
        (1.0 if inst.demand_j[j] == 0 else min_sat, 1.0) for j in range(n_s)
    ]
    res = linprog(c, A_ub=np.array(a), b_ub=np.array(b), bounds=bounds, method="highs-ds")
    return -res.fun if res.status == 0 else None


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_lp_matches_independent_formulation(data):
    inst = _instance(data)
    for pairs in (pairs_of(deferred_acceptance(preferences(inst))), all_pairs(inst)):
        lp = AllocationLp(inst, pairs)
        for t in (0.0, 0.3):
            want = _scipy_best_mean(inst, pairs, t)
            x = lp.solve(min_sat=t)
            if want is None:
                assert x is None
                continue
            assert x is not None and violation(inst, pairs, x) <= 1e-6
            got = objectives(inst, pairs, x)
            assert got.mean_satisfaction == pytest.approx(want, abs=1e-6)
            assert got.min_satisfaction >= t - 1e-6
    # the unrestricted LP never does worse than the matched one (price of matching >= 0)
    matched = AllocationLp(inst, pairs_of(deferred_acceptance(preferences(inst)))).solve()
    free = AllocationLp(inst, all_pairs(inst)).solve()
    assert matched is not None and free is not None


def test_bench_front_points_feasible_and_non_dominated():
    scenario, topology = load_with_topology(bundled_path("bench-4-mec"))
    inst = build_instance(scenario, topology)
    pairs = pairs_of(deferred_acceptance(preferences(inst)))
    front = exact_front(inst, pairs, grid=4)
    assert len(front) >= 3
    objs = [objectives(inst, pairs, x) for x in front]
    for x in front:
        assert violation(inst, pairs, x) <= 1e-6
    for a in objs:
        for b in objs:
            assert not (
                b.mean_satisfaction > a.mean_satisfaction + 1e-6
                and b.min_satisfaction >= a.min_satisfaction - 1e-9
                and b.loss_j <= a.loss_j + 1e-9
            )
    # bench-4-mec: 60 J and 50 J cover every demand (20 + 31.5 + 22.4 J plus loss), so the
    # chosen point satisfies everyone; its loss is sum D_j l_j / (1 - l_j) by hand
    chosen = objs[pick(inst, pairs, front)]
    assert chosen.min_satisfaction == pytest.approx(1.0)
    want = sum(inst.demand_j[j] * inst.loss[k, j] / (1 - inst.loss[k, j]) for k, j in pairs)
    assert chosen.loss_j == pytest.approx(want, rel=1e-6)
    assert math.isfinite(chosen.loss_j)
