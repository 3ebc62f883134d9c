"""The joint LP of the whole VPP: the centralised optimum (batteries free), and the
repair of a recovered primal (batteries fixed, so only grid and trades per period move).

Both frameworks: ``links is None`` is the pool (per-period balance of sells and buys);
otherwise one trade variable per directed peer link and period.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scheduler.dayahead.lp import INF, LpBuilder, solve
from scheduler.dayahead.problem import Array, Problem


@dataclass(frozen=True)
class JointSchedule:
    cost: float
    g_in: Array  # (N, T)
    g_out: Array
    c: Array
    d: Array
    e: Array  # (N, T + 1)
    s: Array  # (N, T)
    b: Array
    x: Array | None  # (links, T) in the bilateral framework
    pool_dual: Array | None  # (T,) price of the pool balance, per kWh


def joint_lp(
    problem: Problem,
    bilateral: bool,
    fixed_c: Array | None = None,
    fixed_d: Array | None = None,
) -> JointSchedule:
    m = problem.market
    T, h, N = m.periods, m.period_h, len(problem.prosumers)
    lp = LpBuilder()
    gi = np.empty((N, T), dtype=np.int64)
    go, c, d = gi.copy(), gi.copy(), gi.copy()
    e = np.empty((N, T + 1), dtype=np.int64)
    s, b = gi.copy(), gi.copy()
    for i, p in enumerate(problem.prosumers):
        kw, cap = p.charge_kw, p.battery_kwh
        for t in range(T):
            gi[i, t] = lp.col(h * m.buy[t], 0.0, p.grid_kw)
            go[i, t] = lp.col(-h * m.sell[t], 0.0, p.grid_kw)
            lo_c = hi_c = lo_d = hi_d = 0.0
            if fixed_c is None or fixed_d is None:
                hi_c = hi_d = kw
            else:
                lo_c = hi_c = float(fixed_c[i, t])
                lo_d = hi_d = float(fixed_d[i, t])
            c[i, t] = lp.col(0.0, lo_c, hi_c)
            d[i, t] = lp.col(0.0, lo_d, hi_d)
        e[i, 0] = lp.col(0.0, p.e0, p.e0)
        for t in range(1, T + 1):
            e[i, t] = lp.col(0.0, p.e0 if t == T else 0.0, cap)
        if not bilateral:
            for t in range(T):
                s[i, t] = lp.col(0.0, 0.0, p.sell_cap()[t])
                b[i, t] = lp.col(h * m.fee, 0.0, p.buy_cap()[t])
    links = problem.links if bilateral else ()
    x = np.empty((len(links), T), dtype=np.int64)
    for k in range(len(links)):
        for t in range(T):
            x[k, t] = lp.col(h * m.fee, 0.0, INF)
    outs: list[list[int]] = [[] for _ in range(N)]
    ins: list[list[int]] = [[] for _ in range(N)]
    for k, (a, z) in enumerate(links):
        outs[a].append(k)
        ins[z].append(k)
    for i, p in enumerate(problem.prosumers):
        for t in range(T):
            terms = [(gi[i, t], 1.0), (d[i, t], 1.0), (go[i, t], -1.0), (c[i, t], -1.0)]
            if bilateral:
                terms += [(x[k, t], 1.0) for k in ins[i]] + [(x[k, t], -1.0) for k in outs[i]]
            else:
                terms += [(b[i, t], 1.0), (s[i, t], -1.0)]
            lp.row(terms, p.load[t] - p.pv[t], INF)
            eff = p.efficiency
            lp.row(
                [(e[i, t + 1], 1.0), (e[i, t], -1.0), (c[i, t], -eff * h), (d[i, t], h / eff)],
                0.0,
                0.0,
            )
    pool_rows = []
    if not bilateral:
        for t in range(T):
            pool_rows.append(
                lp.row(
                    [(s[i, t], 1.0) for i in range(N)] + [(b[i, t], -1.0) for i in range(N)],
                    0.0,
                    0.0,
                )
            )
    highs = lp.highs()
    what = "the repair LP" if fixed_c is not None else "the centralised LP"
    v = solve(highs, what)
    if bilateral:
        xv = v[x]
        sv = np.zeros((N, T))
        bv = np.zeros((N, T))
        for k, (a, z) in enumerate(links):
            sv[a] += xv[k]
            bv[z] += xv[k]
    else:
        xv, sv, bv = None, v[s], v[b]
    dual = None
    if pool_rows:
        row_dual = np.asarray(highs.getSolution().row_dual)
        # d(cost)/d(sells - buys) per kWh: the pool's price
        dual = row_dual[pool_rows] / h
    return JointSchedule(
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
    )
