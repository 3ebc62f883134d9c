"""The web book as a frame stage: every market interval the open orders are cleared by
the operator's mechanism and the trades become the frame's transfers; after the frame,
its settlement is written back to the orders (and green deliveries earn certificates).

Runs in the controller's planning thread (the store serialises access with its lock).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench import Scenario, Topology
from router.controller.stages import StageOutput
from router.web.clearing import clear_book
from router.web.terminal import WebTerminal

if TYPE_CHECKING:
    from router.controller.outcome import FrameOutcome
    from router.settlement import FrameSettlement


@dataclass
class BookStage:
    terminal: WebTerminal
    name: str = "web-book"

    def prepare(self, index: int, frame: int, base: Scenario, topology: Topology) -> StageOutput:
        settings = self.terminal.settings()
        if frame % settings["interval"]:
            return StageOutput(base)
        result, clearing = clear_book(
            self.terminal.store, base, topology, settings["mechanism"], frame
        )
        if result is None or clearing is None or not result.trades:
            return StageOutput(base)
        return StageOutput(base, result, clearing.to_json())

    def settled(self, output: StageOutput, settlement: FrameSettlement) -> Mapping[str, Any] | None:
        if output.market is None:
            return None
        store = self.terminal.store
        delivered_j: dict[str, float] = {}
        for t in settlement.transfers:
            for party in (t.seller, t.buyer):
                if party:
                    delivered_j[party] = delivered_j.get(party, 0.0) + t.delivered_j
        issued = 0.0
        with store.transaction() as conn:
            for p in settlement.participants:
                order_id = int(p.id[1:])
                conn.execute(
                    "INSERT OR REPLACE INTO deliveries VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (order_id, settlement.frame, p.allocated, p.delivered_packets,
                     delivered_j.get(p.id, 0.0), p.paid, p.compensation),
                )  # fmt: skip
                row = conn.execute(
                    "SELECT user_id, green FROM orders WHERE id = ?", (order_id,)
                ).fetchone()
                if p.side == "offer" and row[1]:  # metered green joules, not traded ones
                    joules = delivered_j.get(p.id, 0.0)
                    conn.execute(
                        "INSERT INTO certificates (user_id, joules, frame) VALUES (?, ?, ?)",
                        (row[0], joules, settlement.frame),
                    )
                    issued += joules
        return {"orders": len(settlement.participants), "green_j_certified": issued}

    def summary(self, outcomes: Sequence[FrameOutcome]) -> list[str]:
        return []
