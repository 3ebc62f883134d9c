"""Lagrangian relaxation of the trade coupling, solved by the subgradient method.

Coupling rows, one per (market, period): the pool framework has one market (sum of sells
= sum of buys), the bilateral one a market per directed peer link (what i sells to j =
what j buys from i). Each row's multiplier is the price on that market; every prosumer
solves its own problem at those prices (``Prosumer.respond``), and the sum of their optima
is a lower bound on the VPP's cost (``Lagrangian``).

Steps: ``steps.PolyakStep`` for the pool's operator, ``steps.PairStep`` for each pair.
The bilateral framework starts from the pool: the pool's optimum is below the bilateral
one (relays pay the fee again), so the pool's bound holds, and its prices and every
prosumer's quotes at them are the pairs' start (``solve_dayahead``). The bound is also
evaluated, at every repair, at the running mean of the prices (the mean of the
iterations since the last power of two), which damps their zig-zag.
Primal recovery and repair: ``repair``. Stop: gap <= ``tolerance`` (not in the bilateral
framework's pool phase, which runs ``POOL_PHASE`` iterations), the iteration limit, or
``STALL`` iterations that narrowed the gap by less than ``STALL_GAIN`` of the cost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from scheduler.dayahead.master import WarmMaster
from scheduler.dayahead.problem import Array, Problem
from scheduler.dayahead.prosumer import Prosumer, Schedule
from scheduler.dayahead.repair import (
    Markets,
    Repaired,
    link_prices,
    markets_of,
    repair,
    splits,
)
from scheduler.dayahead.steps import PairStep, PolyakStep
from scheduler.errors import SchedulerError

ITERATIONS = 300  # default iteration limit (ppr dayahead and ppr run --dayahead)
TOLERANCE = 1e-3  # stop when (cost - bound) / cost is at most this
REPAIR_EVERY = 10  # iterations between repairs, doubled (up to MAX) while they stall
MAX_REPAIR_EVERY = 80
STALL = 100  # stop when the gap at the last of this many iterations (split master:
STALL_GAIN = 1e-4  # SPLIT_REPAIR_EVERY) is narrower than at the first by less than this
# share of the cost
ASK_ROUNDS = 1  # rounds of quotes at the master's prices in each repair
FINAL_ROUNDS = 20  # and in the last one, at most: until the master's cost stops falling
SPLIT_REPAIR_EVERY = 50  # large bilateral VPPs (the split master): repairs this far apart
SPLIT_STALL_GAIN = 1e-3  # and stop after one that lowered the cost by less than 0.1 %
SPLIT_ROUNDS = 0  # and this many rounds of quotes in the last (its moves are not monotone)
POOL_PHASE = 120  # the bilateral framework's pool iterations: stopping at the pool's gap
# (61 at 300 x 96) left the pairs' master 2.1 % above the optimum, 120 left 0.2 %
Progress = Callable[[int, int, float, float], None]


class UncoveredError(SchedulerError):
    """A prosumer cannot cover its need even with every trade open to it."""

    def __init__(self, prosumer: int, period: int, kw: float) -> None:
        self.prosumer, self.period, self.kw = prosumer, period, kw
        super().__init__(f"prosumer {prosumer} short {kw:g} kW in period {period}")


class RepairError(SchedulerError):
    """No repair round balanced the quotes into a feasible schedule."""


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
    repaired: Repaired
    schedules: list[Schedule]  # per prosumer, as it settled (its own report)
    lower_bound: float
    prices: Array  # (markets, T): the prices of the best bound (pool: one row)
    history: list[Iterate] = field(default_factory=list)

    @property
    def total_cost(self) -> float:
        return self.repaired.cost

    @property
    def gap(self) -> float:
        return (self.total_cost - self.lower_bound) / max(abs(self.total_cost), 1e-9)


def _better(
    best: Repaired | None, cand: Repaired | None, agents: list[Prosumer]
) -> Repaired | None:
    """The cheaper schedule; the prosumers keep theirs when the candidate wins."""
    if cand is not None and (best is None or cand.cost < best.cost):
        for a in agents:
            a.keep()
        return cand
    return best


def _bound_at(
    lagrangian: Lagrangian, duals: Array, best_lb: float, best_price: Array
) -> tuple[float, Array]:
    """The bound at the prices the operator's master implies (column generation's
    Lagrangian bound), kept when it beats the subgradient's best."""
    price = link_prices(lagrangian.net, duals)
    lb, _ = lagrangian(price)
    return (lb, price) if lb > best_lb else (best_lb, best_price)


def start_prices(problem: Problem, count: int) -> Array:
    """Between the grid's sell price and its buy price net of the fee."""
    m = problem.market
    return np.tile((m.buy + m.sell - m.fee) / 2, (count, 1))


class Lagrangian:
    """The prosumers' responses at given prices: the bound and the imbalance."""

    def __init__(self, problem: Problem, framework: str) -> None:
        self.net: Markets = markets_of(problem, framework)
        self.agents = [
            Prosumer(own, self.net.sell_caps[i], self.net.buy_caps[i])
            for i, own in enumerate(problem.prosumers)
        ]
        self.h = problem.market.period_h

    def __call__(self, price: Array, explore: bool = False) -> tuple[float, Array]:
        """The Lagrangian at ``price`` and its subgradient: kWh bought - sold per market
        and period. ``explore``: the prosumers also quote at their links' mean prices."""
        net, h = self.net, self.h
        bound = 0.0
        g = np.zeros_like(price)
        for i, a in enumerate(self.agents):
            sell, buy = price[net.sells[i]], price[net.buys[i]]
            q = a.respond(sell, buy)
            if q.short > 1e-9:
                t = int(np.argmax(q.short_kw))
                raise UncoveredError(i, t, float(q.short_kw[t]))
            bound += q.value
            np.add.at(g, net.buys[i], h * q.b)
            np.subtract.at(g, net.sells[i], h * q.s)
            if explore:
                a.explore(sell, buy)
        return bound, g


def solve_dayahead(
    problem: Problem,
    framework: str = "pool",
    iterations: int = ITERATIONS,
    tolerance: float = TOLERANCE,
    progress: Progress | None = None,
    repair_every: int = REPAIR_EVERY,
    give_up: int | None = None,
) -> DayAheadResult:
    """``give_up``: raise ``RepairError`` after that many repairs without any feasible
    schedule (a file that cannot balance is then told early, ``check_balance``).

    Bilateral: two phases. The pool's first: its optimum is below the bilateral one, so
    its bound holds for the bilateral VPP, and its prices and every prosumer's quotes at
    them start the pairs (``Prosumer.recall``). It runs ``POOL_PHASE`` iterations (fewer
    if ``iterations`` is less, or if it stalls), not stopping when the pool's gap closes:
    the quotes it goes on collecting around the pool's prices are what the pairs' master
    mixes. Then each pair moves its own price, up to ``iterations``."""
    if framework != "bilateral":
        return _iterate(
            problem, Lagrangian(problem, framework), iterations, tolerance, progress,
            repair_every, give_up,
        )  # fmt: skip
    pairs = Lagrangian(problem, "bilateral")
    pairs(start_prices(problem, pairs.net.count))  # a prosumer no link can cover: told now
    pool = Lagrangian(problem, "pool")
    pool_iterations = min(iterations, POOL_PHASE)
    total = pool_iterations + iterations

    def pool_progress(it: int, _: int, lb: float, ub: float) -> None:
        if progress is not None:  # no bilateral schedule yet: the pool's is not one
            progress(it, total, lb, np.inf)

    first = _iterate(
        problem, pool, pool_iterations, -np.inf, pool_progress, repair_every, give_up
    )  # fmt: skip
    for mine, same in zip(pairs.agents, pool.agents, strict=True):
        mine.recall(same)
    head = [Iterate(it.iteration, it.lower_bound, np.inf) for it in first.history]

    def pair_progress(it: int, _: int, lb: float, ub: float) -> None:
        if progress is not None:  # the pool's phase is over: its unused iterations go
            progress(len(head) + it, len(head) + iterations, lb, ub)

    result = _iterate(
        problem, pairs, iterations, tolerance, pair_progress, repair_every, give_up,
        start=(np.tile(first.prices, (pairs.net.count, 1)), first.lower_bound),
    )  # fmt: skip
    result.history = head + [
        Iterate(len(head) + it.iteration, it.lower_bound, it.upper_bound) for it in result.history
    ]
    return result


def _stalled(history: list[Iterate], window: int, share: float) -> bool:
    if len(history) < window:
        return False
    now, then = history[-1], history[-window]
    gain = (then.upper_bound - now.upper_bound) + (now.lower_bound - then.lower_bound)
    return bool(gain < share * abs(now.upper_bound))  # inf - inf: nan, not stalled


def _iterate(
    problem: Problem,
    lagrangian: Lagrangian,
    iterations: int,
    tolerance: float,
    progress: Progress | None,
    repair_every: int,
    give_up: int | None,
    start: tuple[Array, float] | None = None,
) -> DayAheadResult:
    """The subgradient iterations and their repairs; ``start``: the prices to start from
    and a bound already known to hold."""
    m = problem.market
    framework = "pool" if lagrangian.net.hub is not None else "bilateral"
    agents, net = lagrangian.agents, lagrangian.net
    ask, final, window, stall_gain = ASK_ROUNDS, FINAL_ROUNDS, STALL, STALL_GAIN
    if framework == "bilateral" and splits(len(agents), m.periods):
        # the split master routes one LP per period: each repair and round costs more
        repair_every, ask, final = max(repair_every, SPLIT_REPAIR_EVERY), 0, SPLIT_ROUNDS
        window, stall_gain = SPLIT_REPAIR_EVERY, SPLIT_STALL_GAIN
    price = start_prices(problem, net.count) if start is None else start[0].copy()
    rule = PolyakStep() if framework == "pool" else PairStep(m.buy - m.sell, price.shape)
    best_lb, best_price = (-np.inf if start is None else start[1]), price.copy()
    mean, since = price.copy(), 1
    best: Repaired | None = None
    history: list[Iterate] = []
    due, interval = 1, repair_every
    failed = 0  # repairs in a row without a feasible schedule yet
    kept = WarmMaster()  # the operator's master, solved on from repair to repair
    if start is not None:  # the quotes recalled first, before new ones mix in
        repaired, duals = repair(agents, net, m, ask, kept)
        best = _better(best, repaired, agents)
        best_lb, best_price = _bound_at(lagrangian, duals, best_lb, best_price)
        due = repair_every
    last_repair = 0
    for it in range(1, iterations + 1):
        lb, g = lagrangian(price)
        if lb > best_lb:
            best_lb, best_price = lb, price.copy()
        if it & (it - 1) == 0:
            since = it
        mean += (price - mean) / (it - since + 1)
        if it == due:
            lb_mean, _ = lagrangian(mean, explore=True)
            if lb_mean > best_lb:
                best_lb, best_price = lb_mean, mean.copy()
            before = best.cost if best is not None else np.inf
            repaired, duals = repair(agents, net, m, ask, kept)
            best, last_repair = _better(best, repaired, agents), it
            failed = failed + 1 if best is None else 0
            if give_up is not None and failed >= give_up:
                raise RepairError(f"no repair balanced the quotes in {it} iterations")
            best_lb, best_price = _bound_at(lagrangian, duals, best_lb, best_price)
            # a repair that no longer lowers the cost by 0.1 %: the next comes twice as late
            gain = before - best.cost if best is not None else 0.0
            stalled = gain <= 1e-3 * abs(before) if np.isfinite(before) else best is not None
            interval = min(2 * interval, MAX_REPAIR_EVERY) if stalled else repair_every
            due = it + interval
        ub = best.cost if best is not None else np.inf
        history.append(Iterate(it, best_lb, ub))
        if progress is not None:
            progress(it, iterations, best_lb, ub)
        if history[-1].gap <= tolerance or _stalled(history, window, stall_gain):
            break
        price = rule.step(price, g, lb, ub)
    # the last repair asks the prosumers for quotes until the master stops improving
    # (unless it would repeat the one just made)
    if final > ask or last_repair != len(history):
        repaired, duals = repair(agents, net, m, final, kept)
        best = _better(best, repaired, agents)
        best_lb, best_price = _bound_at(lagrangian, duals, best_lb, best_price)
    if best is None:
        raise RepairError(
            f"the repair could not balance the quotes into a feasible schedule in "
            f"{len(history)} iterations"
        )
    last = history[-1]
    history[-1] = Iterate(last.iteration, best_lb, best.cost)
    if progress is not None:
        progress(last.iteration, iterations, best_lb, best.cost)
    return DayAheadResult(
        framework, best, [a.schedule() for a in agents], best_lb, best_price, history
    )
