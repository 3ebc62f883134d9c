"""The market's economics: optimal allocation (against a brute-force oracle), VCG
truthfulness and individual rationality, the unit double auction in closed form, Nash
bargaining splits, and the transfers handed to the planner."""

from __future__ import annotations

import copy
import importlib.util
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest

from bench import bundled_path, load_with_topology, parse_dict
from scheduler.market import (
    MECHANISMS,
    MarketError,
    clear_market,
    market_transfers,
    with_market_transfers,
)
from tests.market_cases import oracle_welfare, single_node, triangle

BENCHMARK = Path(__file__).parents[1] / "benchmarks" / "market.py"
TINY = [triangle(random.Random(seed), n_quotes=4 + seed % 2) for seed in range(12)]
for case in TINY[9:]:  # free lines: flows both ways and zero-cost cycles must not count
    case["costs"]["loss_price_per_j"] = 0.0


def clear(data, mechanism="vcg", **kw):
    scenario, topology = parse_dict(data)
    return clear_market(scenario, topology, mechanism, **kw)


def gross(s) -> float:
    """Value of the packets bought, or minus the ask of the packets sold."""
    return s.price * s.packets if s.side == "bid" else -s.price * s.packets


@pytest.mark.parametrize("data", TINY, ids=[f"triangle{i}" for i in range(len(TINY))])
def test_welfare_and_vcg_utilities_match_brute_force(data):
    result = clear(data)
    best = oracle_welfare(data)
    assert result.welfare == pytest.approx(best, abs=1e-9)
    for s in result.participants:
        adds = best - oracle_welfare(data, without=s.id)
        assert s.utility == pytest.approx(adds, abs=1e-9), s.id


def test_the_oracle_cases_bind_capacity():
    """Guard on the cases themselves: some must be limited by slots, not only by quotes."""
    limited = 0
    for data in TINY:
        roomy = copy.deepcopy(data)
        roomy["frame"]["slots"] = 50
        limited += oracle_welfare(roomy) > oracle_welfare(data) + 1e-9
    assert limited >= 3


def true_utility(data, pid: str, price: float) -> float:
    """What ``pid`` really gains when it quotes ``price`` and everybody else the truth."""
    lie = copy.deepcopy(data)
    for q in lie["offers"] + lie["bids"]:
        if q["id"] == pid:
            truth, q["price"] = q["price"], price
    s = clear(lie).settlement(pid)
    value = truth * s.packets if s.side == "bid" else -truth * s.packets
    return value - s.payment


@pytest.mark.parametrize("data", TINY[:6], ids=[f"triangle{i}" for i in range(6)])
def test_no_misreport_on_a_grid_pays(data):
    honest = clear(data)
    grid = [i / 40 for i in range(25)]
    for s in honest.participants:
        for price in grid:
            assert true_utility(data, s.id, price) <= s.utility + 1e-9, (s.id, price)


@pytest.mark.parametrize("mechanism", ["vcg", "nash"])
def test_individually_rational_zero_for_zero_and_budget_identity(mechanism):
    bench = load_with_topology(bundled_path("bench-4-market"))
    results = [clear(d, mechanism) for d in TINY] + [clear_market(*bench, mechanism)]
    for r in results:
        for s in r.participants:
            assert s.utility >= 0.0, (r.scenario, s.id)
            if s.packets == 0:
                assert s.payment == 0.0 and s.utility == 0.0
        utilities = math.fsum(s.utility for s in r.participants)
        assert r.budget == pytest.approx(r.welfare - utilities, abs=1e-9)


def test_vcg_runs_a_deficit_on_the_bundled_bench():
    r = clear_market(*load_with_topology(bundled_path("bench-4-market")))
    assert r.budget < 0
    assert {s.id for s in r.participants if s.packets == 0} == {"B4"}


@pytest.mark.parametrize("seed", range(20))
def test_unit_double_auction_closed_form(seed):
    rng = random.Random(seed)
    n_sell, n_buy = rng.randint(1, 6), rng.randint(1, 6)
    prices = [p / 1000 for p in rng.sample(range(1, 1000), n_sell + n_buy)]
    asks, values = sorted(prices[:n_sell]), sorted(prices[n_sell:], reverse=True)
    r = clear(single_node(rng.sample(asks, n_sell), rng.sample(values, n_buy)))
    k = sum(1 for b, s in zip(values, asks, strict=False) if b >= s)
    b_next = values[k] if k < n_buy else -math.inf
    s_next = asks[k] if k < n_sell else math.inf
    assert r.traded == k
    for s in r.participants:
        wins = s.price in (asks[:k] if s.side == "offer" else values[:k])
        assert s.packets == (1 if wins else 0), s.id
        if not wins:
            assert s.payment == 0.0
        elif s.side == "bid":
            assert s.payment == pytest.approx(max(asks[k - 1], b_next), abs=1e-12)
        else:
            assert -s.payment == pytest.approx(min(values[k - 1], s_next), abs=1e-12)


def test_trade_that_lowers_welfare_never_happens():
    r = clear(single_node([0.30], [0.29]))
    assert r.traded == 0 and r.welfare == 0.0
    assert all(s.payment == 0.0 and s.utility == 0.0 for s in r.participants)


NASH_CASES = [*range(6), *range(9, len(TINY))]  # with priced losses, and lossless


@pytest.mark.parametrize(
    "data", [TINY[i] for i in NASH_CASES], ids=[f"triangle{i}" for i in NASH_CASES]
)
def test_nash_splits_the_gain_by_weight_and_balances_the_budget(data):
    """Payments between the parties sum to the cost of the network's losses (exactly 0 on
    lossless lines): what the traders pay beyond each other is what the lines burn."""
    equal = clear(data, "nash")
    trading = [s for s in equal.participants if s.packets]
    for s in equal.participants:
        share = equal.welfare / len(trading) if s.packets else 0.0
        assert s.utility == pytest.approx(share, abs=1e-12)
        assert gross(s) - s.payment == pytest.approx(s.utility, abs=1e-12)
    paid = math.fsum(s.payment for s in equal.participants)
    assert paid - equal.loss_cost == pytest.approx(0.0, abs=1e-12)  # losses are the network's
    if data["costs"]["loss_price_per_j"] == 0.0:
        assert equal.loss_cost == 0.0 and paid == pytest.approx(0.0, abs=1e-12)
    if trading:
        heavy = trading[0].id
        weighted = clear(data, "nash", weights={heavy: 3.0})
        assert weighted.settlement(heavy).utility == pytest.approx(
            3 * equal.welfare / (len(trading) + 2), abs=1e-12
        )


def test_vcg_and_nash_divide_the_same_welfare():
    bench = load_with_topology(bundled_path("bench-4-market"))
    vcg, nash = clear_market(*bench, "vcg"), clear_market(*bench, "nash")
    assert vcg.welfare == nash.welfare
    routes = [(t.seller, t.buyer, t.route, t.packets) for t in vcg.trades]
    assert routes == [(t.seller, t.buyer, t.route, t.packets) for t in nash.trades]
    assert [s.packets for s in vcg.participants] == [s.packets for s in nash.participants]
    assert nash.budget == pytest.approx(0.0, abs=1e-12)
    assert [s.utility for s in vcg.participants] != pytest.approx(
        [s.utility for s in nash.participants]
    )


def test_trades_become_pinned_transfers_worth_the_gain():
    scenario, topology = load_with_topology(bundled_path("bench-4-market"))
    result = clear_market(scenario, topology)
    price = {s.id: s.price for s in result.participants}
    transfers = market_transfers(scenario, result)
    assert len(transfers) == len(result.trades)
    for tr, trade in zip(transfers, result.trades, strict=True):
        assert tr.paths == (trade.route,)
        assert (tr.source, tr.sink) == (trade.route[0], trade.route[-1])
        assert tr.value == pytest.approx(price[trade.buyer] - price[trade.seller])
        assert (tr.release_slot, tr.deadline_slot) == (0, None)
        assert (tr.voltage_v, tr.current_a) == (48.0, 10.0)
    sold: dict[str, int] = {}
    for trade in result.trades:
        sold[trade.seller] = sold.get(trade.seller, 0) + trade.packets
        sold[trade.buyer] = sold.get(trade.buyer, 0) + trade.packets
    assert sold == {s.id: s.packets for s in result.participants if s.packets}
    gains = math.fsum(
        t.packets * (price[t.buyer] - price[t.seller] - t.loss_cost) for t in result.trades
    )
    assert gains == pytest.approx(result.welfare, abs=1e-9)
    updated = with_market_transfers(scenario, result)
    assert updated.transfers == transfers and updated.offers == scenario.offers


def test_market_packet_follows_the_weakest_quoting_terminal():
    data = triangle(random.Random(0))
    data["terminals"][1]["max_current_a"] = 6.0  # P2
    data["offers"][0]["terminal"] = "P2"
    assert clear(data).packet.current_a == 6.0


@pytest.mark.parametrize(
    ("change", "where", "words"),
    [
        (lambda d: d["terminals"][2].update(voltage_v=24.0), ".terminal", "one voltage level"),
        (lambda d: d["bids"].append({"id": "Z", "terminal": "P1", "packets": 1, "price": 0.1})
         if d["terminals"][0].update(kind="storage") is None else None,
         "bids[Z].terminal", "a terminal either sells or buys"),
    ],
    ids=["mixed voltages", "one terminal on both sides"],
)  # fmt: skip
def test_quotes_the_market_cannot_take(change, where, words):
    data = single_node([0.1], [0.2])
    data["routers"][0]["ports"] = 3
    data["terminals"].append(
        {"id": "T2", "kind": "load", "at": "X:2", "voltage_v": 48.0, "max_current_a": 10.0,
         "resistance_ohm": 0.02}
    )  # fmt: skip
    data["bids"].append({"id": "B9", "terminal": "T2", "packets": 1, "price": 0.3})
    data["terminals"][0]["id"] = "P1"
    data["offers"][0]["terminal"] = "P1"
    change(data)
    with pytest.raises(MarketError) as info:
        clear(data)
    assert where in info.value.where and words in info.value.message


def test_bad_weights_are_refused():
    data = TINY[0]
    with pytest.raises(MarketError, match="no offer or bid 'nobody'"):
        clear(data, "nash", weights={"nobody": 1.0})
    with pytest.raises(MarketError, match="finite number > 0"):
        clear(data, "nash", weights={"X0": 0.0})
    with pytest.raises(MarketError, match="nash only"):
        clear(data, "vcg", weights={"X0": 2.0})


def test_a_market_with_one_side_only_trades_nothing():
    r = clear(single_node([0.1, 0.2], []))
    assert r.traded == 0 and r.welfare == 0.0 and r.budget == 0.0
    assert [s.packets for s in r.participants] == [0, 0]


def feeder_market(participants: int):
    """The benchmark's market (benchmarks/market.py), smaller."""
    spec = importlib.util.spec_from_file_location("market_bench", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.feeder_market(100, participants, 200, 0)


def test_warm_resolves_agree_with_cold_markets_on_a_feeder():
    """Each VCG utility from a warm re-solve equals W minus the welfare of a market
    built and solved from scratch without that participant."""
    data = feeder_market(200)
    result = clear(data)
    trading = [s for s in result.participants if s.packets]
    assert len(trading) > 20
    for s in trading[:: len(trading) // 8]:
        without = copy.deepcopy(data)
        without["offers"] = [q for q in data["offers"] if q["id"] != s.id]
        without["bids"] = [q for q in data["bids"] if q["id"] != s.id]
        assert result.welfare - clear(without).welfare == pytest.approx(s.utility, abs=1e-9)


def test_benchmark_script_prints_its_table():
    run = subprocess.run(
        [sys.executable, str(BENCHMARK), "--participants", "60", "--repeat", "1"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "60 participants on 100 routers" in run.stdout
    timing = run.stdout.split("| rule | clearing (ms) |")[1].split("\n\n")[0]
    rules = [line.split(" | ")[0][2:] for line in timing.splitlines()[2:]]
    assert rules == ["(one welfare solve)", *MECHANISMS]
