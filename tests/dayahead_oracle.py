"""An independent oracle for the day-ahead tests: the centralised LP of docs/dayahead.md
written out row by row here (not with scheduler.dayahead's builder), solved by HiGHS, and
an exact feasibility check of a reported schedule."""

from __future__ import annotations

import highspy
import numpy as np

from bench.dayahead import DayAhead


def central_optimum(day: DayAhead, bilateral: bool) -> float:
    m = day.dayahead
    T, h = m.periods, m.period_h
    inf = highspy.kHighsInf
    hs = highspy.Highs()
    hs.setOptionValue("output_flag", False)
    var: dict[tuple, int] = {}

    def add(key: tuple, cost: float, lo: float, hi: float) -> None:
        var[key] = len(var)
        hs.addVar(lo, hi)
        hs.changeColCost(var[key], cost)

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
                add(("s", p.id, t), 0, 0, inf)
                add(("b", p.id, t), h * m.p2p_fee, 0, inf)
        for t in range(T + 1):
            lo = e0 if t in (0, T) else 0.0
            add(("e", p.id, t), 0, lo, e0 if t == 0 else p.battery_kwh)
    for a, z in links:
        for t in range(T):
            add(("x", a, z, t), h * m.p2p_fee, 0, inf)

    def row(terms: list[tuple[tuple, float]], lo: float, hi: float) -> None:
        idx = np.array([var[k] for k, _ in terms], dtype=np.int32)
        val = np.array([v for _, v in terms], dtype=np.float64)
        hs.addRow(lo, hi, len(idx), idx, val)

    for p in day.prosumers:
        for t in range(T):
            terms = [(("gi", p.id, t), 1.0), (("d", p.id, t), 1.0)]
            terms += [(("go", p.id, t), -1.0), (("c", p.id, t), -1.0)]
            if bilateral:
                terms += [(("x", a, z, t), 1.0) for a, z in links if z == p.id]
                terms += [(("x", a, z, t), -1.0) for a, z in links if a == p.id]
            else:
                terms += [(("b", p.id, t), 1.0), (("s", p.id, t), -1.0)]
            row(terms, p.load_kw[t] - p.pv_kw[t], inf)
            eta = p.efficiency
            row(
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
        for t in range(T):
            row(
                [(("s", p.id, t), 1.0) for p in day.prosumers]
                + [(("b", p.id, t), -1.0) for p in day.prosumers],
                0,
                0,
            )
    hs.run()
    assert hs.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return float(hs.getInfo().objective_function_value)


def check_feasible(day: DayAhead, doc: dict, tol: float = 1e-6) -> float:
    """Assert every constraint of the model on a ``--json``-shaped result; its cost."""
    m = day.dayahead
    T, h = m.periods, m.period_h
    total = 0.0
    pool_s, pool_b = np.zeros(T), np.zeros(T)
    for p in day.prosumers:
        r = {
            k: np.asarray(v, dtype=float) for k, v in doc["prosumers"][p.id].items() if k != "cost"
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
    assert np.allclose(pool_s, pool_b, atol=tol * len(day.prosumers))
    return total
