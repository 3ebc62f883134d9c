"""A day-ahead result as the ``ppr dayahead --json`` document, and its pairwise trades.

Pool trades are split between sellers and buyers pro rata (the pool itself does not
say who supplies whom; the bench needs pairs to make transfers)."""

from __future__ import annotations

from typing import Any

import numpy as np

from scheduler.dayahead.problem import Array, Problem
from scheduler.dayahead.solver import DayAheadResult

_DUST = 1e-9  # kW below this is solver round-off, not a trade


def sells_buys(result: DayAheadResult) -> tuple[Array, Array]:
    """Each prosumer's total sells and buys (N, T)."""
    s = np.stack([sch.s.sum(axis=0) for sch in result.schedules])
    b = np.stack([sch.b.sum(axis=0) for sch in result.schedules])
    return s, b


def pair_trades(problem: Problem, result: DayAheadResult) -> list[tuple[int, int, Array]]:
    """(seller, buyer, kW per period) for every pair that trades at all."""
    out: list[tuple[int, int, Array]] = []
    x = result.repaired.x
    if result.framework == "bilateral":
        for k, (a, z) in enumerate(problem.links):
            if x[k].max(initial=0.0) > _DUST:
                out.append((a, z, x[k]))
        return out
    s, b = sells_buys(result)
    total = s.sum(axis=0)
    share = np.divide(b, total, out=np.zeros_like(b), where=total > _DUST)
    for a in range(len(problem.prosumers)):
        for z in range(len(problem.prosumers)):
            kw = s[a] * share[z]
            if a != z and kw.max(initial=0.0) > _DUST:
                out.append((a, z, kw))
    return out


def prosumer_costs(problem: Problem, result: DayAheadResult) -> tuple[Array, Array]:
    """Model cost (grid and fee) and what each pays net of its trades at the prices."""
    h = problem.market.period_h
    model = np.array([sch.cost for sch in result.schedules])
    money = np.zeros(len(problem.prosumers))
    link = {pair: k for k, pair in enumerate(problem.links)}
    for a, z, kw in pair_trades(problem, result):
        price = result.prices[0] if result.framework == "pool" else result.prices[link[a, z]]
        money[z] += h * float(price @ kw)
        money[a] -= h * float(price @ kw)
    return model, model + money


def _num(v: float) -> float | None:
    return None if not np.isfinite(v) else float(v)


def to_json(problem: Problem, result: DayAheadResult, grid_alone: Array) -> dict[str, Any]:
    """``grid_alone``: each prosumer's cost trading with the grid alone (NaN: it cannot
    cover its load alone, shown as null)."""
    model, paid = prosumer_costs(problem, result)
    s, b = sells_buys(result)
    pros: dict[str, Any] = {}
    for i, (p, sch) in enumerate(zip(problem.prosumers, result.schedules, strict=True)):
        pros[p.id] = {
            "cost": float(model[i]),
            "paid": float(paid[i]),
            "grid_alone": _num(grid_alone[i]),
            "g_in": [float(v) for v in sch.g_in],
            "g_out": [float(v) for v in sch.g_out],
            "c": [float(v) for v in sch.c],
            "d": [float(v) for v in sch.d],
            "e": [float(v) for v in sch.e],
            "s": [float(v) for v in s[i]],
            "b": [float(v) for v in b[i]],
        }
    ids = problem.ids
    if result.framework == "pool":
        prices: Any = [float(v) for v in result.prices[0]]
    else:
        prices = {
            f"{ids[a]}->{ids[z]}": [float(v) for v in result.prices[k]]
            for k, (a, z) in enumerate(problem.links)
        }
    alone = float(np.sum(grid_alone)) if np.isfinite(grid_alone).all() else None
    return {
        "name": problem.name,
        "framework": result.framework,
        "total_cost": result.total_cost,
        "grid_alone_cost": alone,
        "lower_bound": result.lower_bound,
        "gap": result.gap,
        "iterations": len(result.history),
        "history": [[_num(it.lower_bound), _num(it.upper_bound)] for it in result.history],
        "prices": prices,
        "prosumers": pros,
        "trades": [
            {"from": ids[a], "to": ids[z], "kw": [float(v) for v in kw]}
            for a, z, kw in pair_trades(problem, result)
        ],
    }
