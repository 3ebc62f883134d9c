"""Stage 2 by NSGA-II (pymoo), plain or improved.

Improved: a repair operator maps every child into the feasible set (so no evaluation is
wasted on an infeasible point), and the first population holds LP extreme points of the
front (HiGHS, epsilon constraints at a few levels) beside random points. Plain: the
constraints as penalties (pymoo's constraint handling), random start.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.problem import Problem
from pymoo.core.repair import Repair
from pymoo.indicators.hv import HV
from pymoo.optimize import minimize

from scheduler.mec.allocation import AllocationLp, Pair, nondominated, objectives, violation
from scheduler.mec.instance import MecInstance


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
    def __init__(self, model: _Model, constrained: bool) -> None:
        self.model = model
        n_ieq = model.src.shape[1] + model.rtr.shape[1] if constrained else 0
        n_var = len(model.pairs)
        upper = np.maximum(model.upper, 1e-12)
        super().__init__(n_var=n_var, n_obj=3, n_ieq_constr=n_ieq, xl=np.zeros(n_var), xu=upper)

    def _evaluate(self, x, out, *args, **kwargs):  # pymoo's signature
        out["F"] = self.model.f(x)
        if self.n_ieq_constr:
            out["G"] = self.model.g(x)


class _Repair(Repair):
    def __init__(self, model: _Model) -> None:
        super().__init__()
        self.model = model

    def _do(self, problem, x, **kwargs):
        return self.model.repair(np.asarray(x, dtype=float))


def lp_seeds(inst: MecInstance, pairs: Sequence[Pair], levels: int = 4) -> list[np.ndarray]:
    """LP extreme points: best mean at a few min-satisfaction levels, each also at its
    least loss, and the least-loss point (nothing sent)."""
    lp = AllocationLp(inst, pairs)
    seeds = [np.zeros(len(pairs))]
    t_max = lp.max_min_satisfaction()
    for t in np.linspace(0.0, t_max, levels):
        for weight in (1e-6, 1.0, 10.0):
            x = lp.solve(min_sat=float(t), loss_weight=weight)
            if x is not None:
                seeds.append(x)
    return seeds


def run_nsga(inst: MecInstance, pairs: Sequence[Pair], *, improved: bool = True,
             pop: int = 40, generations: int = 40, seed: int = 0) -> list[np.ndarray]:  # fmt: skip
    """The feasible non-dominated points NSGA-II finds."""
    if not pairs:
        return [np.zeros(0)]
    model = _Model(inst, pairs)
    rng = np.random.default_rng(seed)
    start = rng.uniform(0.0, 1.0, (pop, len(pairs))) * model.upper
    if improved:
        seeds = lp_seeds(inst, pairs)[:pop]
        start[: len(seeds)] = np.asarray(seeds)
        start = model.repair(start)
        algorithm = NSGA2(pop_size=pop, sampling=start, repair=_Repair(model))
    else:
        algorithm = NSGA2(pop_size=pop, sampling=start)
    problem = _Problem(model, constrained=not improved)
    res = minimize(problem, algorithm, ("n_gen", generations), seed=seed, verbose=False)
    xs = np.atleast_2d(res.pop.get("X"))
    feasible = [x for x in xs if violation(inst, pairs, x) <= 1e-6]
    return nondominated(inst, pairs, feasible) if feasible else []


def hypervolume(inst: MecInstance, pairs: Sequence[Pair], xs: Sequence[np.ndarray],
                ref_loss: float) -> float:  # fmt: skip
    """Hypervolume of (-mean, -min, loss) against the point (0, 0, ref_loss)."""
    if not xs:
        return 0.0
    pts = []
    for x in xs:
        o = objectives(inst, pairs, x)
        pts.append([-o.mean_satisfaction, -o.min_satisfaction, o.loss_j])
    return float(HV(ref_point=np.asarray([0.0, 0.0, ref_loss]))(np.asarray(pts)))
