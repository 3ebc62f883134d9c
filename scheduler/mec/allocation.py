"""Stage 2 over a set of (source, server) pairs: objectives, feasibility and the exact
LPs in HiGHS (a point of the front by the epsilon-constraint method, the exact front on a
grid, and the unrestricted LP where a server may draw from several sources).

Variables x_p >= 0 (energy source k sends to server j on pair p) and s_j in [0, 1]:
    s_j D_j <= sum_k (1 - l_kj) x_kj        (satisfaction, s_j = min(1, delivered/D_j))
    sum_j x_kj <= A_k                       (source energy)
    sum_{p crosses r} x_p <= C_r            (router capacity per frame)
    s_j >= t, sum_p l_p x_p <= L            (the epsilon constraints)
maximise mean_j s_j - tiny x loss (the tiny term keeps the point efficient).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import highspy
import numpy as np

from scheduler.highs import new_highs
from scheduler.mec.instance import MecInstance

Pair = tuple[int, int]
TINY = 1e-6
TOL = 1e-7


@dataclass(frozen=True)
class Objectives:
    mean_satisfaction: float
    min_satisfaction: float
    loss_j: float


def delivered(inst: MecInstance, pairs: Sequence[Pair], x: np.ndarray) -> np.ndarray:
    out = np.zeros(len(inst.servers))
    for (k, j), v in zip(pairs, x, strict=True):
        out[j] += (1.0 - inst.loss[k, j]) * v
    return out


def satisfaction(inst: MecInstance, pairs: Sequence[Pair], x: np.ndarray) -> np.ndarray:
    got = delivered(inst, pairs, x)
    d = inst.demand_j
    return np.where(d > 0, np.minimum(1.0, got / np.where(d > 0, d, 1.0)), 1.0)


def objectives(inst: MecInstance, pairs: Sequence[Pair], x: np.ndarray) -> Objectives:
    s = satisfaction(inst, pairs, x)
    loss = sum(inst.loss[k, j] * v for (k, j), v in zip(pairs, x, strict=True))
    return Objectives(float(s.mean()), float(s.min()), float(loss))


def violation(inst: MecInstance, pairs: Sequence[Pair], x: np.ndarray) -> float:
    """The largest constraint excess in J (0: feasible)."""
    worst = float(max(0.0, -x.min())) if len(x) else 0.0
    for k, cap in enumerate(inst.available_j):
        worst = max(worst, sum(v for (kk, _), v in zip(pairs, x, strict=True) if kk == k) - cap)
    index = {p: i for i, p in enumerate(pairs)}
    for cap, uses in zip(inst.capacity_j, inst.uses, strict=True):
        worst = max(worst, sum(x[index[p]] for p in uses if p in index) - cap)
    return worst


class AllocationLp:
    """The LP above over ``pairs``, built once; each solve changes only the epsilon
    bounds and objective (HiGHS starts from the last basis)."""

    def __init__(self, inst: MecInstance, pairs: Sequence[Pair]) -> None:
        self.inst, self.pairs = inst, list(pairs)
        n_p, n_s = len(self.pairs), len(inst.servers)
        self.n_p, self.n_s = n_p, n_s
        rows: list[tuple[dict[int, float], float, float]] = []
        for j in range(n_s):  # s_j D_j - sum (1-l) x <= 0
            row = {n_p + j: float(inst.demand_j[j])}
            for i, (k, jj) in enumerate(self.pairs):
                if jj == j:
                    row[i] = -(1.0 - float(inst.loss[k, j]))
            rows.append((row, -math.inf, 0.0))
        for k, cap in enumerate(inst.available_j):
            row = {i: 1.0 for i, (kk, _) in enumerate(self.pairs) if kk == k}
            rows.append((row, -math.inf, float(cap)))
        index = {p: i for i, p in enumerate(self.pairs)}
        for cap, uses in zip(inst.capacity_j, inst.uses, strict=True):
            row = {index[p]: 1.0 for p in uses if p in index}
            rows.append((row, -math.inf, float(cap)))
        self.loss_row = len(rows)
        rows.append(({i: float(inst.loss[k, j]) for i, (k, j) in enumerate(self.pairs)},
                     -math.inf, math.inf))  # fmt: skip
        self.h = new_highs()
        n = n_p + n_s
        # a server without demand is satisfied whatever it gets
        upper_s = [1.0] * n_s
        lower_s = [1.0 if inst.demand_j[j] <= 0 else 0.0 for j in range(n_s)]
        self.lower_s = lower_s
        self.h.addVars(n, np.asarray([0.0] * n_p + lower_s), np.asarray([math.inf] * n_p + upper_s))
        for row, lo, hi in rows:
            idx = np.asarray(sorted(row), dtype=np.int32)
            self.h.addRow(lo, hi, len(idx), idx, np.asarray([row[i] for i in idx]))
        self.h.changeObjectiveSense(highspy.ObjSense.kMaximize)

    def solve(self, min_sat: float = 0.0, loss_cap: float = math.inf,
              loss_weight: float = TINY) -> np.ndarray | None:  # fmt: skip
        """x maximising mean satisfaction - loss_weight x loss under the epsilon
        constraints, or None when they cannot be met."""
        h = self.h
        for j in range(self.n_s):
            h.changeColBounds(self.n_p + j, max(self.lower_s[j], min_sat), 1.0)
            h.changeColCost(self.n_p + j, 1.0 / self.n_s)
        for i, (k, j) in enumerate(self.pairs):
            h.changeColCost(i, -loss_weight * float(self.inst.loss[k, j]))
        h.changeRowBounds(self.loss_row, -math.inf, loss_cap)
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return None
        return np.maximum(np.asarray(h.getSolution().col_value[: self.n_p]), 0.0)

    def max_min_satisfaction(self) -> float:
        """The largest t with every s_j >= t feasible (bisection-free: an LP in t)."""
        lo, hi = 0.0, 1.0
        for _ in range(30):  # bisection on the epsilon bound: each step one LP
            mid = 0.5 * (lo + hi)
            if self.solve(min_sat=mid) is None:
                hi = mid
            else:
                lo = mid
        return lo


def exact_front(inst: MecInstance, pairs: Sequence[Pair], grid: int = 6) -> list[np.ndarray]:
    """Epsilon-constraint front: for t on a grid of min satisfaction up to its maximum and
    L on a grid of loss caps between that t's least and largest loss, maximise mean
    satisfaction; keep the non-dominated points."""
    lp = AllocationLp(inst, pairs)
    points: list[np.ndarray] = []
    t_max = lp.max_min_satisfaction()
    for t in np.linspace(0.0, t_max, grid):
        top = lp.solve(min_sat=float(t))
        if top is None:
            continue
        l_hi = objectives(inst, pairs, top).loss_j
        cheap = lp.solve(min_sat=float(t), loss_weight=1e3)  # least loss at this t
        l_lo = objectives(inst, pairs, cheap).loss_j if cheap is not None else 0.0
        for cap in np.linspace(l_lo, l_hi, grid):
            x = lp.solve(min_sat=float(t), loss_cap=float(cap) + TOL)
            if x is not None:
                points.append(x)
    return nondominated(inst, pairs, points)


def nondominated(
    inst: MecInstance, pairs: Sequence[Pair], xs: list[np.ndarray]
) -> list[np.ndarray]:
    objs = [_vec(objectives(inst, pairs, x)) for x in xs]
    keep = []
    for i, a in enumerate(objs):
        if not any(_dominates(b, a) or (np.allclose(a, b, atol=1e-9) and j < i)
                   for j, b in enumerate(objs) if j != i):  # fmt: skip
            keep.append(xs[i])
    return sorted(keep, key=lambda x: objectives(inst, pairs, x).loss_j)


def _vec(o: Objectives) -> np.ndarray:
    """All three as quantities to minimise."""
    return np.asarray([-o.mean_satisfaction, -o.min_satisfaction, o.loss_j])


def _dominates(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all(a <= b + 1e-9) and np.any(a < b - 1e-9))


def all_pairs(inst: MecInstance) -> list[Pair]:
    """Every pair a route reaches: the unrestricted LP's pairs."""
    return sorted(inst.routes)


def pick(inst: MecInstance, pairs: Sequence[Pair], front: list[np.ndarray]) -> int:
    """The documented pick rule: the highest min satisfaction, then the highest mean,
    then the least loss (fairness first, then service, then efficiency)."""

    def key(i: int) -> tuple[float, float, float]:
        o = objectives(inst, pairs, front[i])
        return (-round(o.min_satisfaction, 9), -round(o.mean_satisfaction, 9), o.loss_j)

    return min(range(len(front)), key=key)
