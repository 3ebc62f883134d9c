"""The controller end to end against the twin, over real sockets and pseudo-terminals."""

from __future__ import annotations

import math

import pytest

from router.controller.session import Session
from router.journal import verify_journal
from router.settlement import OPERATOR
from tests.controller_support import bench, config

pytestmark = pytest.mark.timeout(120)


def assert_healthy(result, frames: int) -> None:
    assert result.verified.ok, result.verified.one_line()
    assert len(result.outcomes) == frames
    numbers = [o.frame for o in result.outcomes]
    assert numbers == list(range(numbers[0], numbers[0] + frames))
    for o in result.outcomes:
        assert not o.skipped, o.problems
        assert o.packets_delivered == o.packets_planned > 0, (o, result.alarms)
        # routers start a slot apart by the clocks' residual error, which the controller
        # keeps within the 100 us guard (the skew figure is its 3-sigma estimate, not a
        # hard bound), and conduction shortens by as much: delivered = planned, minus at
        # most the guard's share of tau = 4.9 ms
        assert o.skew_us <= 100.0
        assert o.energy_planned_j * (1 - 100.0 / 4900.0) <= o.energy_delivered_j
        assert o.energy_delivered_j <= o.energy_planned_j + 1e-6
        for t in o.settlement.transfers:
            assert t.shortfall_packets == 0 and t.compensation == 0


@pytest.mark.parametrize("transport", ["tcp", "rtu", "serial"])
async def test_frames_run_on_every_transport(tmp_path, transport):
    session = Session(config(tmp_path, bench(), frames=3, transport=transport))
    result = await session.run()
    assert_healthy(result, 3)
    assert not result.alarms


async def test_a_restart_resumes_with_higher_frame_numbers(tmp_path):
    first = await Session(config(tmp_path, bench(), frames=2)).run()
    second = await Session(config(tmp_path, bench(), frames=2)).run()
    assert second.outcomes[0].frame > first.outcomes[-1].frame
    report = verify_journal(second.journal, None)
    assert report.ok and report.records > 10


async def test_the_market_bench_settles_to_the_market_payments(tmp_path):
    session = Session(config(tmp_path, bench("bench-4-market"), frames=3))
    result = await session.run()
    assert_healthy(result, 3)
    market = session.controller.last_prepared.market
    cleared = {p.id: p.payment for p in market.participants}
    for o in result.outcomes:
        s = o.settlement
        # every packet delivered: each participant pays (receives) its cleared payment
        for p in s.participants:
            assert p.paid == pytest.approx(p.market_payment, abs=1e-9)
            assert p.market_payment == pytest.approx(cleared[p.id], abs=1e-9)
        # money is conserved: the balances of all parties, the operator's too, sum to 0
        assert math.fsum(s.balance(party) for party in s.parties) == pytest.approx(0, abs=1e-9)
        assert s.balance(OPERATOR) == pytest.approx(
            math.fsum(p.payment for p in market.participants), abs=1e-9
        )
