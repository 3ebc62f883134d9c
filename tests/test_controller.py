"""The controller end to end against the twin, over real sockets and pseudo-terminals."""

from __future__ import annotations

import dataclasses
import math

import pytest

from firmware_bridge.keystore import KeyStore
from router.controller.loop import ControllerError
from router.controller.session import Session
from router.errors import RunFailedError
from router.journal import read_records, verify_journal
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
    key = KeyStore.open(tmp_path / "keys").signing_public_key()
    report = verify_journal(second.journal, key)
    assert report.ok and report.records > 10
    # another output folder, so another journal, with the same keys: header nonces are
    # (epoch, frame, slot, index) under those keys, so its frames start higher still
    elsewhere = dataclasses.replace(config(tmp_path, bench(), frames=1), out_dir=tmp_path / "b")
    third = await Session(elsewhere).run()
    assert third.outcomes[0].frame > second.outcomes[-1].frame
    assert verify_journal(third.journal, key).ok


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


def with_clocks(scenario, **clocks):
    """The bench with its twin routers' clocks set: {router: (offset_us, drift_ppm)}."""
    from bench.models import TwinRouter, TwinSection

    routers = tuple(
        TwinRouter(id=rid, clock_offset_us=off, clock_drift_ppm=ppm)
        for rid, (off, ppm) in clocks.items()
    )
    return scenario.model_copy(update={"twin": TwinSection(routers=routers)})


async def test_router_clocks_far_apart_and_drifting_still_run_in_step(tmp_path):
    """Routers whose clocks read seconds apart and run at rates 600 ppm apart: the
    controller measures each one's offset and drift from round trips and arms every
    router at the same true instant, each in its own clock. Uncompensated, 5 s of
    offset would start R2's frames a thousand slots late, and 600 ppm would put the
    routers 0.6 ms (six guards) apart by the end of a 1 s frame: collisions."""
    scenario = with_clocks(
        bench(), R1=(0.0, 0.0), R2=(5_000_000.0, 300.0), R3=(123_456.0, -300.0), R4=(7.0, 150.0)
    )
    result = await Session(config(tmp_path, scenario, frames=3)).run()
    assert_healthy(result, 3)
    assert not result.alarms


async def test_clocks_that_cannot_agree_within_the_guard_refuse_to_run(tmp_path):
    """A 1 us guard: no round trip over a socket measures clocks that closely, so the
    run is refused before any frame is armed, and says why."""
    frame = bench().frame.model_copy(update={"guard_us": 1.0})
    scenario = bench().model_copy(update={"frame": frame})
    with pytest.raises(RunFailedError, match=r"cannot run: .*guard") as info:
        await Session(config(tmp_path, scenario, frames=2)).run()
    assert isinstance(info.value.cause, ControllerError) and info.value.expected
    records = list(read_records(tmp_path / "out" / "journal.sqlite"))
    assert not [r for r in records if r.kind == "frame" and r.payload.get("phase") == "armed"]
