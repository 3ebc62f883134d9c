"""Trades into the planner's transfers.

One transfer per (seller, buyer, route): the market packet's voltage and current, the
whole frame as its window, the route pinned as its only path. Its ``value`` (what each
undelivered packet costs the plan) is the buyer's value of the trade's energy (its price,
plus its premium for green energy) minus the seller's ask: the gains from trade the
packet carries before losses. With it the planner's objective is the
market's welfare, less delay and holding costs the market does not see, so the planner
drops a traded packet only when delivering it would destroy more welfare than it makes.
"""

from __future__ import annotations

from bench import Scenario, Transfer
from bench.validate import check_scenario
from scheduler.market.clearing import MarketResult
from scheduler.market.errors import MarketError

_MAX_ID = 40  # bench.models.Id


def market_transfers(scenario: Scenario, result: MarketResult) -> tuple[Transfer, ...]:
    taken = {t.id for t in scenario.transfers}
    out: list[Transfer] = []
    for trade in result.trades:
        gain = trade.value - trade.ask
        if gain < 0:
            raise MarketError("", f"trade {trade.seller} -> {trade.buyer} loses welfare")
        out.append(
            Transfer(
                id=_fresh_id(f"{trade.seller}-{trade.buyer}", taken),
                source=trade.route[0],
                sink=trade.route[-1],
                packets=trade.packets,
                voltage_v=result.packet.voltage_v,
                current_a=result.packet.current_a,
                value=gain,
                paths=(trade.route,),
            )
        )
    return tuple(out)


def with_market_transfers(scenario: Scenario, result: MarketResult) -> Scenario:
    """The scenario with the market's transfers after its own, checked like a file."""
    added = market_transfers(scenario, result)
    updated = scenario.model_copy(update={"transfers": scenario.transfers + added})
    check_scenario(updated)  # a market bug must fail here, not in the planner
    return updated


def _fresh_id(wanted: str, taken: set[str]) -> str:
    """``S1-B1``, ``S1-B1.2`` for its second route, ``M<k>`` when that is too long."""
    k = 1
    while len(candidate := wanted if k == 1 else f"{wanted}.{k}") <= _MAX_ID:
        if candidate not in taken:
            taken.add(candidate)
            return candidate
        k += 1
    k = 1
    while f"M{k}" in taken:
        k += 1
    taken.add(f"M{k}")
    return f"M{k}"
