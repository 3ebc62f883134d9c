"""One frame made ready to upload: market, plan, the independent check, sealing.

Pure computation (Numba releases the GIL), so the frame loop runs it in a worker thread
while the running frame's heartbeats go on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bench import Scenario, Topology
from firmware_bridge.headers import SealedFrame, SealingKeys, seal_frame
from scheduler import LrOptions, Plan, plan_transfers, verify_plan
from scheduler.market import (
    MarketResult,
    Mechanism,
    clear_market,
    market_transfers,
    with_market_transfers,
)


@dataclass(frozen=True)
class Prepared:
    frame: int
    base: Scenario  # as requested, when this frame was planned (settlement starts here)
    scenario: Scenario  # as planned: the market's transfers added
    topology: Topology
    market: MarketResult | None
    plan: Plan
    sealed: SealedFrame
    plan_ms: float
    seal_ms: float


def prepare_frame(
    base: Scenario,
    topology: Topology,
    frame: int,
    keys: SealingKeys,
    *,
    down: frozenset[str] = frozenset(),
    mechanism: Mechanism = "vcg",
    lr_options: LrOptions | None = None,
    warm: object | None = None,
) -> Prepared:
    """Market first when the scenario quotes prices, then the lr plan without the down
    routers (from ``warm``, the last frame's plan, when the problem is the same),
    checked by the independent checker, then sealed for ``frame``."""
    t0 = time.perf_counter()
    scenario, market = base, None
    if base.offers and base.bids:
        market = clear_market(base, topology, mechanism)
        scenario = with_market_transfers(base, market)
        topology = Topology(scenario)
    plan = plan_transfers(
        scenario, topology, "lr", lr_options=lr_options, down_routers=down, warm=warm
    )
    verify_plan(scenario, plan.to_json())  # never seal a plan that breaks a rule
    t1 = time.perf_counter()
    sealed = seal_frame(scenario, topology, keys, frame, plan.packets, trade_prices(base, market))
    t2 = time.perf_counter()
    return Prepared(
        frame, base, scenario, topology, market, plan, sealed, (t1 - t0) * 1e3, (t2 - t1) * 1e3
    )


def trade_prices(base: Scenario, market: MarketResult | None) -> dict[str, float]:
    """The inner header's price reference per market transfer: what its buyer pays per
    packet under the cleared mechanism (0 for explicit transfers)."""
    if market is None:
        return {}
    pays = {
        p.id: p.payment / p.packets for p in market.participants if p.side == "bid" and p.packets
    }
    added = market_transfers(base, market)
    return {
        t.id: max(0.0, pays.get(trade.buyer, 0.0))
        for t, trade in zip(added, market.trades, strict=True)
    }
