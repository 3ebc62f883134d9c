"""The frame stage seam: a stage decides each frame's transfers, and its account of each
frame that ran is journaled, kept on the outcome and added to the run summary."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest

from router.controller.session import Session
from router.controller.stages import StageOutput
from router.journal import read_records
from tests.controller_support import bench, config

pytestmark = pytest.mark.timeout(120)


@dataclass
class EveryOtherTransfer:
    """Frame i carries only transfers T1 (even i) or T2 (odd i), with i + 1 packets."""

    name: str = "alternate"
    seen: list[tuple[int, int]] = field(default_factory=list)

    def prepare(self, index, frame, base, topology):
        self.seen.append((index, frame))
        keep = "T1" if index % 2 == 0 else "T2"
        transfers = [
            t.model_copy(update={"packets": index + 1}) for t in base.transfers if t.id == keep
        ]
        return StageOutput(base.model_copy(update={"transfers": transfers}), record={"kept": keep})

    def settled(self, output, settlement):
        (t,) = settlement.transfers
        return {"transfer": t.transfer, "delivered_j": t.delivered_j}

    def summary(self, outcomes):
        return [f"  alternate {len(outcomes)} frames"]


async def test_a_stage_decides_each_frames_transfers(tmp_path):
    stage = EveryOtherTransfer()
    session = Session(config(tmp_path, bench(), frames=3, stage=stage))
    result = await session.run()
    assert result.verified.ok
    assert [i for i, _ in stage.seen] == [0, 1, 2]
    assert [f for _, f in stage.seen] == [o.frame for o in result.outcomes]
    for i, o in enumerate(result.outcomes):
        assert not o.skipped, o.problems
        assert o.packets_planned == o.packets_delivered == i + 1
        assert o.stage["stage"] == "alternate"
        assert o.stage["transfer"] == ("T1" if i % 2 == 0 else "T2")
        assert o.stage["delivered_j"] == pytest.approx(o.energy_delivered_j)
    records = list(read_records(result.journal))
    stage_records = [r for r in records if r.kind == "stage"]
    assert [r.frame for r in stage_records] == [o.frame for o in result.outcomes]
    plans = [r.payload for r in records if r.kind == "plan"]
    assert [p["stage"] for p in plans] == [
        {"name": "alternate", "kept": k} for k in ("T1", "T2", "T1")
    ]


@dataclass
class SlowSecondFrame:
    """The market's place, taking 2.5 s (2.5 frames) to decide the run's second frame:
    that frame cannot start when the first one ends."""

    name: str = "slow"

    def prepare(self, index, frame, base, topology):
        if index == 1:
            time.sleep(2.5)  # in the planning worker thread, as a slow planner would
        return StageOutput(base)

    def settled(self, output, settlement):
        return {}

    def summary(self, outcomes):
        return []


async def test_a_frame_that_is_not_ready_in_time_raises_frame_late(tmp_path):
    session = Session(config(tmp_path, bench(), frames=3, stage=SlowSecondFrame()))
    result = await session.run()
    assert len(result.outcomes) == 3
    second = result.outcomes[1]
    # the first frame ends FIRST_LEAD_S (0.5 s) + its 1 s after it was armed, and the
    # second's planning, begun once that arm returned, takes 2.5 s: at least 1 s late
    assert second.late_ms >= 1000 and not second.skipped
    records = [r for r in read_records(result.journal) if r.kind == "alarm"]
    late = [r for r in records if r.payload["code"] == "frame_late"]
    assert [r.frame for r in late] == [second.frame], records
    text = late[0].payload["message"]
    assert text.startswith(f"frame {second.frame} starts {second.late_ms:.0f} ms after frame ")
    assert f"plan {second.plan_ms:.0f} ms" in text
