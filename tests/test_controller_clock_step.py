"""A router's clock jumps 300 us in the middle of a run (the twin's ``skew=300@R2``): the
controller catches the jump between two clock samples, raises ``clock_skew``, aborts what
R2 was armed for, skips the frame planned with it, re-synchronises it and plans it
again. Only the frame already running at the jump can collide, and only until the abort."""

from __future__ import annotations

import asyncio

import pytest

from router.controller.session import Session
from router.journal import read_records
from tests.controller_support import bench, config

pytestmark = pytest.mark.timeout(180)


async def test_a_clock_jump_mid_run_is_caught_before_the_next_frame_is_armed(tmp_path):
    session = Session(config(tmp_path, bench(), frames=8))
    collisions: dict[int, int] = {}  # frame -> collisions counted by its end
    jumped: list[int] = []  # the frame running when R2's clock jumped

    def on_frame(outcome, alarms):
        routers = session.twin.routers.values()
        collisions[outcome.frame] = sum(r.counters["collisions"] for r in routers)
        if len(collisions) == 2:
            session.twin.inject("skew=300@R2")
            jumped.append(outcome.frame + 1)

    session.on_frame = on_frame
    result = await session.run()
    assert result.verified.ok, result.verified.one_line()
    (jump,) = jumped
    records = list(read_records(result.journal))
    alarms = [(r.frame, r.payload) for r in records if r.kind == "alarm"]
    steps = [a for f, a in alarms if a["code"] == "clock_skew" and a["source"] == "R2"]
    assert steps, alarms
    step_us = float(steps[0]["message"].split("stepped by ")[1].split(" us")[0])
    # about the jump: each offset sample is uncertain by half its round trip, and round
    # trips on a loaded 2-core machine reach a few hundred us (383 seen in a full suite)
    assert 150 <= step_us <= 600
    # no collision before the jump, none after the frame that was running at it
    assert all(n == 0 for f, n in collisions.items() if f < jump)
    assert {n for f, n in collisions.items() if f >= jump} == {collisions[jump]}
    outcomes = {o.frame: o for o in result.outcomes}
    assert outcomes[jump + 1].skipped  # planned with R2 before the jump was known
    assert any(a["code"] == "clock_skew" for f, a in alarms if f == jump + 1)
    later = [o for o in result.outcomes if o.frame > jump + 1]
    assert all(not o.skipped and o.packets_delivered == o.packets_planned for o in later)
    back = [o for o in later if "R2" not in o.routers_down]
    assert back and back[-1].frame == result.outcomes[-1].frame  # planned again, and stays
    assert back[-1].packets_delivered == back[-1].packets_planned == 240


async def test_a_clock_jump_while_the_clocks_are_first_sampled_leaves_the_router_out(tmp_path):
    """A router's clock jumps in the second of sampling before the first frame (found in
    a loaded CI run: the run ended with KeyError 'R4'). Its fit is gone until it is
    sampled afresh: the controller waits for it or leaves it out, and every frame runs.
    Whether a young fit takes the jump for a step depends on its scatter: the code before
    the fix failed here in 2 runs of 3, so the step itself is not asserted."""
    session = Session(config(tmp_path, bench(), frames=4))

    async def jump_once_claimed() -> None:
        while session.controller is None or "R4" not in session.controller.clocks.estimates:
            await asyncio.sleep(0.005)  # its first fit: the jump is a step from it
        session.twin.inject("skew=400@R4")

    jumper = asyncio.create_task(jump_once_claimed())
    result = await session.run()
    await jumper
    assert result.verified.ok, result.verified.one_line()
    assert len(result.outcomes) == 4 and not any("KeyError" in a for a in result.alarms)
    records = list(read_records(result.journal))
    assert not [r for r in records if r.kind == "stop" and "error" in str(r.payload)]
    assert not result.outcomes[-1].skipped  # R4 in step again by then
