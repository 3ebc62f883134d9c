"""What a run is asked to do, and what each frame did."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from router.settlement import FrameSettlement, SettlementConfig
from scheduler import LrOptions

if TYPE_CHECKING:
    from router.controller.loop import _Frame


@dataclass(frozen=True)
class RunOptions:
    frames: int = 10
    settlement: SettlementConfig = field(default_factory=SettlementConfig)
    lr: LrOptions = field(default_factory=LrOptions)
    # the lr planner is an anytime solver: unless lr.time_limit_s says otherwise, it stops
    # iterating after this share of the frame and keeps its best plan and bound
    plan_share: float = 0.04
    meters_timeout_s: float = 2.0  # wait this long after a frame for its latched meters
    telemetry: bool = False  # also read every router's status and port meters per frame


@dataclass(frozen=True)
class FrameOutcome:
    frame: int
    skipped: bool  # a commit failed (or the clocks disagreed): no router ran it
    packets_planned: int
    packets_undelivered: int  # the planner could not place them
    packets_delivered: int  # the sink meters attributed them
    energy_planned_j: float  # due at the sinks
    energy_delivered_j: float
    loss_j: float  # planned losses on the way
    objective: float
    lower_bound: float | None
    gap: float | None
    plan_ms: float
    seal_ms: float
    upload_ms: float
    commit_ms: float
    late_ms: float  # started this long after the frame before it ended (links too slow)
    skew_us: float  # bound on how far two routers' starts were apart (nan: not armed)
    routers_down: tuple[str, ...]
    problems: tuple[str, ...]  # commit, arm and clock failures of this frame
    settlement: FrameSettlement | None
    stage: Mapping[str, Any] | None = None  # the frame stage's account (journaled apart)

    @classmethod
    def of(
        cls,
        f: _Frame,
        settlement: FrameSettlement | None,
        delivered_packets: int,
        stage: Mapping[str, Any] | None = None,
    ) -> FrameOutcome:
        plan = f.prep.plan
        planned_sink = sum(t.planned_sink_j for t in settlement.transfers) if settlement else 0.0
        planned_source = (
            sum(t.planned_source_j for t in settlement.transfers) if settlement else 0.0
        )
        delivered = sum(t.delivered_j for t in settlement.transfers) if settlement else 0.0
        problems = [f"{r}: {why}" for r, why in {**f.failed, **f.arm_failed}.items()]
        return cls(
            frame=f.prep.frame,
            skipped=bool(f.failed),
            packets_planned=plan.delivered,
            packets_undelivered=sum(plan.undelivered.values()),
            packets_delivered=0 if f.failed else delivered_packets,
            energy_planned_j=planned_sink,
            energy_delivered_j=delivered,
            loss_j=planned_source - planned_sink,
            objective=plan.objective,
            lower_bound=plan.lower_bound,
            gap=plan.gap,
            plan_ms=f.prep.plan_ms,
            seal_ms=f.prep.seal_ms,
            upload_ms=f.upload_ms,
            commit_ms=f.commit_ms,
            late_ms=f.late_ms,
            skew_us=f.skew_us,
            routers_down=tuple(f.down),
            problems=tuple(problems),
            settlement=settlement,
            stage=stage,
        )

    def record(self) -> dict[str, Any]:
        """The frame's journal record (settlement is journaled on its own)."""
        out = {k: v for k, v in self.__dict__.items() if k not in ("settlement", "stage")}
        for k, v in out.items():
            if isinstance(v, float) and not math.isfinite(v):
                out[k] = None  # not known (a frame never armed has no skew): JSON null
        out["phase"] = "done"
        return out
