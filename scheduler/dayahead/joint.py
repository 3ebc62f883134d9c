"""The centralised LP of the whole VPP: every prosumer's data in one model.

The decomposition never uses it for a schedule. It is the benchmark's reference
(``benchmarks/dayahead.py``) and the diagnosis of a file that cannot balance
(``shortfall``): the least unmet load over the whole VPP says which prosumer and period
no trade can rescue, which the error message then names.

Both frameworks: the pool balances sells and buys per period; the bilateral framework
has one trade variable per directed peer link and period.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scheduler.dayahead.lp import INF, LpBuilder, solve
from scheduler.dayahead.problem import Array, Problem


@dataclass(frozen=True)
class CentralOptimum:
    cost: float
    g_in: Array  # (N, T)
    g_out: Array
    c: Array
    d: Array
    e: Array  # (N, T + 1)
    s: Array  # (N, T)
    b: Array
    x: Array | None  # (links, T) in the bilateral framework
    pool_dual: Array | None  # (T,) the pool balance's price per kWh
    unmet: Array | None  # (N, T) kW of load left uncovered (``shortfall`` only)


def joint_lp(problem: Problem, bilateral: bool) -> CentralOptimum:
    """The optimum of the whole VPP's LP."""
    return _central(problem, bilateral, elastic=False)


def shortfall(problem: Problem, bilateral: bool) -> CentralOptimum:
    """The least total load left uncovered (kWh) when nothing else can cover it: 0 for a
    file that can balance."""
    return _central(problem, bilateral, elastic=True)


def _central(problem: Problem, bilateral: bool, elastic: bool) -> CentralOptimum:
    m = problem.market
    T, h, N = m.periods, m.period_h, len(problem.prosumers)
    lp = LpBuilder()
    # elastic: only uncovered load costs (1 per kWh), to find the least of it
    price = 0.0 if elastic else 1.0
    gi = np.empty((N, T), dtype=np.int64)
    go, c, d, s, b, un = (gi.copy() for _ in range(6))
    e = np.empty((N, T + 1), dtype=np.int64)
    for i, p in enumerate(problem.prosumers):
        kw = p.charge_kw
        gi[i] = lp.cols(price * h * m.buy, 0.0, p.grid_kw)
        go[i] = lp.cols(-price * h * m.sell, 0.0, p.grid_kw)
        c[i] = lp.cols(np.zeros(T), 0.0, kw)
        d[i] = lp.cols(np.zeros(T), 0.0, kw)
        lo = np.zeros(T + 1)
        lo[0] = lo[T] = p.e0
        hi = np.full(T + 1, p.battery_kwh)
        hi[0] = p.e0
        e[i] = lp.cols(np.zeros(T + 1), lo, hi)
        if elastic:
            un[i] = lp.cols(np.full(T, h), 0.0, INF)
        if not bilateral:
            s[i] = lp.cols(np.zeros(T), 0.0, p.sell_cap())
            b[i] = lp.cols(np.full(T, price * h * m.fee), 0.0, p.buy_cap())
    links = problem.links if bilateral else ()
    x = lp.cols(np.full(len(links) * T, price * h * m.fee), 0.0, INF).reshape(len(links), T)
    balance = lp.rows(0.0, INF, N * T).reshape(N, T)
    dynamics = lp.rows(0.0, 0.0, N * T).reshape(N, T)
    for i, p in enumerate(problem.prosumers):
        row = balance[i]
        lp.set_bounds(row, p.load - p.pv, np.full(T, INF))
        for col, sign in ((gi[i], 1.0), (d[i], 1.0), (go[i], -1.0), (c[i], -1.0)):
            lp.entries(row, col, sign)
        if elastic:
            lp.entries(row, un[i], 1.0)
        if not bilateral:
            lp.entries(row, b[i], 1.0)
            lp.entries(row, s[i], -1.0)
        eff = p.efficiency
        dyn = dynamics[i]
        lp.entries(dyn, e[i, 1:], 1.0)
        lp.entries(dyn, e[i, :T], -1.0)
        lp.entries(dyn, c[i], -eff * h)
        lp.entries(dyn, d[i], h / eff)
    for k, (a, z) in enumerate(links):
        lp.entries(balance[z], x[k], 1.0)
        lp.entries(balance[a], x[k], -1.0)
    pool = None
    if not bilateral:
        pool = lp.rows(0.0, 0.0, T)
        lp.entries(np.repeat(pool[None, :], N, axis=0), s, 1.0)
        lp.entries(np.repeat(pool[None, :], N, axis=0), b, -1.0)
    highs = lp.highs()
    v = solve(highs, "the centralised LP")
    if bilateral:
        xv = v[x]
        sv, bv = np.zeros((N, T)), np.zeros((N, T))
        for k, (a, z) in enumerate(links):
            sv[a] += xv[k]
            bv[z] += xv[k]
    else:
        xv, sv, bv = None, v[s], v[b]
    dual = None
    if pool is not None:
        # d(cost)/d(sells - buys) per kWh: the pool's price
        dual = np.asarray(highs.getSolution().row_dual)[pool] / h
    return CentralOptimum(
        cost=float(highs.getInfo().objective_function_value),
        g_in=v[gi],
        g_out=v[go],
        c=v[c],
        d=v[d],
        e=v[e],
        s=sv,
        b=bv,
        x=xv,
        pool_dual=dual,
        unmet=v[un] if elastic else None,
    )
