"""Settlement: energy against plan, shortfall compensation, pro-rata payments, balance."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import Scenario, load_with_topology, parse_dict
from bench.validate import check_scenario
from router.settlement import (
    OPERATOR,
    FrameSettlement,
    SettlementConfig,
    SettlementError,
    run_totals,
    settle_frame,
)
from scheduler import Plan, PlannedPacket, plan_transfers
from scheduler.market import MarketResult, Trade, clear_market, with_market_transfers
from scheduler.market.clearing import Settlement
from scheduler.market.network import MarketPacket
from tests.helpers import chain, transfer

ROUTE = ("S1", "AB", "BC", "L1")
# 48 V x 10 A for 5 ms - 100 us: 2.352 J at the source; I^2 R tau on the accesses
# (0.02 ohm each) and lines (0.1 ohm each): 100 * 0.24 * 0.0049 = 0.1176 J lost
SOURCE_J, SINK_J = 2.352, 2.352 - 0.1176


def chain_market() -> tuple[Scenario, MarketResult]:
    """One seller S1 (10 @ 0.10) and one buyer B1 (10 @ 0.30) across the chain, priced by
    hand as VCG does: each adds the whole welfare 2.0; the seller receives 1.0 + 2.0, the
    buyer pays 3.0 - 2.0."""
    scenario = parse_dict(chain())[0]
    market = MarketResult(
        scenario="chain",
        mechanism="vcg",
        packet=MarketPacket(48.0, 10.0, scenario.frame.tau_s),
        slots=10,
        participants=(
            Settlement("S1", "offer", "S1", 10, 0.10, 10, -3.0, 2.0),
            Settlement("B1", "bid", "L1", 10, 0.30, 10, 1.0, 2.0),
        ),
        trades=(Trade("S1", "B1", ROUTE, 10, 0.0, 0.1176),),
        welfare=2.0,
        loss_cost=0.0,
        loss_j=1.176,
        resolves=2,
        solve_ms=0.0,
    )
    return scenario, market


def plan_of(transfer_id: str, packets: int, route: tuple[str, ...] = ROUTE) -> Plan:
    pkts = tuple(PlannedPacket(transfer_id, route, (s,) * len(route)) for s in range(packets))
    return Plan("chain", "greedy", 0.0, None, 0.0, pkts, {transfer_id: 0})


def test_planned_energy_is_source_energy_less_the_route_losses():
    scenario, market = chain_market()
    fs = settle_frame(1, scenario, plan_of("S1-B1", 10), {"S1-B1": 10 * SINK_J}, market=market)
    (t,) = fs.transfers
    assert (t.transfer, t.seller, t.buyer, t.planned_packets) == ("S1-B1", "S1", "B1", 10)
    assert t.planned_source_j == pytest.approx(10 * SOURCE_J, rel=1e-12)
    assert t.planned_sink_j == pytest.approx(10 * SINK_J, rel=1e-12)


def test_a_healthy_frame_settles_to_exactly_the_market_payments():
    scenario, market = chain_market()
    fs = settle_frame(1, scenario, plan_of("S1-B1", 10), {"S1-B1": 10 * SINK_J}, market=market)
    s1, b1 = fs.participants
    assert (s1.paid, s1.net, s1.compensation) == (-3.0, 3.0, 0.0)
    assert (b1.paid, b1.net, b1.compensation) == (1.0, -1.0, 0.0)
    assert fs.balance(OPERATOR) == -2.0  # the VCG deficit: market.budget
    assert {(e.payer, e.payee, e.amount) for e in fs.ledger} == {
        (OPERATOR, "S1", 3.0),
        ("B1", OPERATOR, 1.0),
    }


def test_a_short_delivery_is_paid_pro_rata_and_compensated_at_bid_plus_retail():
    scenario, market = chain_market()
    config = SettlementConfig(grid_retail_price_per_j=0.05)
    delivered = 0.6 * 10 * SINK_J
    fs = settle_frame(
        1, scenario, plan_of("S1-B1", 10), {"S1-B1": delivered}, market=market, config=config
    )
    (t,) = fs.transfers
    assert t.delivered_packets == pytest.approx(6.0)
    assert t.shortfall_packets == pytest.approx(4.0)
    assert t.shortfall_j == pytest.approx(4 * SINK_J)  # 8.9376 J
    # 4 packets at B1's bid 0.30, plus 8.9376 J at 0.05 from the grid
    assert t.compensation == pytest.approx(1.2 + 0.44688)
    s1, b1 = fs.participants
    assert s1.paid == pytest.approx(-1.8) and b1.paid == pytest.approx(0.6)
    assert s1.net == pytest.approx(1.8 - 1.64688)
    assert b1.net == pytest.approx(-0.6 + 1.64688)
    assert fs.balance(OPERATOR) == pytest.approx(0.6 - 1.8)
    assert _sum_of_balances(fs) == pytest.approx(0.0, abs=1e-12)


def test_nothing_delivered_means_no_payment_and_full_compensation():
    scenario, market = chain_market()
    config = SettlementConfig(grid_retail_price_per_j=0.01)
    fs = settle_frame(
        1, scenario, plan_of("S1-B1", 10), {"S1-B1": 0.0}, market=market, config=config
    )
    s1, b1 = fs.participants
    compensation = 10 * 0.30 + 10 * SINK_J * 0.01
    assert (s1.paid, b1.paid) == (0.0, 0.0)
    assert s1.net == pytest.approx(-compensation) and b1.net == pytest.approx(compensation)
    assert fs.balance(OPERATOR) == 0.0
    assert [e.reason for e in fs.ledger] == ["compensation"]


@pytest.mark.parametrize(
    ("fraction", "credited"),
    [(1.0, 10.0), (0.995, 10.0), (0.99, 10.0), (0.98, 9.8), (1.5, 10.0)],
)
def test_meter_tolerance_and_over_delivery(fraction: float, credited: float):
    scenario, market = chain_market()
    delivered = fraction * 10 * SINK_J
    fs = settle_frame(1, scenario, plan_of("S1-B1", 10), {"S1-B1": delivered}, market=market)
    (t,) = fs.transfers
    assert t.delivered_packets == pytest.approx(credited)
    assert (t.shortfall_j == 0.0) == (credited == 10.0)


def test_packets_the_planner_could_not_fit_are_not_paid_and_not_compensated():
    scenario, market = chain_market()
    fs = settle_frame(1, scenario, plan_of("S1-B1", 8), {"S1-B1": 8 * SINK_J}, market=market)
    s1, b1 = fs.participants
    assert (s1.delivered_packets, s1.paid, b1.paid) == (
        8.0,
        pytest.approx(-2.4),
        pytest.approx(0.8),
    )
    assert s1.compensation == b1.compensation == 0.0


def test_explicit_transfers_settle_energy_only():
    data = chain()
    data["transfers"] = [transfer("T1", "S1", "L1", 3)]
    scenario = parse_dict(data)[0]
    route = ("S1", "AB", "BC", "L1")
    fs = settle_frame(4, scenario, plan_of("T1", 3, route), {"T1": 1.0})
    (t,) = fs.transfers
    # 48 V x 5 A x 4.9 ms = 1.176 J; 25 * 0.24 * 0.0049 = 0.0294 J lost
    assert t.planned_sink_j == pytest.approx(3 * (1.176 - 0.0294))
    assert t.shortfall_j == pytest.approx(3 * (1.176 - 0.0294) - 1.0)
    assert (t.seller, t.compensation, fs.participants, fs.ledger) == (None, 0.0, (), ())


@pytest.mark.parametrize(
    ("delivered", "message"),
    [
        ({}, "no metered energy for planned transfer(s) S1-B1"),
        ({"S1-B1": 1.0, "T9": 1.0}, "metered energy for transfer 'T9', not in the scenario"),
        ({"S1-B1": -1.0}, "transfer S1-B1: delivered energy -1.0 J must be >= 0"),
        ({"S1-B1": math.nan}, "delivered energy nan J"),
    ],
)
def test_inconsistent_meter_input_is_refused(delivered, message):
    scenario, market = chain_market()
    with pytest.raises(SettlementError, match=re.escape(message)):
        settle_frame(1, scenario, plan_of("S1-B1", 10), delivered, market=market)


def test_a_plan_naming_unknown_transfers_and_bad_config_are_refused():
    scenario, market = chain_market()
    with pytest.raises(SettlementError, match="the plan names transfer 'X'"):
        settle_frame(1, scenario, plan_of("X", 1), {"X": 0.0}, market=market)
    with pytest.raises(SettlementError, match=re.escape("tolerance = 1.0 is outside")):
        SettlementConfig(tolerance=1.0)
    with pytest.raises(SettlementError, match="grid_retail_price_per_j = -1"):
        SettlementConfig(grid_retail_price_per_j=-1)


# --- the bundled market bench ----------------------------------------------------------

BASE, TOPOLOGY = load_with_topology(Path(__file__).parents[1] / "bench/data/bench-4-market.toml")


def bench_frame(mechanism: str = "vcg") -> tuple[MarketResult, Plan, dict[str, float]]:
    market = clear_market(BASE, TOPOLOGY, mechanism)  # type: ignore[arg-type]
    full = with_market_transfers(BASE, market)
    plan = plan_transfers(full, check_scenario(full), "greedy")
    healthy = {
        t.transfer: t.planned_sink_j
        for t in settle_frame(0, BASE, plan, _all_zero(plan), market=market).transfers
    }
    return market, plan, healthy


def _all_zero(plan: Plan) -> dict[str, float]:
    return {p.transfer: 0.0 for p in plan.packets}


VCG = bench_frame("vcg")
NASH = bench_frame("nash")


@pytest.mark.parametrize("case", [VCG, NASH], ids=["vcg", "nash"])
def test_bench_healthy_frame_is_exactly_the_market(case):
    market, plan, healthy = case
    assert plan.delivered == market.traded  # every traded packet planned
    fs = settle_frame(1, BASE, plan, healthy, market=market)
    for p in fs.participants:
        assert p.paid == market.settlement(p.id).payment  # exactly, not approximately
        assert p.net == -p.paid
    assert fs.balance(OPERATOR) == pytest.approx(market.budget + market.loss_cost, abs=1e-12)


def test_a_buyer_of_several_trades_pays_pro_rata_over_all_of_them():
    market, plan, healthy = VCG
    delivered = dict(healthy) | {"S3-B2": healthy["S3-B2"] / 2}  # 30 of 60 packets
    fs = settle_frame(1, BASE, plan, delivered, market=market)
    b2 = next(p for p in fs.participants if p.id == "B2")
    s3 = next(p for p in fs.participants if p.id == "S3")
    assert b2.delivered_packets == pytest.approx(120.0)
    assert b2.paid == pytest.approx(market.settlement("B2").payment * 120 / 150)
    assert s3.paid == pytest.approx(market.settlement("S3").payment * 30 / 60)
    assert b2.compensation == pytest.approx(30 * 0.28) == -s3.compensation


@settings(max_examples=40, deadline=None)
@given(
    case=st.sampled_from([VCG, NASH]),
    fractions=st.lists(st.floats(0.0, 1.2), min_size=6, max_size=6),
    retail=st.floats(0.0, 1.0),
)
def test_settlement_always_balances(case, fractions, retail):
    market, plan, healthy = case
    delivered = {tid: f * e for (tid, e), f in zip(sorted(healthy.items()), fractions, strict=True)}
    config = SettlementConfig(grid_retail_price_per_j=retail)
    fs = settle_frame(1, BASE, plan, delivered, market=market, config=config)
    assert _sum_of_balances(fs) == pytest.approx(0.0, abs=1e-9)
    assert all(e.amount > 0 for e in fs.ledger)
    for p in fs.participants:
        assert p.net == pytest.approx(-p.paid + p.compensation, abs=1e-9)
        assert 0.0 <= p.delivered_packets <= p.allocated + 1e-9
    paid_in = math.fsum(p.paid for p in fs.participants)
    assert fs.balance(OPERATOR) == pytest.approx(paid_in, abs=1e-9)


def test_run_totals_add_up_the_frames():
    market, plan, healthy = VCG
    short = dict(healthy) | {"S1-B3": 0.0}
    frames = [settle_frame(f, BASE, plan, d, market=market) for f, d in ((1, healthy), (2, short))]
    totals = run_totals(frames)
    assert [p.id for p in totals.parties][-1] == OPERATOR
    by_id = {p.id: p for p in totals.parties}
    for pid in ("S1", "B3", OPERATOR):
        assert by_id[pid].net == pytest.approx(sum(f.balance(pid) for f in frames))
    assert by_id["B3"].allocated == 160 and by_id["B3"].delivered_packets == pytest.approx(80)
    assert by_id["B4"].frames == 0
    s1b3 = next(t for t in totals.transfers if t.transfer == "S1-B3")
    assert (s1b3.frames, s1b3.planned_packets) == (2, 160)
    assert s1b3.shortfall_j == pytest.approx(healthy["S1-B3"])
    assert math.fsum(p.net for p in totals.parties) == pytest.approx(0.0, abs=1e-9)


def _sum_of_balances(fs: FrameSettlement) -> float:
    return math.fsum(fs.balance(p) for p in fs.parties)
