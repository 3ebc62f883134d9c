"""Day-ahead P2P trading: the decomposition against an independent centralised LP,
hand-worked cases, relaying, tight grids, sparse peer graphs, exact feasibility and
located input errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bench.dayahead import DayAhead, parse_dayahead, parse_dayahead_text
from bench.errors import ScenarioError
from bench.vpp_generate import generate_vpp, peer_graph
from scheduler.dayahead import build_problem, solve_dayahead
from scheduler.dayahead.document import to_json
from scheduler.dayahead.problem import grid_alone_costs
from tests.dayahead_oracle import central_optimum, check_feasible, pool_price_range

pytestmark = pytest.mark.timeout(300)


def _solve(day: DayAhead, framework: str, iterations: int = 300, **kw: Any) -> dict:
    problem = build_problem(day)
    result = solve_dayahead(problem, framework, iterations=iterations, **kw)
    return to_json(problem, result, grid_alone_costs(problem))


def _two_periods(sell: float, prosumers: list[dict]) -> DayAhead:
    """Two one-hour periods, the grid buying at 0.3 and selling at ``sell``, fee 0.02."""
    market = {"periods": 2, "period_h": 1.0, "grid_buy_price": [0.3, 0.3],
              "grid_sell_price": [sell, sell], "p2p_fee": 0.02}  # fmt: skip
    return parse_dayahead({"dayahead": market, "prosumers": prosumers})


def _hand_case() -> DayAhead:
    # A has 2 kW of PV surplus in period 0; B needs 3 kW then and 1 kW in period 1.
    return _two_periods(
        0.1,
        [
            {"id": "A", "load_kw": [1, 0], "pv_kw": [3, 0], "grid_kw": 10, "peers": ["B"]},
            {"id": "B", "load_kw": [3, 1], "pv_kw": [0, 0], "grid_kw": 10},
        ],
    )


@pytest.mark.parametrize("framework", ["pool", "bilateral"])
def test_hand_worked_two_prosumers(framework: str) -> None:
    day = _hand_case()
    doc = _solve(day, framework)
    # A sells its 2 kWh to B (fee 0.04); B imports 1 + 1 kWh at 0.3: 0.64. Alone:
    # A exports 2 at 0.1 (-0.2), B imports 4 at 0.3 (1.2): 1.0; the VPP saves 0.36.
    assert doc["total_cost"] == pytest.approx(0.64, abs=1e-6)
    assert doc["grid_alone_cost"] == pytest.approx(1.0, abs=1e-9)
    assert doc["prosumers"]["A"]["s"][0] == pytest.approx(2.0, abs=1e-6)
    assert [(t["from"], t["to"]) for t in doc["trades"]] == [("A", "B")]
    assert check_feasible(day, doc) == pytest.approx(doc["total_cost"], abs=1e-9)
    # the decomposition proves it: the Lagrangian bound (the prosumers' optima at the
    # prices, summed) reaches the optimum
    assert 0.64 - 1e-3 <= doc["lower_bound"] <= 0.64 + 1e-9


def test_hand_worked_pool_price_is_the_kkt_price() -> None:
    # period 0: demand at the pool exceeds A's 2 kWh until B is indifferent with the grid,
    # lambda + fee = 0.3, so the unique clearing price is 0.28 (A's supply is fixed at
    # any lambda in (0.1, 0.3)); the oracle's price range says the same
    day = _hand_case()
    lo, hi = pool_price_range(day)
    assert lo[0] == pytest.approx(0.28, abs=1e-6) and hi[0] == pytest.approx(0.28, abs=1e-6)
    doc = _solve(day, "pool")
    assert doc["prices"][0] == pytest.approx(0.28, abs=2e-3)


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("framework", ["pool", "bilateral"])
def test_decomposed_against_centralised_lp(framework: str, seed: int) -> None:
    day = parse_dayahead(generate_vpp(8, 12, seed=seed, peers=3))
    optimum = central_optimum(day, framework == "bilateral")
    doc = _solve(day, framework)
    assert doc["lower_bound"] <= optimum + 1e-6
    assert optimum <= doc["total_cost"] + 1e-6
    assert doc["total_cost"] <= optimum + 0.005 * abs(optimum)
    # the bound proves it too: at the master's prices it closes to within 0.5 %
    assert doc["lower_bound"] >= optimum - 0.005 * abs(optimum)
    assert check_feasible(day, doc) == pytest.approx(doc["total_cost"], abs=1e-6)


@pytest.mark.parametrize("seed", [3, 4])
def test_pool_prices_match_the_lp_where_unique(seed: int) -> None:
    day = parse_dayahead(generate_vpp(6, 8, seed=seed, peers=0))
    lo, hi = pool_price_range(day)
    doc = _solve(day, "pool", tolerance=1e-5)
    price = np.asarray(doc["prices"])
    unique = hi - lo < 1e-6
    assert unique.sum() >= 3  # the instances have periods with one clearing price
    assert np.abs(price - lo)[unique].max() < 5e-3
    # elsewhere the price lies in the range the optimum allows
    assert (price >= lo - 5e-3).all() and (price <= hi + 5e-3).all()


def _chain() -> DayAhead:
    # A has 5 kW of PV it cannot export (grid_kw 1); C needs 4 kW but imports at most 1;
    # they are not peers: A's surplus reaches C only through B, which buys from A and
    # sells to C in the same period
    return _two_periods(
        0.05,
        [
            {"id": "A", "load_kw": [0, 0], "pv_kw": [5, 0], "grid_kw": 1, "peers": ["B"]},
            {"id": "B", "load_kw": [0.5, 0.5], "pv_kw": [0, 0], "grid_kw": 1, "peers": ["C"]},
            {"id": "C", "load_kw": [4, 1], "pv_kw": [0, 0], "grid_kw": 1},
        ],
    )


def test_chain_relay_against_the_lp() -> None:
    day = _chain()
    optimum = central_optimum(day, bilateral=True)
    # by hand: period 0, A's free PV covers B's 0.5 and all of C's 4 through B (fees
    # 0.02 x (4.5 + 4) = 0.17) and A exports the last 0.5 (-0.025); period 1, C and B
    # import 1.5 (0.45): 0.595
    assert optimum == pytest.approx(0.595, abs=1e-9)
    doc = _solve(day, "bilateral")
    assert doc["lower_bound"] <= optimum + 1e-9
    assert doc["total_cost"] == pytest.approx(optimum, abs=1e-6)
    check_feasible(day, doc)
    b = doc["prosumers"]["B"]
    assert b["b"][0] == pytest.approx(4.5, abs=1e-6) and b["s"][0] == pytest.approx(4.0, abs=1e-6)


@pytest.mark.parametrize("framework", ["pool", "bilateral"])
def test_tight_grid_is_feasible_and_near_the_optimum(framework: str) -> None:
    # every grid connection 1 kW: evening loads and midday PV need the trades to balance
    data = generate_vpp(12, 12, seed=5, peers=3)
    for p in data["prosumers"]:
        p["grid_kw"] = 1.0
    day = parse_dayahead(data)
    optimum = central_optimum(day, framework == "bilateral")
    doc = _solve(day, framework)
    assert doc["lower_bound"] <= optimum + 1e-6 <= doc["total_cost"] + 2e-6
    assert doc["total_cost"] <= optimum + 0.005 * abs(optimum)
    assert doc["lower_bound"] >= optimum - 0.005 * abs(optimum)
    check_feasible(day, doc)
    # some prosumers could not cover their load with the grid alone
    assert any(p["grid_alone"] is None for p in doc["prosumers"].values())
    assert doc["grid_alone_cost"] is None


@pytest.mark.parametrize(
    ("n", "seed", "peers"),
    [
        (8, 6, 1),  # pairs only
        (8, 6, 2),  # one ring, where surplus travels hop by hop
        # five peers each: many links share few prosumers. The operator's master must
        # not lose the quotes it mixes when prosumers forget old ones (once +0.7 %)
        (10, 1, 5),
    ],
)
def test_peer_graphs_sparse_to_dense(n: int, seed: int, peers: int) -> None:
    day = parse_dayahead(generate_vpp(n, 12, seed=seed, peers=peers))
    optimum = central_optimum(day, bilateral=True)
    doc = _solve(day, "bilateral")
    assert doc["lower_bound"] <= optimum + 1e-6 <= doc["total_cost"] + 2e-6
    assert doc["total_cost"] <= optimum + 0.005 * abs(optimum)
    check_feasible(day, doc)


def test_check_feasible_catches_a_broken_pair() -> None:
    day = _hand_case()
    doc = _solve(day, "bilateral")
    doc["trades"][0]["kw"][0] -= 0.5  # A's sells no longer match what B received
    with pytest.raises(AssertionError):
        check_feasible(day, doc)


@pytest.mark.parametrize(("n", "peers"), [(10, 2), (10, 3), (9, 3), (6, 5), (12, 4)])
def test_generator_gives_each_prosumer_its_peers(n: int, peers: int) -> None:
    data = generate_vpp(n, 4, seed=0, peers=peers)
    counts = [len(p["peers"]) for p in data["prosumers"]]
    # odd n and odd peers: one prosumer has nobody opposite it
    short = 1 if n % 2 and peers % 2 else 0
    assert sorted(counts) == [peers - 1] * short + [peers] * (n - short)
    for p in data["prosumers"]:
        for q in p["peers"]:
            other = next(r for r in data["prosumers"] if r["id"] == q)
            assert p["id"] in other["peers"]  # links go both ways, every list says so
    assert peer_graph(4, 0) == [[], [], [], []]


_GOOD = """
[dayahead]
periods = 2
period_h = 1.0
grid_buy_price = [0.3, 0.3]
grid_sell_price = [0.1, 0.1]
p2p_fee = 0.01

[[prosumers]]
id = "a"
load_kw = [1.0, 1.0]
pv_kw = [0.0, 2.0]
grid_kw = 5.0
peers = ["b"]

[[prosumers]]
id = "b"
load_kw = [1.0, 1.0]
pv_kw = [0.0, 0.0]
grid_kw = 5.0
"""


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("pv_kw = [0.0, 2.0]", "pv_kw = [0.0]", "f.toml:12: prosumers[a].pv_kw: has 1 values"),
        (
            "grid_sell_price = [0.1, 0.1]",
            "grid_sell_price = [0.1, 0.5]",
            "f.toml:5: dayahead.grid_buy_price: period 1: buy price 0.3 is below",
        ),
        ('peers = ["b"]', 'peers = ["zz"]', "f.toml:14: prosumers[a].peers: unknown peer 'zz'"),
        (
            "grid_kw = 5.0\npeers",
            "grid_kw = -1.0\npeers",
            "f.toml:13: prosumers[a].grid_kw: must be >= 0",
        ),
        ('id = "b"', 'id = "a"', "f.toml:17: prosumers[1].id: duplicate prosumer id 'a'"),
        (
            "grid_kw = 5.0\npeers",
            "grid_kw = 5.0\nbattery = 3\npeers",
            "f.toml:14: prosumers[a].battery: unknown field; did you mean battery_kw",
        ),
    ],
)
def test_bad_input_is_one_located_line(old: str, new: str, expected: str) -> None:
    text = _GOOD.replace(old, new, 1)
    assert text != _GOOD
    with pytest.raises(ScenarioError) as info:
        parse_dayahead_text(text, "f.toml")
    assert str(info.value).startswith(expected)
    assert "\n" not in str(info.value)


def test_every_problem_once_and_no_spurious_one() -> None:
    # --all-errors lists ScenarioError.problems: one per bad prosumer, nothing about the
    # list itself (pydantic's min_length used to add "at least 1 item" when all were bad)
    text = _GOOD.replace("grid_kw = 5.0", "grid_kw = -1.0")
    with pytest.raises(ScenarioError) as info:
        parse_dayahead_text(text, "f.toml")
    assert [str(p) for p in info.value.problems] == [
        "f.toml:13: prosumers[a].grid_kw: must be >= 0.0 (got -1.0)",
        "f.toml:20: prosumers[b].grid_kw: must be >= 0.0 (got -1.0)",
    ]
    empty = "prosumers = []" + _GOOD[: _GOOD.index("[[prosumers]]")]
    with pytest.raises(ScenarioError, match=r"^f.toml:1: prosumers: no prosumers; give at"):
        parse_dayahead_text(empty, "f.toml")
