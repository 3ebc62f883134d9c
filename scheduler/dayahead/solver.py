"""Lagrangian relaxation of the trade coupling, solved by the subgradient method.

Coupling rows, one per (link, period): the pool framework has one link (sum of sells =
sum of buys), the bilateral one a link per directed peer pair (what i sells to j = what j
buys from i). Each row's multiplier is the price on that link; every prosumer solves its
own ``ProsumerLP`` at those prices, and the sum of their optima is a lower bound.

Step: Polyak's, (best upper bound - bound) / |g|^2 times theta, theta halved when the
bound stalls. Primal recovery: the step-weighted (ergodic) average of the batteries, then
``joint_lp`` with the batteries fixed repairs grid and trades into an exactly feasible
schedule, whose cost is the upper bound.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from scheduler.dayahead.joint import JointSchedule, joint_lp
from scheduler.dayahead.problem import Array, Problem
from scheduler.dayahead.subproblem import ProsumerLP

THETA = 2.0  # Polyak's step factor at the start
DEFLECT = 0.0  # share of the last direction kept
STALL = 20  # iterations without a better bound before the step shrinks
Progress = Callable[[int, int, float, float], None]


@dataclass(frozen=True)
class Iterate:
    iteration: int
    lower_bound: float
    upper_bound: float

    @property
    def gap(self) -> float:
        return (self.upper_bound - self.lower_bound) / max(abs(self.upper_bound), 1e-9)


@dataclass
class DayAheadResult:
    framework: str
    schedule: JointSchedule
    lower_bound: float
    prices: Array  # (links, T): link prices at the best bound (pool: one row)
    history: list[Iterate] = field(default_factory=list)

    @property
    def total_cost(self) -> float:
        return self.schedule.cost

    @property
    def gap(self) -> float:
        return (self.total_cost - self.lower_bound) / max(abs(self.total_cost), 1e-9)


def solve_dayahead(
    problem: Problem,
    framework: str = "pool",
    iterations: int = 200,
    tolerance: float = 1e-3,
    repair_every: int = 10,
    progress: Progress | None = None,
) -> DayAheadResult:
    bilateral = framework == "bilateral"
    m, N = problem.market, len(problem.prosumers)
    T, h = m.periods, m.period_h
    if bilateral:
        n_links = len(problem.links)
        sells: list[list[int]] = [[] for _ in range(N)]
        buys: list[list[int]] = [[] for _ in range(N)]
        for k, (a, z) in enumerate(problem.links):
            sells[a].append(k)
            buys[z].append(k)
    else:
        n_links = 1
        sells = buys = [[0] for _ in range(N)]
    subs = [ProsumerLP(p, len(sells[i]), len(buys[i])) for i, p in enumerate(problem.prosumers)]
    # start between the grid's sell price and buy price net of the fee
    price = np.tile((m.buy + m.sell - m.fee) / 2, (n_links, 1))
    best_lb, best_price = -np.inf, price.copy()
    best: JointSchedule | None = None
    theta, stall = THETA, 0
    direction = np.zeros((n_links, T))
    weight = 0.0
    avg_c, avg_d = np.zeros((N, T)), np.zeros((N, T))
    history: list[Iterate] = []
    for it in range(1, iterations + 1):
        lb = 0.0
        g = np.zeros((n_links, T))
        cs, ds = np.zeros((N, T)), np.zeros((N, T))
        for i, sub in enumerate(subs):
            # each prosumer sees the prices of its own links, nothing else
            r = sub.solve(price[sells[i]], price[buys[i]])
            lb += r.value
            cs[i], ds[i] = r.c, r.d
            np.add.at(g, buys[i], h * r.b)
            np.subtract.at(g, sells[i], h * r.s)
        if lb > best_lb + 1e-9 * max(1.0, abs(lb)):
            best_lb, best_price, stall = lb, price.copy(), 0
        else:
            stall += 1
            if stall >= STALL:
                theta, stall = theta / 2, 0
        if best is None:
            best = joint_lp(problem, bilateral, cs, ds)
        ub = best.cost
        # deflected subgradient (Camerini-Fratta-Maffioli): part of the last direction
        # is kept, which damps the zig-zag between links that trade in turn
        zero = float(np.sum(g * g)) == 0.0
        direction = g + DEFLECT * direction
        norm = float(np.sum(direction * direction))
        step = theta * max(ub - lb, 1e-9 * abs(ub)) / norm if norm > 0 else 0.0
        if it & (it - 1) == 0:  # restart the average at powers of two: it covers the
            weight = 0.0  # latest half of the iterations, not the poor early ones
        w = 1.0
        weight += w
        avg_c += w * (cs - avg_c) / weight
        avg_d += w * (ds - avg_d) / weight
        if it % repair_every == 0 or it == iterations:
            cand = joint_lp(problem, bilateral, avg_c, avg_d)
            if cand.cost < best.cost:
                best = cand
        history.append(Iterate(it, best_lb, best.cost))
        if progress is not None:
            progress(it, iterations, best_lb, best.cost)
        if history[-1].gap <= tolerance or zero:
            break
        price = price + step * direction
    assert best is not None
    return DayAheadResult(framework, best, best_lb, best_price, history)
