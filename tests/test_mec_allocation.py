"""MEC stage 2 LPs (HiGHS) against an independent formulation in scipy's linprog, on
random small instances: best mean at a floor, the largest minimum satisfaction, the
lexicographic optima (the pick rule's point, the least-loss point), the unrestricted
LP never below the matched one; and the bench's exact front checked by hand."""

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
from tests import mec_bench as bench


def _instance(data) -> MecInstance:
    n_src = data.draw(st.integers(1, 3))
    n_srv = data.draw(st.integers(1, 4))
    loss = np.array(
        [
            [data.draw(st.sampled_from([0.01, 0.05, 0.2])) for _ in range(n_srv)]
            for _ in range(n_src)
        ]
    )
    routes: dict[tuple[int, int], tuple[str, ...]] = {
        (k, j): ("a", "b") for k in range(n_src) for j in range(n_srv)
    }
    # a router some servers' routes cross, with a capacity that may bind
    behind = [j for j in range(n_srv) if data.draw(st.booleans())] or [0]
    uses = (tuple(p for p in sorted(routes) if p[1] in behind),)
    return MecInstance(
        servers=tuple(f"S{j}" for j in range(n_srv)),
        sources=tuple(f"K{k}" for k in range(n_src)),
        demand_j=np.array([data.draw(st.sampled_from([0.0, 5.0, 20.0])) for _ in range(n_srv)]),
        available_j=np.array([data.draw(st.sampled_from([3.0, 10.0, 30.0])) for _ in range(n_src)]),
        quota=np.asarray([data.draw(st.integers(1, 2)) for _ in range(n_src)], dtype=np.int64),
        loss=loss,
        routes=routes,
        routers=("R",),
        capacity_j=np.array([data.draw(st.sampled_from([2.0, 50.0]))]),
        uses=uses,
    )


class Scipy:
    """The allocation LP written again from docs/mec.md, variables [x, s, t], solved
    by scipy's linprog (which minimises)."""

    def __init__(self, inst: MecInstance, pairs) -> None:
        self.inst, self.pairs = inst, list(pairs)
        n_p, n_s = len(self.pairs), len(inst.servers)
        self.n_p, self.n_s, self.n = n_p, n_s, n_p + n_s + 1
        a, b = [], []
        for j in range(n_s):  # D_j s_j <= sum (1 - l) x
            row = np.zeros(self.n)
            row[n_p + j] = inst.demand_j[j]
            for i, (k, jj) in enumerate(self.pairs):
                if jj == j:
                    row[i] = -(1 - inst.loss[k, j])
            a.append(row)
            b.append(0.0)
        for k in range(len(inst.sources)):
            a.append(np.array([1.0 * (p[0] == k) for p in self.pairs] + [0.0] * (n_s + 1)))
            b.append(inst.available_j[k])
        a.append(np.array([1.0 * (p in inst.uses[0]) for p in self.pairs] + [0.0] * (n_s + 1)))
        b.append(inst.capacity_j[0])
        for j in range(n_s):  # t - s_j <= 0
            row = np.zeros(self.n)
            row[n_p + j], row[-1] = -1.0, 1.0
            a.append(row)
            b.append(0.0)
        self.a, self.b = a, b
        self.mean = np.r_[np.zeros(n_p), np.ones(n_s) / n_s, 0.0]
        self.loss = np.r_[[inst.loss[k, j] for k, j in self.pairs], np.zeros(n_s + 1)]
        self.t = np.r_[np.zeros(n_p + n_s), 1.0]

    def best(self, c: np.ndarray, extra=(), t_min: float = 0.0) -> float | None:
        """max c.v subject to the LP, the rows ``extra`` (coefficients, upper bound) and
        t >= t_min."""
        a = self.a + [r for r, _ in extra]
        b = self.b + [u for _, u in extra]
        bounds: list[tuple[float, float | None]] = [(0.0, None)] * self.n_p
        bounds += [(1.0, 1.0) if d == 0 else (0.0, 1.0) for d in self.inst.demand_j]
        bounds += [(t_min, 1.0)]
        res = linprog(-c, A_ub=np.array(a), b_ub=np.array(b), bounds=bounds, method="highs-ds")
        return -res.fun if res.status == 0 else None

    def lexicographic(self, order) -> tuple[float, ...]:
        """Each objective's best in turn, the ones before held at their optimum."""
        sign = {"mean": self.mean, "min": self.t, "loss": -self.loss}
        extra: list[tuple[np.ndarray, float]] = []
        got = []
        for goal in order:
            # held at its optimum within the least slack that linprog finds feasible:
            # its optimum may overshoot the true one by its own tolerance (1e-9 did not
            # hold once)
            for slack in (1e-9, 1e-8, 1e-7):
                v = self.best(sign[goal], [(r, u + slack * max(1.0, abs(u))) for r, u in extra])
                if v is not None:
                    break
            assert v is not None
            got.append(v)
            extra.append((-sign[goal], -v))
        return tuple(got)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_lp_matches_independent_formulation(data):
    inst = _instance(data)
    matched = pairs_of(deferred_acceptance(preferences(inst)))
    free = all_pairs(inst)
    for pairs in (matched, free):
        lp, ref = AllocationLp(inst, pairs), Scipy(inst, pairs)
        for t in (0.0, 0.3):
            want = ref.best(ref.mean, t_min=t)
            x = lp.solve(min_sat=t)
            if want is None:
                assert x is None
                continue
            assert x is not None and violation(inst, pairs, x) <= 1e-6
            got = objectives(inst, pairs, x)
            assert got.mean_satisfaction == pytest.approx(want, abs=1e-6)
            assert got.min_satisfaction >= t - 1e-6
        # the largest minimum satisfaction: one LP, as linprog finds it
        assert lp.max_min_satisfaction() == pytest.approx(ref.best(ref.t), abs=1e-7)
        # the pick rule's point: highest min, then mean, then least loss
        o = objectives(inst, pairs, lp.pick_point())
        want_min, want_mean, neg_loss = ref.lexicographic(("min", "mean", "loss"))
        assert o.min_satisfaction == pytest.approx(want_min, abs=1e-6)
        assert o.mean_satisfaction == pytest.approx(want_mean, abs=1e-6)
        assert o.loss_j == pytest.approx(-neg_loss, abs=1e-6)
        # the least-loss point at a floor of 0.2 (when reachable), exactly
        if ref.best(ref.t) >= 0.2:
            x = lp.lexicographic(("loss", "mean", "min"), min_sat=0.2)
            assert x is not None
            least = ref.best(-ref.loss, t_min=0.2)
            assert objectives(inst, pairs, x).loss_j == pytest.approx(-least, abs=1e-6)
    # the unrestricted LP (every pair) never does worse than the matched one: the price
    # of matching is >= 0, on both satisfaction objectives (linprog's numbers)
    on_matched, on_free = Scipy(inst, matched), Scipy(inst, free)
    assert on_free.best(on_free.mean) >= on_matched.best(on_matched.mean) - 1e-9
    assert on_free.best(on_free.t) >= on_matched.best(on_matched.t) - 1e-9


def test_bench_front_points_feasible_and_non_dominated():
    scenario, topology = load_with_topology(bundled_path("bench-4-mec"))
    inst = build_instance(scenario, topology)  # frame 1
    demand = bench.demands(1)
    assert inst.demand_j == pytest.approx([demand[s] for s in bench.SERVERS])
    pairs = pairs_of(deferred_acceptance(preferences(inst)))
    named = {(inst.sources[k], inst.servers[j]) for k, j in pairs}
    assert named == {(source, server) for server, source in bench.MATCHING.items()}
    front = exact_front(inst, pairs)
    assert len(front) >= 100
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
    # PV1 is short (36 J for MEC1 and MEC3): the pick rule's point worked out by hand
    sent = bench.pick(1)
    chosen = objs[pick(inst, pairs, front)]
    sat = [min(1.0, sent[s] * (1 - bench.loss_of(s)) / demand[s]) for s in bench.SERVERS]
    assert chosen.min_satisfaction == pytest.approx(min(sat), abs=1e-8) and min(sat) < 1
    assert chosen.mean_satisfaction == pytest.approx(np.mean(sat), abs=1e-8)
    want = sum(bench.loss_of(s) * sent[s] for s in bench.SERVERS)
    assert chosen.loss_j == pytest.approx(want, rel=1e-6)
    # the front spans nothing sent (loss 0) to the most PV1 and PV2 can deliver
    assert objs[0].loss_j == pytest.approx(0.0, abs=1e-8)  # the lexicographic slack
    assert max(o.mean_satisfaction for o in objs) > chosen.mean_satisfaction - 1e-9
    assert math.isfinite(chosen.loss_j)


def test_a_finer_grid_only_adds_front():
    """The exact front's hypervolume grows with the grid towards the front's own; the
    default grid (20) is within a few percent of a grid twice as fine."""
    from scheduler.mec.allocation import objective_vector
    from scheduler.mec.front import hypervolume, reference_point

    scenario, topology = load_with_topology(bundled_path("bench-4-mec"))
    inst = build_instance(scenario, topology)
    inst = type(inst)(**{**inst.__dict__, "available_j": np.array([30.0, 20.0])})
    pairs = pairs_of(deferred_acceptance(preferences(inst)))
    fronts = {g: exact_front(inst, pairs, g) for g in (6, 20, 40)}
    mats = {g: np.array([objective_vector(inst, pairs, x) for x in f]) for g, f in fronts.items()}
    ref = reference_point(*mats.values())
    hv = {g: hypervolume(m, ref) for g, m in mats.items()}
    assert hv[6] < hv[20] < hv[40]
    assert hv[20] >= 0.95 * hv[40]
