"""One prosumer's problem at given prices: the only place its private data is used.

Privacy is structural: ``ProsumerLP`` is built from the prosumer's own ``ProsumerData``
and afterwards receives only prices; it returns only its own schedule. The HiGHS model is
kept between calls and only the costs change, so each re-solve starts from the last basis.

Channels: the pool framework has one sell and one buy channel (the pool); the bilateral
framework one per peer link. Selling on channel k earns ``sell_price[k, t]``; buying pays
``buy_price[k, t] + p2p_fee``; both per kWh.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scheduler.dayahead.lp import INF, LpBuilder, solve
from scheduler.dayahead.problem import Array, ProsumerData


@dataclass(frozen=True)
class Schedule:
    value: float  # the subproblem's optimum, price terms included
    g_in: Array
    g_out: Array
    c: Array
    d: Array
    e: Array  # T + 1 values, the start included
    s: Array  # (sell channels, T)
    b: Array  # (buy channels, T)


class ProsumerLP:
    def __init__(self, own: ProsumerData, n_sell: int, n_buy: int) -> None:
        self._own = own
        self.n_sell, self.n_buy = n_sell, n_buy
        T, h = own.market.periods, own.market.period_h
        lp = LpBuilder()
        cap, kw, eff = own.battery_kwh, own.charge_kw, own.efficiency
        gi = [lp.col(h * own.market.buy[t], 0.0, own.grid_kw) for t in range(T)]
        go = [lp.col(-h * own.market.sell[t], 0.0, own.grid_kw) for t in range(T)]
        c = [lp.col(0.0, 0.0, kw) for _ in range(T)]
        d = [lp.col(0.0, 0.0, kw) for _ in range(T)]
        e = [lp.col(0.0, own.e0, own.e0)]
        e += [lp.col(0.0, 0.0, cap) for _ in range(T - 1)]
        e.append(lp.col(0.0, own.e0, cap))  # the day ends with at least the start's energy
        s_cap, b_cap = own.sell_cap(), own.buy_cap()
        s = [[lp.col(0.0, 0.0, s_cap[t]) for t in range(T)] for _ in range(n_sell)]
        b = [[lp.col(0.0, 0.0, b_cap[t]) for t in range(T)] for _ in range(n_buy)]
        for t in range(T):
            terms = [(gi[t], 1.0), (d[t], 1.0), (go[t], -1.0), (c[t], -1.0)]
            terms += [(b[k][t], 1.0) for k in range(n_buy)]
            terms += [(s[k][t], -1.0) for k in range(n_sell)]
            lp.row(terms, own.load[t] - own.pv[t], INF)
            lp.row([(e[t + 1], 1.0), (e[t], -1.0), (c[t], -eff * h), (d[t], h / eff)], 0.0, 0.0)
            if n_sell > 1:
                lp.row([(s[k][t], 1.0) for k in range(n_sell)], 0.0, s_cap[t])
            if n_buy > 1:
                lp.row([(b[k][t], 1.0) for k in range(n_buy)], 0.0, b_cap[t])
        self._s0 = 5 * T + 1
        self._b0 = self._s0 + n_sell * T
        self._base_cost = np.asarray(lp.cost)
        self.highs = lp.highs(solver="simplex")

    def solve(self, sell_price: Array, buy_price: Array) -> Schedule:
        """The prosumer's best schedule when channel prices are ``sell_price`` (n_sell, T)
        and ``buy_price`` (n_buy, T)."""
        own, T, h = self._own, self._own.market.periods, self._own.market.period_h
        cost = self._base_cost.copy()
        cost[self._s0 : self._b0] = -h * np.asarray(sell_price).ravel()
        cost[self._b0 :] = h * (np.asarray(buy_price).ravel() + own.market.fee)
        n = len(cost)
        self.highs.changeColsCost(n, np.arange(n, dtype=np.int32), cost)
        x = solve(self.highs, f"prosumer {own.id}")
        return Schedule(
            value=float(cost @ x),
            g_in=x[0:T],
            g_out=x[T : 2 * T],
            c=x[2 * T : 3 * T],
            d=x[3 * T : 4 * T],
            e=x[4 * T : 5 * T + 1],
            s=x[self._s0 : self._b0].reshape(self.n_sell, T),
            b=x[self._b0 :].reshape(self.n_buy, T),
        )


def solve_prosumer(own: ProsumerData, sell_price: Array, buy_price: Array) -> Schedule:
    """One-shot form of ``ProsumerLP``: own data and prices in, own schedule out."""
    sell_price, buy_price = np.atleast_2d(sell_price), np.atleast_2d(buy_price)
    return ProsumerLP(own, len(sell_price), len(buy_price)).solve(sell_price, buy_price)
