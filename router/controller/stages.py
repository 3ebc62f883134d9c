"""Frame stages: what turns a frame's requests into the transfers the planner plans.

The frame loop is one pipeline whatever decides the transfers: requests -> stage ->
transfers -> plan -> sealed tables -> routers -> meters -> settlement. A stage is the
first step. The market stage clears offers and bids (by any rule of
``scheduler.market.MECHANISMS``); other stages (the MEC
energy allocation, an hour of the day-ahead trades, the web terminal's order book) plug
in here the same way, so each ends as packets on the bench and is settled like any
transfer.

A stage runs in the planning worker thread (pure computation, no I/O, no asyncio), once
per frame, before the plan. After the frame's meters are settled, ``settled`` gives the
stage's own account of the frame (satisfaction per server, delivered against traded);
the frame loop journals it (``stage`` record), hands it to the run summary and to MQTT.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

from bench import Scenario, Topology
from scheduler.market import MarketResult, Mechanism, clear_market, with_market_transfers

if TYPE_CHECKING:
    from router.controller.outcome import FrameOutcome
    from router.settlement import FrameSettlement


@dataclass(frozen=True)
class StageOutput:
    """One frame's transfers, as decided by a stage."""

    # the scenario with this frame's transfers, before any market trades are added: the
    # settlement of the frame starts here
    requested: Scenario
    market: MarketResult | None = None  # priced trades, when the stage cleared a market
    record: Mapping[str, Any] = field(default_factory=dict)  # JSON: journaled with the plan

    @cached_property
    def scenario(self) -> Scenario:
        """What the planner plans: the requested transfers and the market's trades."""
        if self.market is None:
            return self.requested
        return with_market_transfers(self.requested, self.market)


class FrameStage(Protocol):
    """Decides each frame's transfers. ``name`` is short and stable: it names the stage in
    the journal, the run summary and MQTT."""

    @property
    def name(self) -> str: ...

    def prepare(self, index: int, frame: int, base: Scenario, topology: Topology) -> StageOutput:
        """The transfers of the run's ``index``-th frame (0-based; wire number ``frame``)
        from ``base`` (the scenario as requested now, MQTT commands included)."""
        ...

    def settled(self, output: StageOutput, settlement: FrameSettlement) -> Mapping[str, Any] | None:
        """The stage's account of a frame that ran, from its meters' settlement (JSON), or
        None when it has nothing to add."""
        ...

    def summary(self, outcomes: Sequence[FrameOutcome]) -> list[str]:
        """Lines for the end of the run summary (empty: nothing to add)."""
        ...


@dataclass(frozen=True)
class MarketStage:
    """Explicit transfers, plus the market's trades when the scenario quotes offers and
    bids (cleared every frame by ``mechanism``, after the green pass unless ``green`` is
    off)."""

    mechanism: Mechanism = "vcg"
    green: bool = True
    name: str = "market"

    def prepare(self, index: int, frame: int, base: Scenario, topology: Topology) -> StageOutput:
        if not (base.offers and base.bids):
            return StageOutput(base)
        market = clear_market(base, topology, self.mechanism, green=self.green)
        return StageOutput(
            base,
            market,
            {
                "mechanism": market.mechanism,
                "welfare": market.welfare,
                "welfare_gap": market.welfare_gap,
                "volume": market.volume,
                "budget": market.budget,
                "green_j": market.green_j,
                "trades": len(market.trades),
            },
        )

    def settled(self, output: StageOutput, settlement: FrameSettlement) -> Mapping[str, Any] | None:
        return None  # the settlement itself is the market's account

    def summary(self, outcomes: Sequence[FrameOutcome]) -> list[str]:
        return []
