"""One frame made ready to upload: its stage (the market by default), plan, the
independent check, sealing.

Pure computation (Numba releases the GIL), so the frame loop runs it in a worker thread
while the running frame's heartbeats go on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bench import Scenario, Topology
from firmware_bridge.headers import SealedFrame, SealingKeys, seal_frame
from router.controller.stages import FrameStage, MarketStage, StageOutput
from scheduler import LrOptions, Plan, plan_transfers, verify_plan
from scheduler.market import MarketResult, market_transfers


@dataclass(frozen=True)
class Prepared:
    frame: int
    base: Scenario  # this frame's transfers as requested, before the market's trades are
    # added (a snapshot: a transfer added by command since is not this frame's)
    scenario: Scenario  # as planned: the market's trades added
    topology: Topology
    market: MarketResult | None
    stage: StageOutput
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
    index: int = 0,
    down: frozenset[str] = frozenset(),
    stage: FrameStage | None = None,
    lr_options: LrOptions | None = None,
    warm: object | None = None,
) -> Prepared:
    """The stage first (by default the market, when the scenario quotes prices) for the
    run's ``index``-th frame, then the lr plan without the down routers (from ``warm``,
    the last frame's plan, when the problem is the same), checked by the independent
    checker, then sealed for ``frame``."""
    t0 = time.perf_counter()
    output = (stage or MarketStage()).prepare(index, frame, base, topology)
    requested, scenario, market = output.requested, output.scenario, output.market
    if scenario is not base:
        topology = Topology(scenario)
    plan = plan_transfers(
        scenario, topology, "lr", lr_options=lr_options, down_routers=down, warm=warm
    )
    verify_plan(scenario, plan.to_json())  # never seal a plan that breaks a rule
    t1 = time.perf_counter()
    sealed = seal_frame(
        scenario, topology, keys, frame, plan.packets, trade_prices(requested, market)
    )
    t2 = time.perf_counter()
    return Prepared(
        frame,
        requested,
        scenario,
        topology,
        market,
        output,
        plan,
        sealed,
        (t1 - t0) * 1e3,
        (t2 - t1) * 1e3,
    )


def trade_prices(base: Scenario, market: MarketResult | None) -> dict[str, float]:
    """The inner header's price reference per market transfer: what its buyer pays per
    packet for that trade under the cleared rule (0 for explicit transfers)."""
    if market is None:
        return {}
    added = market_transfers(base, market)
    return {
        t.id: max(0.0, trade.buyer_price) for t, trade in zip(added, market.trades, strict=True)
    }
