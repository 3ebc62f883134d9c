"""The bilateral framework on large VPPs: the pool's prices and quotes as its start, the
split master (pool mixes for the batteries, then located by the routing's node prices)
and the LPs it keeps warm, against hand-worked cases and the independent centralised LP."""

from __future__ import annotations

import numpy as np
import pytest

from bench.dayahead import parse_dayahead
from bench.vpp_generate import generate_vpp
from scheduler.dayahead import build_problem, repair, solve_dayahead
from scheduler.dayahead.document import to_json
from scheduler.dayahead.master import RestrictedMaster, Router
from scheduler.dayahead.problem import MarketTerms, grid_alone_costs
from scheduler.dayahead.prosumer import Columns
from tests.dayahead_oracle import central_optimum, check_feasible

pytestmark = pytest.mark.timeout(300)

FEE = 0.02


def _market(periods: int = 1) -> MarketTerms:
    return MarketTerms(
        periods=periods,
        period_h=1.0,
        buy=np.full(periods, 0.3),
        sell=np.full(periods, 0.1),
        fee=FEE,
    )


def _quotes(net: list[list[float]], grid: list[list[float]], separable: bool) -> Columns:
    n = np.asarray(net, dtype=np.float64)
    return Columns(n, np.maximum(n, 0.0), np.asarray(grid, dtype=np.float64), separable)


def test_router_reroutes_from_its_last_basis() -> None:
    # A - B - C in a line, links both ways; A and C fixed, B relays (its one quote: 0)
    links = [(0, 1), (1, 0), (1, 2), (2, 1)]
    cols = [
        _quotes([[0.0]], [[0.0]], False),
        _quotes([[0.0]], [[0.0]], True),
        _quotes([[0.0]], [[0.0]], False),
    ]
    router = Router(_market(), cols, links, fixed=[0, 2])
    # A sells k kW to C through B: 2k kWh cross a link, each paying the fee
    for kw in (2.0, 1.0, 3.0):
        mix = router({0: np.array([-kw]), 2: np.array([kw])})
        assert mix.cost == pytest.approx(2 * kw * FEE, abs=1e-9)
        assert mix.flows is not None
        assert mix.flows[[0, 2], 0] == pytest.approx([kw, kw], abs=1e-9)
        # the relay is priced: C's kWh costs two fees more than A's
        assert mix.prices[2, 0] - mix.prices[0, 0] == pytest.approx(2 * FEE, abs=1e-9)
        assert mix.net[:, 0] == pytest.approx([-kw, 0.0, kw], abs=1e-9)


def test_restricted_master_solves_again_with_extra_costs() -> None:
    # pool, one period, no fee. X quotes buying 1 kW for 0.30 or nothing; Y quotes
    # selling 1 kW for -0.10 (it earns 0.10) or nothing. Y may sell into the pool alone
    # (unsold: it exports instead), so the cheapest mix is Y selling: -0.10. Buying costs
    # X 0.30 - 0.10 more than Y's sale earns: no trade.
    market = MarketTerms(1, 1.0, np.array([0.3]), np.array([0.1]), 0.0)
    cols = [
        _quotes([[1.0], [0.0]], [[0.30], [0.0]], False),
        _quotes([[-1.0], [0.0]], [[-0.10], [0.0]], False),
    ]
    master = RestrictedMaster(market, cols, None)
    first = master.solve()
    assert first.cost == pytest.approx(-0.10, abs=1e-9)
    assert first.net[:, 0] == pytest.approx([0.0, -1.0], abs=1e-9)
    # X's buying quote 0.35 cheaper (it costs it -0.05): X buys Y's kW, -0.15 in all
    cheaper = master.solve({0: np.array([-0.35, 0.0])})
    assert cheaper.cost == pytest.approx(-0.15, abs=1e-9)
    assert cheaper.net[:, 0] == pytest.approx([1.0, -1.0], abs=1e-9)
    assert cheaper.weights[0] == pytest.approx([1.0, 0.0], abs=1e-9)
    # and back: the extra costs hold for one solve only
    assert master.solve().cost == pytest.approx(-0.10, abs=1e-9)
    assert master.solve({1: np.array([-0.05, 0.0])}).cost == pytest.approx(-0.15, abs=1e-9)


@pytest.mark.parametrize("seed", [1, 2])
def test_split_master_against_the_lp(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # the large-VPP path on a VPP small enough for the oracle: every bilateral master
    # is split
    monkeypatch.setattr(repair, "SPLIT_ABOVE", 0)
    day = parse_dayahead(generate_vpp(20, 24, seed=seed, peers=5))
    optimum = central_optimum(day, bilateral=True)
    pool = central_optimum(day, bilateral=False)
    problem = build_problem(day)
    result = solve_dayahead(problem, "bilateral")
    doc = to_json(problem, result, grid_alone_costs(problem))
    assert check_feasible(day, doc) == pytest.approx(doc["total_cost"], abs=1e-6)
    assert optimum <= doc["total_cost"] + 1e-6
    # a heuristic master, yet within the 0.5 % here
    assert doc["total_cost"] <= optimum + 0.005 * abs(optimum)
    # the bound is the pool's (its optimum is below the bilateral one: relays pay twice)
    assert pool <= optimum + 1e-6
    assert pool - 1e-3 * abs(pool) <= doc["lower_bound"] <= optimum + 1e-6


def test_split_master_without_batteries(monkeypatch: pytest.MonkeyPatch) -> None:
    # nothing to locate: the routing mixes every prosumer's quotes, period by period
    monkeypatch.setattr(repair, "SPLIT_ABOVE", 0)
    data = generate_vpp(12, 24, seed=1, peers=3)
    for p in data["prosumers"]:
        p["battery_kwh"] = 0.0
    day = parse_dayahead(data)
    optimum = central_optimum(day, bilateral=True)
    problem = build_problem(day)
    doc = to_json(problem, solve_dayahead(problem, "bilateral"), grid_alone_costs(problem))
    assert check_feasible(day, doc) == pytest.approx(doc["total_cost"], abs=1e-6)
    assert optimum - 1e-6 <= doc["total_cost"] <= optimum + 0.005 * abs(optimum)


def test_bilateral_bound_starts_from_the_pool() -> None:
    # five peers on a ring of 20: the bilateral optimum is above the pool's; the pairs'
    # own steps leave their bound far below it, the pool's start does not
    day = parse_dayahead(generate_vpp(20, 24, seed=3, peers=5))
    optimum = central_optimum(day, bilateral=True)
    pool = central_optimum(day, bilateral=False)
    assert pool < optimum - 1e-3 * abs(optimum)
    problem = build_problem(day)
    iterations = 300
    result = solve_dayahead(problem, "bilateral", iterations=iterations)
    # the pool's phase stops within 0.1 % of its own optimum, and its bound holds here
    assert pool - 1e-3 * abs(pool) <= result.lower_bound <= optimum + 1e-6
    # the history holds both phases: the pool's iterations have no bilateral schedule
    first = [it for it in result.history if not np.isfinite(it.upper_bound)]
    assert 1 <= len(first) <= iterations
    assert len(result.history) <= 2 * iterations
    assert [it.iteration for it in result.history] == list(range(1, len(result.history) + 1))
