"""The ``lr`` planner: Lagrangian relaxation with a subgradient dual and a primal repair.

Relaxed: one packet per resource per slot, and the buffer places of storage routers per
slot (prices ``lam`` and ``mu``). Each transfer's subproblem is then solved exactly
(``dual.lagrangian_subproblems``), so every dual value is a certified lower bound on the
optimum of the same problem, whatever prices produced it.

Prices move by projected subgradient steps (Polyak's step length towards the best plan
found). They move coarse to fine: first one price level per resource for the whole
frame, then per block of slots, down to single slots. Time-indexed prices of a congested
resource are nearly flat (a level set by its capacity, tilted by the small delay price);
slot-by-slot steps alone need hundreds of iterations to find that level, blocks find it
in a few.

Before the subgradient, on a bench loaded past some resource's capacity for the frame,
the price levels come from column generation on the frame-aggregated master
(``pricing.Levels``, HiGHS): the subgradient finds such levels slowly.

Feasible plans come from the relaxed solution: keep every relaxed packet whose places
are free, re-place the rest on their cheapest free places (``repair.repair_relaxed``),
and finish with a remove-and-reinsert local search (``local_search``). With a
finishing budget (``finish_s``), HiGHS then tightens the bound by column generation and
picks the best plan made of the packets met along the way (``pricing.Finisher``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from scheduler.bundles import Places, Prices
from scheduler.greedy import greedy_assignment
from scheduler.lagrangian import dual, local_search, occupancy, repair
from scheduler.lagrangian.pricing import (
    FINISH_MAX_COLUMNS,
    LP_SHARE,
    Finisher,
    Levels,
    Pool,
    overloaded,
)
from scheduler.plan import Assignment, Plan, relative_gap, to_plan
from scheduler.problem import PlanningProblem

Progress = Callable[[int, int, float, float], None]  # iteration, of, bound, plan value
# the HiGHS finish began or raised the bound: (its budget in seconds, bound, plan value)
Finishing = Callable[[float, float, float], None]


@dataclass(frozen=True)
class LrOptions:
    max_iterations: int = 300
    target_gap: float = 1e-4  # stop once the certified gap is below this
    theta0: float = 1.0  # Polyak step factor
    patience: int = 5  # iterations without a better bound before halving theta
    level_halvings: int = 3  # halvings at one price resolution before refining it
    block_factor: int = 8  # each refinement divides the block of slots priced together
    min_theta: float = 1e-3  # stop when theta falls below this at single-slot prices
    repair_every: int = 10
    improve_rounds: int = 3
    eject_tries: int = 8  # ejection moves tried per packet and round
    eject_budget: int = 5000  # ejection moves tried per round, in all
    polish_rounds: int = 4
    coarse_to_fine: bool = True
    stall_iterations: int = 60  # stop when the best bound gains less than stall_tol
    stall_tol: float = 1e-4  # (relative) over this many slot-level iterations
    aim: float = 0.5  # Polyak target: best bound + aim * (best plan - best bound)
    time_limit_s: float | None = None  # stop iterating after this (then repair and polish)
    levels: bool = True  # price levels by column generation when a resource is overloaded
    warm_iterations: int = 60  # most iterations when starting from the last plan's prices
    finish_s: float = 0.0  # HiGHS may spend this long on the bound and the plan (0: off)


WARM_THETA = 0.1  # warm-started prices are near the best: small steps from them


@dataclass(frozen=True)
class WarmStart:
    """Where a plan of the same problem ended: its best prices and its best plan. A frame
    loop plans the same transfers frame after frame; starting there, lr certifies the
    same bound at once and spends its iterations improving on it."""

    fingerprint: str
    lam: NDArray[np.float64]
    mu: NDArray[np.float64]
    best: Assignment


_compiled = False


def ensure_compiled() -> float:
    """JIT-compile (or load from Numba's cache) every kernel on a tiny problem.

    Returns the milliseconds spent, 0 once done in this process, so that callers report
    compile time apart from solve time."""
    global _compiled
    if _compiled:
        return 0.0
    from scheduler.lagrangian.warmup import tiny_problem

    start = time.perf_counter()
    LagrangianSolver(
        tiny_problem(), LrOptions(max_iterations=6, repair_every=2, finish_s=1.0)
    ).run()
    _compiled = True
    return (time.perf_counter() - start) * 1000.0


class LagrangianSolver:
    def __init__(
        self,
        problem: PlanningProblem,
        options: LrOptions = LrOptions(),
        progress: Progress | None = None,
        warm: WarmStart | None = None,
        finishing: Finishing | None = None,
    ) -> None:
        self.p = problem
        self.warm = warm if warm is not None and warm.fingerprint == problem.fingerprint else None
        self.warm_out: WarmStart | None = None
        self.options = options
        self.progress = progress
        self.finishing = finishing
        n_res, n_slots = problem.n_resources, problem.n_slots
        n_store = len(problem.store_ids)
        self.lam = np.zeros((n_res, n_slots))
        self.mu = np.zeros((n_store, n_slots))
        self.res_active = np.zeros(n_res, dtype=np.bool_)
        self.store_active = np.zeros(n_store, dtype=np.bool_)
        self.penalty = 0.0  # sum(lam) + sum(store_cap * mu), kept with the prices
        self.overused = False  # the last relaxed solution breaks a relaxed constraint
        self._use_counted = False  # res_use/store_use hold counts not yet consumed
        self.res_use = np.zeros((n_res, n_slots), dtype=np.int64)
        self.store_use = np.zeros((n_store, n_slots), dtype=np.int64)
        self.occ = np.zeros((n_res, n_slots), dtype=np.int64)
        self.store_occ = np.zeros((n_store, n_slots), dtype=np.int64)
        self.relaxed = Assignment.empty(problem)
        self.spans = np.zeros(problem.n_transfers, dtype=np.int64)  # window search hints
        self.best = Assignment.empty(problem)
        self.best_objective = float(problem.tr_value @ problem.tr_packets)  # deliver nothing
        self.best_bound = -np.inf
        self.iterations = 0
        self.repairs = 0
        self.orders = self._orders()
        self.level_rounds = 0
        finishes = options.finish_s > 0 and problem.n_packets < FINISH_MAX_COLUMNS
        self.pool = Pool(problem) if finishes else None
        self.finish: dict[str, float] = {}  # what finishing did: rounds, bound and plan gains

    # -- bundles --------------------------------------------------------------------------
    def prices(self, weight: float = 1.0) -> Prices:
        return Prices(self.lam, self.mu, self.res_active, weight)

    @property
    def places(self) -> Places:
        return Places(self.occ, self.store_occ, True)

    # -- dual -----------------------------------------------------------------------------
    def dual_value(self) -> float:
        a = self.p.arrays
        sub = dual.lagrangian_subproblems(a, self.prices(), self.relaxed.packets, self.spans)
        self.overused = dual.count_usage(
            a, self.relaxed.packets, self.res_use, self.store_use, self._use_counted
        )
        self._use_counted = True
        return float(self.p.tr_value @ self.p.tr_packets) + sub - self.penalty

    def step(self, scale: float, block: int) -> float:
        norm2, self.penalty = dual.subgradient_step(
            self.p.arrays,
            self.prices(),
            self.res_use,
            self.store_use,
            self.store_active,
            scale,
            block,
        )
        self._use_counted = False
        return float(norm2)

    # -- primal ---------------------------------------------------------------------------
    def repair(self, order: NDArray[np.int64], weight: float) -> None:
        """Transfer by transfer, ignoring the relaxed solution (the starting plan)."""
        trial = Assignment.empty(self.p)
        objective = repair.repair(
            self.p.arrays, order, self.prices(weight), self.places, trial.packets
        )
        self._offer(trial, objective)

    def repair_relaxed(self, order: NDArray[np.int64]) -> None:
        trial = Assignment.empty(self.p)
        objective = repair.repair_relaxed(
            self.p.arrays, self.relaxed.packets, order, self.prices(), self.places, trial.packets
        )
        self._offer(trial, objective)

    def polish(self) -> None:
        """Local search on the best plan: ejection moves and reinsertions until neither
        finds anything."""
        for _ in range(self.options.polish_rounds):
            if self.eject_best() + self.improve_best() <= 1e-12:
                break

    def eject_best(self) -> float:
        self._load_occupancy(self.best)
        opts = self.options
        gained = local_search.eject(
            self.p.arrays, opts.eject_tries, opts.eject_budget, self.places, self.best.packets
        )
        if gained > 0.0:
            self.best_objective = self._objective(self.best)
        return float(gained)

    def improve_best(self) -> float:
        self._load_occupancy(self.best)
        gained = local_search.improve(
            self.p.arrays, self.options.improve_rounds, self.places, self.best.packets
        )
        if gained > 0.0:
            self.best_objective = self._objective(self.best)
        return float(gained)

    def _load_occupancy(self, a: Assignment) -> None:
        dual.count_usage(self.p.arrays, a.packets, self.occ, self.store_occ, True)

    def _offer(self, candidate: Assignment, objective: float) -> None:
        self.repairs += 1
        if self.pool is not None:
            self.pool.collect(candidate.packets)
        if objective < self.best_objective - 1e-12:
            self.best_objective = objective
            self.best = candidate.copy()

    def _orders(self) -> list[NDArray[np.int64]]:
        """Transfer orders the repairs take turns with: tightest window per packet
        first; most valuable first; earliest deadline first."""
        p = self.p
        width = (p.tr_deadline - p.tr_release + 1).astype(np.float64)
        tightness = p.tr_packets / width
        idx = np.arange(p.n_transfers)
        return [
            np.lexsort((idx, -p.tr_value, -tightness)).astype(np.int64),
            np.lexsort((idx, p.tr_deadline, -p.tr_value)).astype(np.int64),
            np.lexsort((idx, -p.tr_value, p.tr_deadline)).astype(np.int64),
        ]

    def _objective(self, a: Assignment) -> float:
        return float(occupancy.plan_objective(self.p.arrays, a.packets))

    # -- main loop ------------------------------------------------------------------------
    def run(self) -> tuple[Assignment, float, float]:
        """Returns (best plan, its objective, best certified lower bound)."""
        opts = self.options
        deadline = None if opts.time_limit_s is None else time.perf_counter() + opts.time_limit_s
        theta, iterations = opts.theta0, opts.max_iterations
        if self.warm is not None:
            self._offer(self.warm.best.copy(), self._objective(self.warm.best))
            self.set_prices(self.warm.lam.copy(), self.warm.mu.copy())
            block, theta = 1, opts.theta0 * WARM_THETA
            iterations = min(iterations, opts.warm_iterations)
        else:
            self.repair(self.orders[0], 0.0)
            block = self.p.n_slots if opts.coarse_to_fine else 1
        # the earliest-deadline-first baseline is one more starting plan: local search
        # only improves the best plan, so lr is never worse than greedy
        greedy = greedy_assignment(self.p)
        self._offer(greedy, self._objective(greedy))
        if self.warm is None and opts.levels and self._find_levels([self.best, greedy], deadline):
            block = self._finer(block)  # the frame's levels are set: shape them in time
        stall, halvings = 0, 0
        best_lam, best_mu = self.lam.copy(), self.mu.copy()
        history: list[float] = []  # best bound per slot-level iteration
        for it in range(iterations):
            if deadline is not None and it > 0 and time.perf_counter() > deadline:
                break
            self.iterations = it + 1
            bound = self.dual_value()
            if bound > self.best_bound + 1e-12:
                self.best_bound, stall = bound, 0
                best_lam[:], best_mu[:] = self.lam, self.mu
            else:
                stall += 1
                if stall >= opts.patience:
                    # back to the best prices seen, with shorter steps
                    theta, stall, halvings = theta / 2.0, 0, halvings + 1
                    if halvings >= opts.level_halvings and block > 1:
                        block, theta, halvings = self._finer(block), opts.theta0, 0
                    self.set_prices(best_lam, best_mu)
                    bound = self.dual_value()
            if self.pool is not None and block == 1:
                self.pool.collect(self.relaxed.packets)
            if not self.overused:
                self._offer(self.relaxed, self._objective(self.relaxed))
            elif it % opts.repair_every == opts.repair_every - 1:
                self.repair_relaxed(self.orders[(it // opts.repair_every) % len(self.orders)])
            if self.progress:
                self.progress(it + 1, iterations, self.best_bound, self.best_objective)
            gap = relative_gap(self.best_objective, self.best_bound)
            if gap is not None and gap <= opts.target_gap:
                break
            if block == 1 and theta < opts.min_theta:
                break
            if block == 1:
                history.append(self.best_bound)
                window = opts.stall_iterations
                if len(history) > window and history[-1] - history[-1 - window] <= (
                    opts.stall_tol * max(1.0, abs(history[-1]))
                ):
                    break  # the bound has stopped moving: more steps buy nothing
            aim = self.best_bound + opts.aim * (self.best_objective - self.best_bound)
            norm2 = self.step(theta * max(aim - bound, 1e-9), block)
            if norm2 == 0.0:
                if block == 1:
                    break  # no relaxed constraint binds: the relaxed solution is optimal
                block, theta, halvings = self._finer(block), opts.theta0, 0
        self.set_prices(best_lam, best_mu)
        self.polish()
        if self.pool is not None:
            self._finish()
        self.warm_out = WarmStart(
            self.p.fingerprint, self.lam.copy(), self.mu.copy(), self.best.copy()
        )
        bound = self.best_bound
        if bound > self.best_objective and bound - self.best_objective <= 1e-9 * max(
            1.0, abs(self.best_objective)
        ):
            bound = self.best_objective  # rounding at a proven optimum
        return self.best, self.best_objective, bound

    def _find_levels(self, seeds: list[Assignment], deadline: float | None) -> bool:
        """Set the prices to the best frame-wide levels when the relaxed solution at zero
        prices overloads a resource or buffer for the frame as a whole; True if it did."""
        bound = self.dual_value()  # at zero prices: every transfer as if alone
        self.best_bound = max(self.best_bound, bound)
        if not overloaded(self.p, self.res_use, self.store_use):
            return False
        levels = Levels(self.p)
        levels.run(self, seeds, deadline)
        self.level_rounds = levels.rounds
        return True

    def _finish(self) -> None:
        """Column generation for the bound, then HiGHS's best plan of the pooled packets
        (polished, kept if better), within ``finish_s``."""
        assert self.pool is not None
        begin = time.perf_counter()
        budget = self.options.finish_s
        bound0, plan0 = self.best_bound, self.best_objective
        self.finish_progress()
        finisher = Finisher(self.p, self.pool, self.best, self.lam, self.mu)
        finisher.tighten(self, begin + LP_SHARE * budget)
        self.finish_progress()  # HiGHS's MIP next: it says nothing until it is done
        left = budget - (time.perf_counter() - begin)
        candidate = finisher.best_plan(max(0.05 * budget, left))
        if candidate is not None:
            before = self.best_objective
            self._offer(candidate, self._objective(candidate))  # recomputed exactly
            if self.best_objective < before:
                self.polish()
        self.finish = {
            "rounds": finisher.rounds,
            "lp": finisher.lp_value,  # the restricted master's last LP value (NaN: unsolved)
            "converged": float(finisher.converged),
            "bound_gain": self.best_bound - bound0,
            "plan_gain": plan0 - self.best_objective,
            "ms": (time.perf_counter() - begin) * 1000.0,
        }

    def finish_progress(self) -> None:
        """Tell whoever follows the plan that the finish runs, with the bound so far."""
        if self.finishing is not None:
            self.finishing(self.options.finish_s, self.best_bound, self.best_objective)

    def set_prices(self, lam: NDArray[np.float64], mu: NDArray[np.float64]) -> None:
        """Price the relaxed constraints at ``lam``/``mu`` (copied), with the flags and the
        penalty the kernels and the dual value need."""
        self.lam[:], self.mu[:] = lam, mu
        self.res_active[:] = (lam > 0.0).any(axis=1) if lam.size else False
        self.store_active[:] = (mu > 0.0).any(axis=1) if mu.size else False
        self.penalty = float(lam.sum() + (self.p.store_cap[:, None] * mu).sum())

    def _finer(self, block: int) -> int:
        return max(1, block // self.options.block_factor)


def solve_lr(
    problem: PlanningProblem,
    options: LrOptions = LrOptions(),
    progress: Progress | None = None,
    warm: WarmStart | None = None,
    finishing: Finishing | None = None,
) -> Plan:
    """Plan ``problem``. ``warm``: the ``Plan.warm`` of an earlier plan; used when it was
    of the same problem (same fingerprint), ignored otherwise. ``progress`` hears of
    every iteration, ``finishing`` of the HiGHS finish (it starts, the bound rises)."""
    compile_ms = ensure_compiled()
    start = time.perf_counter()
    solver = LagrangianSolver(problem, options, progress, warm, finishing)
    best, objective, bound = solver.run()
    solve_ms = (time.perf_counter() - start) * 1000.0
    return to_plan(
        problem,
        best,
        solver="lr",
        objective=objective,
        lower_bound=bound,
        solve_ms=solve_ms,
        compile_ms=compile_ms,
        stats={
            "iterations": solver.iterations,
            "plans_tried": solver.repairs,
            "level_rounds": solver.level_rounds,
            "finish": solver.finish,
            "warm": solver.warm is not None,
        },
        warm=solver.warm_out,
    )
