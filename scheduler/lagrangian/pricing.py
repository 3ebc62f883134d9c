"""Two uses of the HiGHS master (``scheduler.lagrangian.master``) inside ``lr``.

``levels``: the best prices that are constant over the whole frame, by column
generation on the frame-aggregated master. On a bench loaded past a resource's capacity
(the hot-spot family) the subgradient needs hundreds of iterations to find the level of
the prices on the bottleneck and to share it between parallel lines; the aggregated
master finds it in a few LP solves, and the subgradient then shapes the prices in time.
Skipped when no resource is over its capacity for the frame as a whole: the level
prices are then all zero.

``Pool`` and ``Finisher``: columns (packets) met along the way, from relaxed solutions
and plans, seed the exact master (slot by slot). Column generation on it, its duals
smoothed towards the subgradient's best prices (Wentges), tightens the bound to the
LP relaxation's; then HiGHS picks the best plan made of the columns (a restricted
master MIP, "price and branch"): it combines packets of different relaxed solutions
that no single repair puts together.
"""

from __future__ import annotations

import time

import numpy as np
from numpy.typing import NDArray

from scheduler.lagrangian.columns import Columns, column_entries, columns_of
from scheduler.lagrangian.master import ColumnMaster
from scheduler.plan import Assignment
from scheduler.problem import PlanningProblem

LEVEL_ROUNDS = 30  # column generation rounds for the levels, at most
POOL_PER_PACKET = 6  # pool columns kept per packet of a transfer for the final MIP
FINISH_MAX_COLUMNS = 20_000  # larger masters take HiGHS longer than a finishing budget
POOL_MAX_ROWS = 40  # pool columns collected per packet of the problem, at most
SMOOTHING = 0.5  # prices priced: this much of the best prices, the rest the master's duals
LP_SHARE = 0.5  # of the finishing budget, column generation may take this much


def overloaded(
    p: PlanningProblem, res_use: NDArray[np.int64], store_use: NDArray[np.int64]
) -> bool:
    """Does the relaxed solution put more on some resource or buffer than it can carry
    in the whole frame?"""
    over_res = bool((res_use.sum(axis=1) > p.n_slots).any())
    over_store = bool((store_use.sum(axis=1) > p.store_cap * p.n_slots).any())
    return over_res or over_store


class Levels:
    """Column generation on the frame-aggregated master; the solver's prices follow its
    duals, and every round's exact subproblems give a certified bound."""

    def __init__(self, p: PlanningProblem) -> None:
        self.master = ColumnMaster(p, block=p.n_slots)
        self.rounds = 0

    def run(self, solver, seeds: list[Assignment], deadline: float | None) -> None:  # type: ignore[no-untyped-def]
        a = solver.p.arrays
        for plan in seeds:
            self.master.add(columns_of(a, plan.packets))
        best_lam, best_mu = solver.lam.copy(), solver.mu.copy()
        lam, mu = np.empty_like(best_lam), np.empty_like(best_mu)
        for _ in range(LEVEL_ROUNDS):
            if deadline is not None and time.perf_counter() > deadline:
                break
            self.rounds += 1
            _, duals = self.master.solve()
            self.master.prices(duals, lam, mu)
            solver.set_prices(lam, mu)
            bound = solver.dual_value()
            if bound > solver.best_bound:
                solver.best_bound = bound
                best_lam[:], best_mu[:] = solver.lam, solver.mu
            if not self.master.add(columns_of(a, solver.relaxed.packets), duals):
                break  # no column prices out: these levels are the best ones
        solver.set_prices(best_lam, best_mu)


class Pool:
    """Packets met along the way, for the final restricted MIP."""

    def __init__(self, p: PlanningProblem) -> None:
        self.p = p
        self.chunks: list[Columns] = []
        self.rows = 0

    def collect(self, packets) -> None:  # type: ignore[no-untyped-def]
        cols = columns_of(self.p.arrays, packets)
        self.chunks.append(cols)
        self.rows += len(cols.k)
        limit = POOL_MAX_ROWS * max(1, self.p.n_packets)
        while self.rows > limit and len(self.chunks) > 1:
            self.rows -= len(self.chunks.pop(0).k)

    def columns(self) -> Columns | None:
        """Every pooled column once."""
        return Columns.concat(self.chunks).distinct() if self.chunks else None


class Finisher:
    """Column generation on the exact master seeded with the pool, then its MIP."""

    def __init__(self, p: PlanningProblem, pool: Pool, incumbent: Assignment, lam, mu) -> None:  # type: ignore[no-untyped-def]
        self.p = p
        self.master = ColumnMaster(p, block=1)
        self.start = columns_of(p.arrays, incumbent.packets)
        self.master.add(self.start)
        per_packet = min(POOL_PER_PACKET, FINISH_MAX_COLUMNS // max(1, p.n_packets) - 1)
        pooled = pool.columns()
        if pooled is not None and per_packet > 0:
            self.master.add(_promising(p, pooled, lam, mu, per_packet))
        self.rounds = 0
        self.lp_value = float("nan")
        self.converged = False  # the bound reached the LP relaxation's

    def tighten(self, solver, deadline: float) -> None:  # type: ignore[no-untyped-def]
        """Raise ``solver.best_bound`` towards the LP bound until ``deadline``; leaves the
        solver's prices at the best ones found."""
        a = self.p.arrays
        center_lam, center_mu = solver.lam.copy(), solver.mu.copy()
        lam_m, mu_m = np.empty_like(center_lam), np.empty_like(center_mu)
        alpha = SMOOTHING
        while time.perf_counter() < deadline:
            self.rounds += 1
            self.lp_value, duals = self.master.solve(deadline - time.perf_counter())
            if self.lp_value - solver.best_bound <= 1e-9 * max(1.0, abs(self.lp_value)):
                self.converged = True  # the bound is the LP's: nothing left (False for NaN)
                break
            self.master.prices(duals, lam_m, mu_m)
            solver.set_prices(alpha * center_lam + (1 - alpha) * lam_m,
                            alpha * center_mu + (1 - alpha) * mu_m)  # fmt: skip
            bound = solver.dual_value()
            if bound > solver.best_bound:
                solver.best_bound = bound
                center_lam[:], center_mu[:] = solver.lam, solver.mu
                solver.finish_progress()
            if not self.master.add(columns_of(a, solver.relaxed.packets), duals):
                if alpha == 0.0:
                    # nothing prices out at the master's own duals: its LP is the LP
                    # relaxation's, and the bound just computed at those duals equals it
                    self.converged = not np.isnan(self.lp_value)
                    break
                alpha = 0.0  # the smoothed prices found nothing: price the duals themselves
        solver.set_prices(center_lam, center_mu)

    def best_plan(self, time_limit_s: float) -> Assignment | None:
        found = self.master.best_integer(time_limit_s, self.start)
        return None if found is None else _assignment(self.p, found[0])


def _promising(p: PlanningProblem, cols: Columns, lam, mu, per_packet: int) -> Columns:  # type: ignore[no-untyped-def]
    """Per transfer, the columns cheapest at the given prices, ``per_packet`` per packet."""
    ptr, keys, coefs = column_entries(
        p.arrays, cols.k, cols.r, cols.slots, 1, p.n_slots, p.n_resources
    )
    flat = np.concatenate([lam.ravel(), mu.ravel()])
    priced = np.add.reduceat(coefs * flat[keys], ptr[:-1]) if keys.size else np.zeros(len(cols.k))
    score = cols.cost + priced
    order = np.lexsort((score, cols.k))
    k_sorted = cols.k[order]
    rank = np.arange(len(order)) - np.searchsorted(k_sorted, k_sorted)
    return cols.take(order[rank < per_packet * p.tr_packets[k_sorted]])


def _assignment(p: PlanningProblem, cols: Columns) -> Assignment:
    out = Assignment.empty(p)
    filled = p.packet_ptr[:-1].copy()
    for j in np.argsort(cols.k, kind="stable"):
        k, r = int(cols.k[j]), int(cols.r[j])
        n_segs = int(p.route_seg_ptr[r + 1] - p.route_seg_ptr[r])
        row = filled[k]
        filled[k] += 1
        out.route[row] = r
        out.seg_slots[row, :n_segs] = cols.slots[j, :n_segs]
    return out
