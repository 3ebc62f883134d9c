"""Stage 2 over a set of (source, server) pairs: objectives, feasibility and the exact
LPs in HiGHS (lexicographic optima such as the pick rule's point, the exact front by the
epsilon-constraint method on a grid, and the unrestricted LP where a server may draw from
several sources).

Variables x_p >= 0 (energy source k sends to server j on pair p), s_j in [0, 1] and t:
    s_j D_j <= sum_k (1 - l_kj) x_kj        (satisfaction, s_j = min(1, delivered/D_j))
    sum_j x_kj <= A_k                       (source energy)
    sum_{p crosses r} x_p <= C_r            (router capacity per frame)
    s_j >= t                                (t: the minimum satisfaction)
    mean = (1/n) sum_j s_j, loss = sum_p l_p x_p
Each objective (mean, min = t, loss) is an LP objective; epsilon constraints are bounds
on t, and on the mean and loss rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import highspy
import numpy as np

from scheduler.highs import new_highs
from scheduler.mec.front import nondominated_mask
from scheduler.mec.instance import MecInstance

Pair = tuple[int, int]
Goal = Literal["mean", "min", "loss"]
TINY = 1e-6  # weight of the loss beside the mean: keeps a grid point efficient
SLACK = 1e-9  # relative: an optimum fixed as a constraint keeps this much room
# the documented pick rule: fairness first, then service, then efficiency
PICK_ORDER: tuple[Goal, Goal, Goal] = ("min", "mean", "loss")


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


def objective_vector(inst: MecInstance, pairs: Sequence[Pair], x: np.ndarray) -> np.ndarray:
    """(-mean, -min, loss): all three to minimise (the front's and pymoo's convention)."""
    o = objectives(inst, pairs, x)
    return np.asarray([-o.mean_satisfaction, -o.min_satisfaction, o.loss_j])


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
    """The LP above over ``pairs``, built once; each solve changes only bounds and the
    objective, so HiGHS starts from the last basis. ``set_demand`` moves it to another
    frame's demands (same pairs) the same way."""

    def __init__(self, inst: MecInstance, pairs: Sequence[Pair]) -> None:
        self.inst, self.pairs = inst, list(pairs)
        n_p, n_s = len(self.pairs), len(inst.servers)
        self.n_p, self.n_s, self.t_col = n_p, n_s, n_p + n_s
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
        for j in range(n_s):  # s_j - t >= 0
            rows.append(({n_p + j: 1.0, self.t_col: -1.0}, 0.0, math.inf))
        self.mean_row = len(rows)
        rows.append(({n_p + j: 1.0 / n_s for j in range(n_s)}, -math.inf, math.inf))
        self.loss_row = len(rows)
        self.loss_coef = np.asarray([float(inst.loss[k, j]) for k, j in self.pairs])
        rows.append(({i: c for i, c in enumerate(self.loss_coef)}, -math.inf, math.inf))
        self.h = h = new_highs()
        n = n_p + n_s + 1
        h.addVars(n, np.zeros(n), np.asarray([math.inf] * n_p + [1.0] * (n_s + 1)))
        for row, lo, hi in rows:
            idx = np.asarray(sorted(row), dtype=np.int32)
            h.addRow(lo, hi, len(idx), idx, np.asarray([row[i] for i in idx]))
        h.changeObjectiveSense(highspy.ObjSense.kMaximize)
        self.solves = 0  # LPs solved so far
        self.demand = np.zeros(n_s)
        self.set_demand(inst.demand_j)
        self.costs = {
            "mean": self._cost({n_p + j: 1.0 / n_s for j in range(n_s)}),
            "min": self._cost({self.t_col: 1.0}),
            "loss": self._cost({i: -c for i, c in enumerate(self.loss_coef)}),
        }
        self._all = np.arange(n, dtype=np.int32)

    def _cost(self, entries: dict[int, float]) -> np.ndarray:
        c = np.zeros(self.n_p + self.n_s + 1)
        for i, v in entries.items():
            c[i] = v
        return c

    def set_demand(self, demand_j: np.ndarray) -> None:
        """Another frame's demands D_j over the same pairs (a server without demand is
        satisfied whatever it gets: s_j = 1)."""
        for j, d in enumerate(np.asarray(demand_j, dtype=float)):
            if d != self.demand[j] or d <= 0:
                self.h.changeCoeff(j, self.n_p + j, float(d))
                self.h.changeColBounds(self.n_p + j, 1.0 if d <= 0 else 0.0, 1.0)
        self.demand = np.asarray(demand_j, dtype=float).copy()

    # -- solving ----------------------------------------------------------------------
    def _run(self, cost: np.ndarray) -> float | None:
        h = self.h
        self.solves += 1
        h.changeColsCost(len(cost), self._all, cost)
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return None
        return float(h.getInfo().objective_function_value)

    def _x(self) -> np.ndarray:
        return np.maximum(np.asarray(self.h.getSolution().col_value[: self.n_p]), 0.0)

    def _bounds(self, min_sat: float, loss_cap: float) -> None:
        self.h.changeColBounds(self.t_col, min(1.0, max(0.0, min_sat)), 1.0)
        self.h.changeRowBounds(self.mean_row, -math.inf, math.inf)
        self.h.changeRowBounds(self.loss_row, -math.inf, loss_cap)

    def solve(
        self, min_sat: float = 0.0, loss_cap: float = math.inf, loss_weight: float = TINY
    ) -> np.ndarray | None:
        """x maximising mean satisfaction - loss_weight x loss under the epsilon
        constraints (min satisfaction >= min_sat, loss <= loss_cap), or None when they
        cannot be met."""
        self._bounds(min_sat, loss_cap)
        got = self._run(self.costs["mean"] + loss_weight * self.costs["loss"])
        return None if got is None else self._x()

    def dominating(self, goal: Goal, mean: float, min_sat: float, loss: float) -> np.ndarray | None:
        """A front point at least as good as (mean, min_sat, loss) in every objective:
        the best ``goal`` with the other two held (one LP; a tiny weight on the others
        keeps it efficient)."""
        self._bounds(min_sat, loss)
        self.h.changeRowBounds(self.mean_row, mean, math.inf)
        cost = self.costs[goal] + TINY * sum(self.costs[g] for g in self.costs if g != goal)
        got = self._run(cost)
        return None if got is None else self._x()

    def lexicographic(
        self, order: Sequence[Goal], min_sat: float = 0.0, loss_cap: float = math.inf
    ) -> np.ndarray | None:
        """The exact lexicographic optimum: the best first objective, then among those
        the best second, then the third (each optimum kept as a constraint with a
        relative slack of SLACK), under the epsilon constraints; None if they cannot be
        met."""
        self._bounds(min_sat, loss_cap)
        for goal in order:
            best = self._run(self.costs[goal])
            if best is None:
                return None
            room = SLACK * max(1.0, abs(best))
            if goal == "mean":
                self.h.changeRowBounds(self.mean_row, best - room, math.inf)
            elif goal == "min":
                self.h.changeColBounds(self.t_col, max(0.0, min(1.0, best - room)), 1.0)
            else:  # the loss objective is maximised as -loss
                self.h.changeRowBounds(self.loss_row, -math.inf, -best + room)
        return self._x()

    def max_min_satisfaction(self, loss_cap: float = math.inf) -> float:
        """The largest t with every s_j >= t feasible: one LP maximising t."""
        self._bounds(0.0, loss_cap)
        best = self._run(self.costs["min"])
        return 0.0 if best is None else max(0.0, min(1.0, best))

    def pick_point(self) -> np.ndarray:
        """The pick rule's point, exactly: the highest minimum satisfaction, then the
        highest mean, then the least loss (x = 0 is always feasible)."""
        x = self.lexicographic(PICK_ORDER)
        assert x is not None
        return x


def grid_points(
    lp: AllocationLp,
    t_levels: int,
    loss_levels: int,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[np.ndarray]:
    """Epsilon-constraint points: for t on ``t_levels`` levels of the minimum
    satisfaction up to its largest value, the least-loss and the best-mean points at
    that t (both exact, lexicographic), and ``loss_levels`` caps between their losses,
    each maximising the mean. ``progress(done, total)``: levels of t done."""
    t_max = lp.max_min_satisfaction()
    if t_max <= SLACK:  # the minimum is 0 on the whole front (a server left unmatched):
        t_levels, loss_levels = 1, t_levels * loss_levels  # a curve; sample it as finely
    levels = np.linspace(0.0, t_max, max(1, t_levels))
    for done, t in enumerate(levels, 1):
        yield from _level(lp, float(t), loss_levels)
        if progress is not None:
            progress(done, len(levels))


def _level(lp: AllocationLp, t: float, loss_levels: int) -> Iterator[np.ndarray]:
    """The grid's points at minimum satisfaction ``t``."""
    cheap = lp.lexicographic(("loss", "mean", "min"), min_sat=t)
    top = lp.lexicographic(("mean", "loss", "min"), min_sat=t)
    if cheap is None or top is None:
        return
    yield cheap
    yield top
    lo, hi = float(lp.loss_coef @ cheap), float(lp.loss_coef @ top)
    if hi - lo <= SLACK * max(1.0, hi):
        return
    for cap in np.linspace(lo, hi, max(2, loss_levels))[1:-1]:
        x = lp.solve(min_sat=t, loss_cap=float(cap))
        if x is not None:
            yield x


DEFAULT_GRID = 20  # levels of t and of the loss cap: ~400 LPs on the bench


def exact_front(
    inst: MecInstance,
    pairs: Sequence[Pair],
    grid: int = DEFAULT_GRID,
    progress: Callable[[int, int], None] | None = None,
) -> list[np.ndarray]:
    """The epsilon-constraint front on a ``grid`` x ``grid`` grid: the non-dominated
    points, least loss first. Each point is exact (an LP optimum), but the points are
    a sample of the front, finer as the grid is."""
    if not pairs:
        return [np.zeros(0)]
    lp = AllocationLp(inst, pairs)
    return nondominated(inst, pairs, list(grid_points(lp, grid, grid, progress)))


def nondominated(
    inst: MecInstance,
    pairs: Sequence[Pair],
    xs: Sequence[np.ndarray],
    f: np.ndarray | None = None,
) -> list[np.ndarray]:
    """The points of ``xs`` no other dominates (duplicates once), least loss first;
    ``f``: their objective vectors, when known."""
    if not len(xs):
        return []
    if f is None:
        f = np.asarray([objective_vector(inst, pairs, x) for x in xs])
    keep = [int(i) for i in np.flatnonzero(nondominated_mask(f))]
    return [xs[i] for i in sorted(keep, key=lambda i: (f[i, 2], f[i, 0], f[i, 1]))]


def all_pairs(inst: MecInstance) -> list[Pair]:
    """Every pair a route reaches: the unrestricted LP's pairs."""
    return sorted(inst.routes)


def pick(inst: MecInstance, pairs: Sequence[Pair], front: list[np.ndarray]) -> int:
    """The documented pick rule over a front: the highest min satisfaction, then the
    highest mean, then the least loss (fairness first, then service, then efficiency).
    Ties within 1e-9 go to the next criterion."""

    def key(i: int) -> tuple[float, float, float]:
        o = objectives(inst, pairs, front[i])
        return (-round(o.min_satisfaction, 9), -round(o.mean_satisfaction, 9), o.loss_j)

    return min(range(len(front)), key=key)
