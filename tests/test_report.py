"""The run summary's words match its numbers: the twin's timing line says "metered +
timing = due" only when that sum holds, and names what else was lost when it does not
(review of issues 12-13: an e-stopped run printed it with 370.24 + 0.165 against 416.75)."""

from __future__ import annotations

import pytest

from router.controller.outcome import FrameOutcome
from router.controller.report import twin_timing_line
from sim_hw.twin import FrameTiming


def outcome(frame: int, due: float, metered: float, skipped: bool = False) -> FrameOutcome:
    return FrameOutcome(
        frame=frame, skipped=skipped, packets_planned=1, packets_undelivered=0,
        packets_delivered=1, energy_planned_j=due, energy_delivered_j=metered, loss_j=0.0,
        objective=0.0, lower_bound=None, gap=None, plan_ms=0.0, seal_ms=0.0, upload_ms=0.0,
        commit_ms=0.0, late_ms=0.0, skew_us=0.0, routers_down=(), problems=(),
        settlement=None,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("metered", "account"),
    [
        # 208.375 + 208.375 due; the sinks lost 0.100 + 0.065 J to gate timing
        ((208.275, 208.31), "metered + timing = due"),
        # the review's e-stopped run: 416.75 - 370.24 - 0.165 = 46.345 J never delivered
        ((208.275, 161.965), "metered + timing + 46.345 J of packets not delivered"),
    ],
)
def test_the_timing_line_adds_up(metered: tuple[float, float], account: str):
    timings = [FrameTiming(1, 0.100, 3.0), FrameTiming(2, 0.065, 4.0)]
    outcomes = [outcome(1, 208.375, metered[0]), outcome(2, 208.375, metered[1])]
    outcomes.append(outcome(3, 99.0, 0.0, skipped=True))  # skipped: nothing was due
    line = twin_timing_line(timings, outcomes)
    assert "gate timing kept 0.165 J" in line and "up to 4 us apart" in line
    assert line.endswith(account + ("" if account.endswith("due") else " (see the alarms) = due"))
