"""The live bench view from the controller's frame callbacks: meters, alarms, the Gantt."""

from __future__ import annotations

from typing import Any

from router.controller.outcome import FrameOutcome
from scheduler.plan import Plan


def gantt_rows(plan: Plan, slots: int) -> dict[str, Any]:
    """Per resource, the (slot, transfer) pairs it carries in the frame."""
    rows: dict[str, list[tuple[int, str]]] = {}
    for packet in plan.packets:
        for resource, slot in zip(packet.route, packet.slots, strict=True):
            rows.setdefault(resource, []).append((slot, packet.transfer))
    return {"slots": slots, "rows": {r: sorted(v) for r, v in sorted(rows.items())}}


def meters(outcome: FrameOutcome) -> dict[str, Any]:
    out: dict[str, Any] = {
        "packets_planned": outcome.packets_planned,
        "packets_delivered": outcome.packets_delivered,
        "energy_planned_j": round(outcome.energy_planned_j, 3),
        "energy_delivered_j": round(outcome.energy_delivered_j, 3),
        "late_ms": round(outcome.late_ms, 3),
        "skipped": outcome.skipped,
    }
    if outcome.settlement is not None:
        out["transfers"] = [
            {"id": t.transfer, "planned": t.planned_packets, "delivered_j": round(t.delivered_j, 3)}
            for t in outcome.settlement.transfers
        ]
    return out
