"""The bilateral framework on large VPPs: the pool's prices and quotes as its start, the
split master (pool mixes for the batteries, then located by the routing's node prices)
and the LPs it keeps warm, against hand-worked cases and the independent centralised LP."""

from __future__ import annotations

import numpy as np
import pytest

from bench.dayahead import parse_dayahead
from bench.vpp_generate import generate_vpp
from scheduler.dayahead import build_problem, repair, solve_dayahead
from scheduler.dayahead import prosumer as prosumer_module
from scheduler.dayahead.document import to_json
from scheduler.dayahead.master import UNMET, RestrictedMaster, Router, WarmMaster
from scheduler.dayahead.problem import MarketTerms, grid_alone_costs
from scheduler.dayahead.prosumer import Columns
from scheduler.dayahead.solver import Lagrangian, start_prices
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
    # the pool's phase (120 iterations) closes its bound to within 0.1 % of its own
    # optimum, and that bound holds here
    assert pool - 1e-3 * abs(pool) <= result.lower_bound <= optimum + 1e-6
    # the history holds both phases: the pool's iterations have no bilateral schedule
    first = [it for it in result.history if not np.isfinite(it.upper_bound)]
    assert 1 <= len(first) <= iterations
    assert len(result.history) <= 2 * iterations
    assert [it.iteration for it in result.history] == list(range(1, len(result.history) + 1))


@pytest.mark.parametrize("framework", ["pool", "bilateral"])
def test_warm_master_solves_on_as_a_fresh_one_would(framework: str, monkeypatch) -> None:
    # Quotes come and go (each prosumer remembers 4): the kept master adds the new ones,
    # fixes the forgotten ones and the old hull segments at 0, and resizes the segments
    # it keeps; each solve must cost what a master built from scratch costs.
    monkeypatch.setattr(prosumer_module, "KEEP", 4)
    problem = build_problem(parse_dayahead(generate_vpp(12, 8, seed=3, peers=3)))
    lagrangian = Lagrangian(problem, framework)
    links = None if framework == "pool" else lagrangian.net.arcs
    rng = np.random.default_rng(5)
    base = start_prices(problem, lagrangian.net.count)
    warm = WarmMaster()
    kept = []
    for _ in range(8):
        lagrangian(base + rng.normal(0.0, 0.06, base.shape))
        columns = [a.columns() for a in lagrangian.agents]
        mix = warm.solve(problem.market, columns, links)
        fresh = RestrictedMaster(problem.market, columns, links).solve()
        assert mix.cost == pytest.approx(fresh.cost, rel=1e-9, abs=1e-9)
        kept.append(warm.master)
        # the mix's own cost: its weights over the quotes it was given, the fees on
        # the flows, and what stays unbalanced at the unmet bids' price (selling less
        # is free): the rows read net purchase + sent - received
        m = problem.market
        fee = 0.0 if links is not None else m.period_h * m.fee
        own = 0.0
        for w, col in zip(mix.weights, columns, strict=True):
            cost = col.grid + fee * col.bought
            own += float(w @ cost.sum(axis=1)) if w.ndim == 1 else float(np.sum(w * cost))
        if links is None:
            left = mix.net.sum(axis=0)
        else:
            assert mix.flows is not None
            own += m.period_h * m.fee * float(mix.flows.sum())
            left = mix.net.copy()
            for (a, z), x in zip(links, mix.flows, strict=True):
                left[a] += x
                left[z] -= x
        unmet = m.period_h * UNMET * (1.0 + float(m.buy.max()))
        own += unmet * float(np.maximum(left, 0.0).sum())
        assert own == pytest.approx(mix.cost, rel=1e-7, abs=1e-7)
    assert all(m is kept[0] for m in kept[:4])  # solved on, not built anew
    assert kept[0].dead > 0  # forgotten quotes were dropped on the way


def test_warm_master_resizes_a_slope_it_keeps() -> None:
    # pool, one period, no fee. Y sells 2 kW (earning 0.8); X, without a battery, saves
    # 0.30 per kW it buys, up to 1 kW. Then X quotes buying 2 kW (saving 0.60): the same
    # slope, now 2 kW long, so X buys all of Y's 2 kW.
    market = MarketTerms(1, 1.0, np.array([0.3]), np.array([0.1]), 0.0)
    y = Columns(
        np.array([[-2.0], [0.0]]), np.zeros((2, 1)), np.array([[-0.8], [0.0]]), False, np.arange(2)
    )

    def x(n: int) -> Columns:
        net = np.arange(n, dtype=np.float64)[:, None]
        return Columns(net, net, -0.3 * net, True, np.arange(n))

    warm = WarmMaster()
    assert warm.solve(market, [x(2), y], None).cost == pytest.approx(-0.8 - 0.3, abs=1e-9)
    master = warm.master
    mix = warm.solve(market, [x(3), y], None)
    assert warm.master is master
    assert mix.cost == pytest.approx(-0.8 - 0.6, abs=1e-9)
    assert mix.net[:, 0] == pytest.approx([2.0, -2.0], abs=1e-9)


def test_warm_master_is_built_anew_for_another_framework() -> None:
    problem = build_problem(parse_dayahead(generate_vpp(6, 4, seed=2, peers=2)))
    pool, pairs = Lagrangian(problem, "pool"), Lagrangian(problem, "bilateral")
    pool(start_prices(problem, 1))
    pairs(start_prices(problem, pairs.net.count))
    warm = WarmMaster()
    warm.solve(problem.market, [a.columns() for a in pool.agents], None)
    first = warm.master
    columns = [a.columns() for a in pairs.agents]
    mix = warm.solve(problem.market, columns, pairs.net.arcs)
    assert warm.master is not first and warm.master is not None and warm.master.bilateral
    fresh = RestrictedMaster(problem.market, columns, pairs.net.arcs).solve()
    assert mix.cost == pytest.approx(fresh.cost, rel=1e-9, abs=1e-9)
