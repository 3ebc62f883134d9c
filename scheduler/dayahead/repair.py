"""Primal recovery and repair without a central model of the prosumers.

The subgradient's responses are vertices and rarely balance. The repair builds an exactly
feasible schedule from them in steps, with only quotes, trade quantities and costs
crossing between the prosumers and the operator (docs/dayahead.md, "Primal recovery and
repair"):

1. the operator mixes each prosumer's remembered quotes at least cost so that the trades
   balance (``master.restricted_master``; above ``SPLIT_ABOVE`` balance rows the bilateral
   master is split, ``master.split_master``);
2. it asks every prosumer for a quote at the master's row prices and mixes again, for
   ``rounds`` rounds or until the master's cost stops falling (column generation);
3. each prosumer takes its mix and tells its floor (the least net purchase per period its
   mixed battery schedule can live with); the operator balances the mixed trades
   (``balance``: the pool's long side is cut, the bilateral trades are the master's
   flows) and moves them where a floor is broken (the least change in kW);
4. each prosumer settles: it re-solves its own problem with its trades fixed (grid and
   battery free). Meeting its floor guarantees it can; if a prosumer still cannot (the
   floors could not all be met), it settles with the least shortfall, tells the floor of
   its new battery schedule and the balance and settlement repeat.

The reported cost is the sum of the settled costs: an exactly feasible schedule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scheduler.dayahead.balance import elastic_balance, pool_arcs, pool_balance
from scheduler.dayahead.master import Mix, WarmMaster, restricted_master, split_master
from scheduler.dayahead.problem import Array, MarketTerms, Problem
from scheduler.dayahead.prosumer import Prosumer

ROUNDS = 8  # settle-and-rebalance rounds before the repair gives up
FLAT_ROUNDS = 3  # rounds of quotes in a row that do not lower the master's cost: stop
_TOL = 1e-9


@dataclass(frozen=True)
class Markets:
    """Who trades on which price row, and the trades as arcs for the operator."""

    count: int  # price rows: 1 for the pool, one per directed link
    sells: list[list[int]]  # per prosumer: rows it sells on
    buys: list[list[int]]
    sell_caps: list[Array]  # per prosumer: (sells, T) caps of its sell channels
    buy_caps: list[Array]
    arcs: list[tuple[int, int]]
    hub: int | None  # the pool's node among the arcs' ends
    sell_arcs: list[list[int]]  # per prosumer: the arc of each sell channel
    buy_arcs: list[list[int]]


@dataclass(frozen=True)
class Repaired:
    cost: float
    x: Array  # (arcs, T) kW on every arc


def markets_of(problem: Problem, framework: str) -> Markets:
    N = len(problem.prosumers)
    if framework == "pool":
        return Markets(
            count=1,
            sells=[[0] for _ in range(N)],
            buys=[[0] for _ in range(N)],
            sell_caps=[p.sell_cap()[None, :] for p in problem.prosumers],
            buy_caps=[p.buy_cap()[None, :] for p in problem.prosumers],
            arcs=pool_arcs(N),
            hub=N,
            sell_arcs=[[i] for i in range(N)],
            buy_arcs=[[N + i] for i in range(N)],
        )
    outs: list[list[int]] = [[] for _ in range(N)]
    ins: list[list[int]] = [[] for _ in range(N)]
    for k, (a, z) in enumerate(problem.links):
        outs[a].append(k)
        ins[z].append(k)
    cap = problem.link_cap()
    return Markets(
        count=len(problem.links),
        sells=outs,
        buys=ins,
        sell_caps=[np.tile(cap, (len(o), 1)) for o in outs],
        buy_caps=[np.tile(cap, (len(i), 1)) for i in ins],
        arcs=list(problem.links),
        hub=None,
        sell_arcs=outs,
        buy_arcs=ins,
    )


def repair(
    agents: list[Prosumer],
    net: Markets,
    market: MarketTerms,
    rounds: int = 0,
    kept: WarmMaster | None = None,
) -> tuple[Repaired | None, Array]:
    """An exactly feasible schedule from the prosumers' quotes (each prosumer keeps its
    settled schedule), or None when the rounds could not balance it; and the prices of
    the last master's rows (pool (1, T), bilateral per prosumer (N, T)). ``kept``: the
    operator's master of the last repair, solved on from its basis."""
    N = len(agents)
    links = None if net.hub is not None else net.arcs
    floor = np.empty((N, market.periods))
    mix = _master(market, agents, links, kept)
    flat = 0
    for _ in range(rounds):
        # the master's row prices: a quote at them is a column that may lower its cost
        fresh = False
        for i, a in enumerate(agents):
            sell, buy = _asked(mix, i, market.fee, links is not None)
            a.respond(np.tile(sell, (a.n_sell, 1)), np.tile(buy, (a.n_buy, 1)))
            fresh = fresh or a.fresh
        if not fresh:
            break  # no new column: the master cannot change
        nxt = _master(market, agents, links, kept)
        # a degenerate master may stay flat for a round or two before it falls again
        flat = flat + 1 if nxt.cost >= mix.cost - 1e-5 * abs(mix.cost) else 0
        mix = nxt
        if flat >= FLAT_ROUNDS:
            break
    for i, a in enumerate(agents):
        a.combine(mix.weights[i])
        floor[i] = a.floor()
    if mix.flows is None:
        n = pool_balance(mix.net, floor)
        x = np.concatenate([np.maximum(-n, 0.0), np.maximum(n, 0.0)])
    else:
        x = mix.flows
    return _settle(agents, net, x, floor), mix.prices


def link_prices(net: Markets, prices: Array) -> Array:
    """Prices on the Lagrangian's rows from the master's row prices: the pool's, or on
    each link its seller's node price (what a kWh more costs where it is sold)."""
    if net.hub is not None:
        return prices.copy()
    return prices[[a for a, _ in net.arcs]]


def _asked(mix: Mix, i: int, fee: float, bilateral: bool) -> tuple[Array, Array]:
    """The sell and buy prices (before the fee) prosumer i is asked to quote at: the
    pool's price, or its node's price with its buys paying the fee on top."""
    if bilateral:
        return mix.prices[i], mix.prices[i] - fee
    return mix.prices[0], mix.prices[0]


def _settle(agents: list[Prosumer], net: Markets, x: Array, floor: Array) -> Repaired | None:
    """Balance the trades to the floors and let every prosumer settle; rounds."""
    for _ in range(ROUNDS):
        x, _ = elastic_balance(net.arcs, x, floor, net.hub)
        cost = 0.0
        short = False
        for i, a in enumerate(agents):
            settled = a.settle(x[net.sell_arcs[i]], x[net.buy_arcs[i]])
            cost += settled.cost
            short = short or float(settled.short.max(initial=0.0)) > _TOL
            floor[i] = a.floor()
        if not short:
            return Repaired(cost, x)
    return None


SPLIT_ABOVE = 5_000  # balance rows (prosumers x periods) above which the bilateral
# master is split (``master.split_master``): one LP of 4,800 rows (50 x 96) took 3-23 s
# on the benchmark's machine, and a solve needs 30-40 of them


def splits(prosumers: int, periods: int) -> bool:
    """Whether a bilateral VPP this large gets the split master."""
    return prosumers * periods > SPLIT_ABOVE


def _master(
    market: MarketTerms, agents: list[Prosumer], links: list | None, kept: WarmMaster | None
) -> Mix:
    columns = [a.columns() for a in agents]
    if links is not None and splits(len(agents), market.periods):
        mix = split_master(market, columns, links, kept)
    else:
        mix = restricted_master(market, columns, links, kept)
    for a, w in zip(agents, mix.weights, strict=True):
        a.used(w)
    return mix
