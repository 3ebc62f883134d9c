"""Stage 2 by NSGA-II (pymoo): plain, improved, and the steps between (for the benchmark).

Improved: four changes to pymoo's NSGA-II, each measured in benchmarks/mec.py:
* repair: every child is mapped into the feasible set (clipped to [0, D_j / (1 - l_p)],
  then each over-full source's and router's pairs scaled down to the limit), so no
  evaluation is spent on an infeasible point;
* LP seeds: the first population holds exact front points solved in HiGHS (the
  lexicographic extremes, the pick rule's point first, and an epsilon-constraint grid)
  beside random points;
* LP polish: a share of the children is moved onto the front by one LP that improves
  one objective, drawn at random, while holding the child's other two (a point that
  dominates the child). A random objective, not always the mean: children come mostly
  with a low minimum satisfaction, and raising it spreads the front to the fair end;
* an archive: every feasible point evaluated is kept, and the front reported is the
  non-dominated set of all of them, not only the last population's (NSGA-II's crowding
  forgets good points the population cannot hold).
Plain: the constraints as pymoo penalties, a random start, the last population's front.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.callback import Callback
from pymoo.core.problem import Problem
from pymoo.core.repair import Repair
from pymoo.optimize import minimize

from scheduler.mec.allocation import (
    AllocationLp,
    Goal,
    Pair,
    grid_points,
    nondominated,
    violation,
)
from scheduler.mec.instance import MecInstance

FEASIBLE_J = 1e-9  # a point breaking no limit by more than this is feasible
HAIR = 1e-12
POLISH_GOALS: tuple[Goal, ...] = ("mean", "min", "loss")


@dataclass(frozen=True)
class Variant:
    name: str
    repair: bool  # repair children into the feasible set (else: constraint penalties)
    seeds: bool  # LP points in the first population (else: random)
    archive: bool  # report the non-dominated set of every feasible point evaluated
    polish: float = 0.0  # share of children moved onto the front by one LP


PLAIN = Variant("plain", repair=False, seeds=False, archive=False)
IMPROVED = Variant("improved", repair=True, seeds=True, archive=True, polish=0.5)
# the steps from one to the other, for the benchmark
STEPS = (
    PLAIN,
    Variant("+archive", repair=False, seeds=False, archive=True),
    Variant("+repair", repair=True, seeds=False, archive=True),
    Variant("+LP seeds", repair=True, seeds=True, archive=True),
    IMPROVED,
)


@dataclass(frozen=True)
class NsgaResult:
    front: list[np.ndarray]  # feasible, non-dominated, least loss first
    evaluations: int  # objective evaluations (the budget: pop x generations)
    lp_solves: int  # HiGHS solves for the seeds and the polish
    seconds: float


class _Model:
    """Vectorised objectives and constraints of one instance over ``pairs``."""

    def __init__(self, inst: MecInstance, pairs: Sequence[Pair]) -> None:
        self.inst, self.pairs = inst, list(pairs)
        n_p = len(self.pairs)
        ks = np.asarray([k for k, _ in self.pairs], dtype=np.int64)
        js = np.asarray([j for _, j in self.pairs], dtype=np.int64)
        self.l = inst.loss[ks, js]
        self.gain = np.zeros((n_p, len(inst.servers)))  # x @ gain = delivered per server
        self.gain[np.arange(n_p), js] = 1.0 - self.l
        self.src = np.zeros((n_p, len(inst.sources)))
        self.src[np.arange(n_p), ks] = 1.0
        index = {p: i for i, p in enumerate(self.pairs)}
        self.rtr = np.zeros((n_p, len(inst.routers)))
        for r, uses in enumerate(inst.uses):
            for p in uses:
                if p in index:
                    self.rtr[index[p], r] = 1.0
        d = inst.demand_j[js]
        # more than its server needs only adds loss
        self.upper = np.minimum(inst.available_j[ks], d / (1.0 - self.l))
        self.demand = inst.demand_j

    def f(self, x: np.ndarray) -> np.ndarray:
        got = x @ self.gain
        d = np.where(self.demand > 0, self.demand, 1.0)
        s = np.where(self.demand > 0, np.minimum(1.0, got / d), 1.0)
        return np.column_stack([-s.mean(axis=1), -s.min(axis=1), x @ self.l])

    def g(self, x: np.ndarray) -> np.ndarray:
        return np.column_stack([x @ self.src - self.inst.available_j,
                                x @ self.rtr - self.inst.capacity_j])  # fmt: skip

    def repair(self, x: np.ndarray) -> np.ndarray:
        """Scale each over-full source's and router's pairs down to its limit; scaling
        down never breaks a limit already met, so one pass gives a feasible point."""
        x = np.clip(x, 0.0, self.upper)
        for use, cap in ((self.src, self.inst.available_j), (self.rtr, self.inst.capacity_j)):
            for c in range(use.shape[1]):
                on = use[:, c] > 0
                load = x[:, on].sum(axis=1)
                scale = np.where(load > cap[c], cap[c] / np.maximum(load, 1e-300), 1.0)
                x[:, on] *= scale[:, None]
        return x


class _Problem(Problem):
    """The allocation for pymoo; it counts evaluations and keeps the feasible ones."""

    def __init__(self, model: _Model, constrained: bool) -> None:
        self.model = model
        self.evaluations = 0
        self.kept_x: list[np.ndarray] = []
        self.kept_f: list[np.ndarray] = []
        n_ieq = model.src.shape[1] + model.rtr.shape[1] if constrained else 0
        n_var = len(model.pairs)
        upper = np.maximum(model.upper, 1e-12)
        super().__init__(n_var=n_var, n_obj=3, n_ieq_constr=n_ieq, xl=np.zeros(n_var), xu=upper)

    def _evaluate(self, x, out, *args, **kwargs):  # pymoo's signature
        f = self.model.f(x)
        g = self.model.g(x)
        out["F"] = f
        if self.n_ieq_constr:
            out["G"] = g
        self.evaluations += len(x)
        ok = (g <= FEASIBLE_J).all(axis=1) if g.size else np.ones(len(x), dtype=bool)
        self.kept_x.append(x[ok].copy())
        self.kept_f.append(f[ok])


class _Repair(Repair):
    """Feasibility repair, then (``lp``) the LP polish of a ``share`` of the children."""

    def __init__(self, model: _Model, lp: AllocationLp | None, share: float, seed: int) -> None:
        super().__init__()
        self.model, self.lp, self.share = model, lp, share
        self.rng = np.random.default_rng(seed)

    def _do(self, problem, x, **kwargs):
        x = self.model.repair(np.asarray(x, dtype=float))
        if self.lp is None:
            return x
        f = self.model.f(x)
        for i in np.flatnonzero(self.rng.random(len(x)) < self.share):
            goal = POLISH_GOALS[int(self.rng.integers(len(POLISH_GOALS)))]
            # (-mean, -min, loss) held, a hair looser: round-off must not make it infeasible
            y = self.lp.dominating(goal, -f[i, 0] - HAIR, -f[i, 1] - HAIR, f[i, 2] + HAIR)
            if y is not None:
                x[i] = y
        return self.model.repair(x)


class _Generations(Callback):
    """Tells ``progress`` each generation done."""

    def __init__(self, total: int, progress: Callable[[int, int], None] | None) -> None:
        super().__init__()
        self.total, self.progress = total, progress

    def notify(self, algorithm) -> None:  # pymoo's signature
        if self.progress is not None:
            self.progress(min(algorithm.n_gen, self.total), self.total)


def lp_seeds(lp: AllocationLp, count: int) -> list[np.ndarray]:
    """Up to ``count`` exact front points: the lexicographic extremes (the pick rule's
    point first, the best mean, nothing sent) and an epsilon-constraint grid of about
    ``count`` points."""
    seeds = [lp.pick_point()]
    best_mean = lp.lexicographic(("mean", "min", "loss"))
    if best_mean is not None:
        seeds.append(best_mean)
    seeds.append(np.zeros(lp.n_p))
    side = max(2, math.isqrt(max(4, count - len(seeds))))
    seeds += list(grid_points(lp, side, side))
    return seeds[:count]


def run_nsga(
    inst: MecInstance,
    pairs: Sequence[Pair],
    variant: Variant = IMPROVED,
    *,
    pop: int = 100,
    generations: int = 30,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> NsgaResult:
    """NSGA-II over ``pairs`` with ``pop`` x ``generations`` evaluations;
    ``progress(done, total)``: generations done."""
    began = time.perf_counter()
    if not pairs:
        return NsgaResult([np.zeros(0)], 0, 0, 0.0)
    model = _Model(inst, pairs)
    rng = np.random.default_rng(seed)
    start = rng.uniform(0.0, 1.0, (pop, len(pairs))) * model.upper
    lp = AllocationLp(inst, pairs) if variant.seeds or variant.polish else None
    if variant.seeds and lp is not None:
        seeds = lp_seeds(lp, pop)
        start[: len(seeds)] = np.asarray(seeds)
    if variant.repair:
        polish = lp if variant.polish else None
        repair = _Repair(model, polish, variant.polish, seed)
        algorithm = NSGA2(pop_size=pop, sampling=model.repair(start), repair=repair)
    else:
        algorithm = NSGA2(pop_size=pop, sampling=start)
    problem = _Problem(model, constrained=not variant.repair)
    # not copied: the repair holds a HiGHS model, which cannot be deep-copied
    res = minimize(
        problem,
        algorithm,
        ("n_gen", generations),
        seed=seed,
        verbose=False,
        copy_algorithm=False,
        callback=_Generations(generations, progress),
    )
    if variant.archive:
        front = nondominated(
            inst, pairs, list(np.vstack(problem.kept_x)), np.vstack(problem.kept_f)
        )
    else:
        last = np.atleast_2d(res.pop.get("X"))
        front = nondominated(inst, pairs, [x for x in last if violation(inst, pairs, x) <= 1e-6])
    solves = lp.solves if lp is not None else 0
    return NsgaResult(front, problem.evaluations, solves, time.perf_counter() - began)
