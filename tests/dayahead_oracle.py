"""An independent oracle for the day-ahead tests: the centralised LP of docs/dayahead.md
written out row by row here (not with scheduler.dayahead's builders), solved by HiGHS;
one prosumer's LP at given channel prices, the same way; and an exact check of a
reported schedule, constraint by constraint."""

from __future__ import annotations

import highspy
import numpy as np

from bench.dayahead import DayAhead

INF = highspy.kHighsInf


class _Lp:
    def __init__(self) -> None:
        self.hs = highspy.Highs()
        self.hs.setOptionValue("output_flag", False)
        self.var: dict[tuple, int] = {}

    def add(self, key: tuple, cost: float, lo: float, hi: float) -> None:
        self.var[key] = len(self.var)
        self.hs.addVar(lo, hi)
        self.hs.changeColCost(self.var[key], cost)

    def row(self, terms: list[tuple[tuple, float]], lo: float, hi: float) -> int:
        idx = np.array([self.var[k] for k, _ in terms], dtype=np.int32)
        val = np.array([v for _, v in terms], dtype=np.float64)
        self.hs.addRow(lo, hi, len(idx), idx, val)
        return self.hs.getNumRow() - 1

    def solve(self) -> float:
        self.hs.run()
        assert self.hs.getModelStatus() == highspy.HighsModelStatus.kOptimal
        return float(self.hs.getInfo().objective_function_value)


def _central(day: DayAhead, bilateral: bool, pool_shift: np.ndarray | None = None) -> float:
    """The optimum; ``pool_shift[t]``: the pool must sell that many kW more than it buys."""
    m = day.dayahead
    T, h = m.periods, m.period_h
    lp = _Lp()
    add = lp.add
    links = day.links() if bilateral else []
    for p in day.prosumers:
        kw = p.battery_kw if p.battery_kwh > 0 else 0.0
        e0 = p.soc0 * p.battery_kwh
        for t in range(T):
            add(("gi", p.id, t), h * m.grid_buy_price[t], 0, p.grid_kw)
            add(("go", p.id, t), -h * m.grid_sell_price[t], 0, p.grid_kw)
            add(("c", p.id, t), 0, 0, kw)
            add(("d", p.id, t), 0, 0, kw)
            if not bilateral:
                add(("s", p.id, t), 0, 0, INF)
                add(("b", p.id, t), h * m.p2p_fee, 0, INF)
        for t in range(T + 1):
            lo = e0 if t in (0, T) else 0.0
            add(("e", p.id, t), 0, lo, e0 if t == 0 else p.battery_kwh)
    for a, z in links:
        for t in range(T):
            add(("x", a, z, t), h * m.p2p_fee, 0, INF)
    for p in day.prosumers:
        for t in range(T):
            terms = [(("gi", p.id, t), 1.0), (("d", p.id, t), 1.0)]
            terms += [(("go", p.id, t), -1.0), (("c", p.id, t), -1.0)]
            if bilateral:
                terms += [(("x", a, z, t), 1.0) for a, z in links if z == p.id]
                terms += [(("x", a, z, t), -1.0) for a, z in links if a == p.id]
            else:
                terms += [(("b", p.id, t), 1.0), (("s", p.id, t), -1.0)]
            lp.row(terms, p.load_kw[t] - p.pv_kw[t], INF)
            eta = p.efficiency
            lp.row(
                [
                    (("e", p.id, t + 1), 1.0),
                    (("e", p.id, t), -1.0),
                    (("c", p.id, t), -eta * h),
                    (("d", p.id, t), h / eta),
                ],
                0,
                0,
            )
    if not bilateral:
        shift = np.zeros(T) if pool_shift is None else pool_shift
        for t in range(T):
            lp.row(
                [(("s", p.id, t), 1.0) for p in day.prosumers]
                + [(("b", p.id, t), -1.0) for p in day.prosumers],
                float(shift[t]),
                float(shift[t]),
            )
    return lp.solve()


def central_optimum(day: DayAhead, bilateral: bool) -> float:
    return _central(day, bilateral)


def pool_price_range(day: DayAhead, delta: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """Per period, the range of the pool's optimal prices (per kWh): the optimum's slopes
    when the pool must take ``delta`` kW less or more than it gives. Where the two agree
    the price is unique."""
    m = day.dayahead
    T, h = m.periods, m.period_h
    base = _central(day, bilateral=False)
    lo, hi = np.zeros(T), np.zeros(T)
    for t in range(T):
        shift = np.zeros(T)
        shift[t] = delta  # sells exceed buys: someone sells delta more to nobody
        up = _central(day, False, shift)
        shift[t] = -delta
        down = _central(day, False, shift)
        # a kWh more bought than sold in the pool saves what the price says
        lo[t] = (base - down) / (delta * h)
        hi[t] = (up - base) / (delta * h)
    return np.minimum(lo, hi), np.maximum(lo, hi)


def prosumer_optimum(
    y0: np.ndarray,
    price: np.ndarray,
    cap: np.ndarray,
    source: np.ndarray,
    h: float,
    eta: float,
    e_cap: float,
    kw: float,
    e0: float,
) -> float:
    """One prosumer's LP: channels (price, cap per period; ``source`` buys energy in,
    else sells it out), battery, balance sources - sinks >= y0 + c - d."""
    T, C = len(y0), len(source)
    lp = _Lp()
    for t in range(T):
        for k in range(C):
            sign = 1.0 if source[k] else -1.0
            lp.add(("q", k, t), h * sign * price[k, t], 0, cap[k, t])
        lp.add(("c", t), 0, 0, kw)
        lp.add(("d", t), 0, 0, kw)
    for t in range(T + 1):
        lp.add(("e", t), 0, e0 if t in (0, T) else 0, e0 if t == 0 else e_cap)
    for t in range(T):
        terms = [(("q", k, t), 1.0 if source[k] else -1.0) for k in range(C)]
        terms += [(("c", t), -1.0), (("d", t), 1.0)]
        lp.row(terms, float(y0[t]), INF)
        lp.row(
            [(("e", t + 1), 1.0), (("e", t), -1.0), (("c", t), -eta * h), (("d", t), h / eta)],
            0,
            0,
        )
    return lp.solve()


def check_feasible(day: DayAhead, doc: dict, tol: float = 1e-6) -> float:
    """Assert every constraint of the model on a ``--json``-shaped result, the coupling
    of its framework included; its cost."""
    m = day.dayahead
    T, h = m.periods, m.period_h
    total = 0.0
    pool_s, pool_b = np.zeros(T), np.zeros(T)
    for p in day.prosumers:
        r = {
            k: np.asarray(v, dtype=float)
            for k, v in doc["prosumers"][p.id].items()
            if k in ("g_in", "g_out", "c", "d", "e", "s", "b")
        }
        kw = p.battery_kw if p.battery_kwh > 0 else 0.0
        for key in ("g_in", "g_out", "c", "d", "s", "b"):
            assert len(r[key]) == T and (r[key] >= -tol).all(), (p.id, key)
        assert (r["g_in"] <= p.grid_kw + tol).all() and (r["g_out"] <= p.grid_kw + tol).all()
        assert (r["c"] <= kw + tol).all() and (r["d"] <= kw + tol).all()
        e = r["e"]
        assert len(e) == T + 1 and abs(e[0] - p.soc0 * p.battery_kwh) <= tol
        assert (e >= -tol).all() and (e <= p.battery_kwh + tol).all() and e[T] >= e[0] - tol
        for t in range(T):
            step = (p.efficiency * r["c"][t] - r["d"][t] / p.efficiency) * h
            assert abs(e[t + 1] - e[t] - step) <= tol, (p.id, t)
            supply = p.pv_kw[t] + r["d"][t] + r["g_in"][t] + r["b"][t]
            use = p.load_kw[t] + r["c"][t] + r["g_out"][t] + r["s"][t]
            assert supply >= use - tol, (p.id, t, supply, use)
        pool_s += r["s"]
        pool_b += r["b"]
        total += h * float(
            np.dot(m.grid_buy_price, r["g_in"])
            - np.dot(m.grid_sell_price, r["g_out"])
            + m.p2p_fee * r["b"].sum()
        )
    if doc["framework"] == "pool":
        assert np.allclose(pool_s, pool_b, atol=tol * len(day.prosumers))
    else:
        # every sell and buy is a trade along a peer link, and the pair agrees on it
        links = set(day.links())
        sold = {p.id: np.zeros(T) for p in day.prosumers}
        bought = {p.id: np.zeros(T) for p in day.prosumers}
        for trade in doc["trades"]:
            assert (trade["from"], trade["to"]) in links, trade
            kw = np.asarray(trade["kw"])
            assert (kw >= -tol).all()
            sold[trade["from"]] += kw
            bought[trade["to"]] += kw
        for p in day.prosumers:
            assert np.allclose(doc["prosumers"][p.id]["s"], sold[p.id], atol=tol), p.id
            assert np.allclose(doc["prosumers"][p.id]["b"], bought[p.id], atol=tol), p.id
    return total
