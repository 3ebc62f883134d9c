"""A day-ahead result as the ``ppr dayahead --json`` document, and its pairwise trades.

Pool trades are split between sellers and buyers pro rata (the pool itself does not
say who supplies whom; the bench needs pairs to make transfers)."""

from __future__ import annotations

from typing import Any

import numpy as np

from scheduler.dayahead.problem import Array, Problem
from scheduler.dayahead.solver import DayAheadResult

_DUST = 1e-9  # kW below this is solver round-off, not a trade


def pair_trades(problem: Problem, result: DayAheadResult) -> list[tuple[int, int, Array]]:
    """(seller, buyer, kW per period) for every pair that trades at all."""
    sch = result.schedule
    out: list[tuple[int, int, Array]] = []
    if sch.x is not None:
        for k, (a, z) in enumerate(problem.links):
            if sch.x[k].max(initial=0.0) > _DUST:
                out.append((a, z, sch.x[k]))
        return out
    total = sch.s.sum(axis=0)
    share = np.divide(sch.b, total, out=np.zeros_like(sch.b), where=total > _DUST)
    for a in range(len(problem.prosumers)):
        for z in range(len(problem.prosumers)):
            kw = sch.s[a] * share[z]
            if a != z and kw.max(initial=0.0) > _DUST:
                out.append((a, z, kw))
    return out


def prosumer_costs(problem: Problem, result: DayAheadResult) -> tuple[Array, Array]:
    """Model cost (grid and fee) and what each pays net of its trades at the prices."""
    m, sch = problem.market, result.schedule
    h = m.period_h
    model = h * (sch.g_in @ m.buy - sch.g_out @ m.sell + m.fee * sch.b.sum(axis=1))
    money = np.zeros(len(problem.prosumers))
    for a, z, kw in pair_trades(problem, result):
        price = _link_price(problem, result, a, z)
        money[z] += h * float(price @ kw)
        money[a] -= h * float(price @ kw)
    return model, model + money


def _link_price(problem: Problem, result: DayAheadResult, a: int, z: int) -> Array:
    if result.schedule.x is None:
        return result.prices[0]
    return result.prices[problem.links.index((a, z))]


def to_json(problem: Problem, result: DayAheadResult, grid_alone: Array) -> dict[str, Any]:
    sch = result.schedule
    model, paid = prosumer_costs(problem, result)
    pros: dict[str, Any] = {}
    for i, p in enumerate(problem.prosumers):
        pros[p.id] = {
            "cost": float(model[i]),
            "paid": float(paid[i]),
            "grid_alone": float(grid_alone[i]),
            **{
                key: [float(v) for v in getattr(sch, key)[i]]
                for key in ("g_in", "g_out", "c", "d", "e", "s", "b")
            },
        }
    ids = problem.ids
    if sch.x is None:
        prices: Any = [float(v) for v in result.prices[0]]
    else:
        prices = {
            f"{ids[a]}->{ids[z]}": [float(v) for v in result.prices[k]]
            for k, (a, z) in enumerate(problem.links)
        }
    return {
        "name": problem.name,
        "framework": result.framework,
        "total_cost": result.total_cost,
        "grid_alone_cost": float(grid_alone.sum()),
        "lower_bound": result.lower_bound,
        "gap": result.gap,
        "iterations": len(result.history),
        "history": [[it.lower_bound, it.upper_bound] for it in result.history],
        "prices": prices,
        "prosumers": pros,
        "trades": [
            {"from": ids[a], "to": ids[z], "kw": [float(v) for v in kw]}
            for a, z, kw in pair_trades(problem, result)
        ],
    }
