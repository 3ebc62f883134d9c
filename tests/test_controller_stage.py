"""The frame stage seam: a stage decides each frame's transfers, and its account of each
frame that ran is journaled, kept on the outcome and added to the run summary."""

from __future__ import annotations

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
