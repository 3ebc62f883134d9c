"""Day-ahead P2P trading: the decomposition against an independent centralised LP, a
hand-worked case, exact feasibility, privacy and located input errors."""

from __future__ import annotations

import inspect
import typing

import numpy as np
import pytest

from bench.dayahead import DayAhead, parse_dayahead, parse_dayahead_text
from bench.errors import ScenarioError
from bench.vpp_generate import generate_vpp
from scheduler.dayahead import (
    ProsumerData,
    ProsumerLP,
    build_problem,
    joint_lp,
    solve_dayahead,
    solve_prosumer,
)
from scheduler.dayahead.document import to_json
from scheduler.dayahead.problem import grid_alone_costs
from tests.dayahead_oracle import central_optimum, check_feasible


def _solve(day: DayAhead, framework: str, iterations: int = 300) -> dict:
    problem = build_problem(day)
    result = solve_dayahead(problem, framework, iterations=iterations)
    return to_json(problem, result, grid_alone_costs(problem))


def _hand_case() -> DayAhead:
    # A has 2 kW of PV surplus in period 0; B needs 3 kW then and 1 kW in period 1.
    return parse_dayahead(
        {
            "dayahead": {
                "periods": 2,
                "period_h": 1.0,
                "grid_buy_price": [0.3, 0.3],
                "grid_sell_price": [0.1, 0.1],
                "p2p_fee": 0.02,
            },
            "prosumers": [
                {"id": "A", "load_kw": [1, 0], "pv_kw": [3, 0], "grid_kw": 10, "peers": ["B"]},
                {"id": "B", "load_kw": [3, 1], "pv_kw": [0, 0], "grid_kw": 10},
            ],
        }
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
    assert doc["trades"][0]["from"] == "A" and doc["trades"][0]["to"] == "B"
    assert check_feasible(day, doc) == pytest.approx(doc["total_cost"], abs=1e-9)


def test_hand_worked_pool_price_is_the_kkt_price() -> None:
    # period 0: demand at the pool exceeds A's 2 kWh until B is indifferent with the grid,
    # lambda + fee = 0.3, so the unique clearing price is 0.28 (A's supply is fixed at
    # any lambda in (0.1, 0.3)); the centralised LP's dual must say the same
    problem = build_problem(_hand_case())
    lp = joint_lp(problem, bilateral=False)
    assert lp.pool_dual is not None
    assert lp.pool_dual[0] == pytest.approx(0.28, abs=1e-9)
    result = solve_dayahead(problem, "pool", iterations=300)
    assert result.prices[0][0] == pytest.approx(0.28, abs=0.01)


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("framework", ["pool", "bilateral"])
def test_decomposed_against_centralised_lp(framework: str, seed: int) -> None:
    day = parse_dayahead(generate_vpp(8, 12, seed=seed, peers=3))
    optimum = central_optimum(day, framework == "bilateral")
    doc = _solve(day, framework, iterations=400)
    assert doc["lower_bound"] <= optimum + 1e-6
    assert optimum <= doc["total_cost"] + 1e-6
    # pool: within 0.5 % of the optimum; bilateral (bang-bang per link): within 2 %
    within = 0.005 if framework == "pool" else 0.02
    assert doc["total_cost"] <= optimum + within * abs(optimum)
    assert check_feasible(day, doc) == pytest.approx(doc["total_cost"], abs=1e-6)


def test_bilateral_trades_only_along_peer_links() -> None:
    day = parse_dayahead(generate_vpp(8, 12, seed=3, peers=2))
    doc = _solve(day, "bilateral", iterations=100)
    links = set(day.links())
    assert doc["trades"]
    for trade in doc["trades"]:
        assert (trade["from"], trade["to"]) in links
    # every sell and buy is accounted for by trades along links
    for p in day.prosumers:
        out = sum(np.asarray(t["kw"]) for t in doc["trades"] if t["from"] == p.id)
        got = sum(np.asarray(t["kw"]) for t in doc["trades"] if t["to"] == p.id)
        assert np.allclose(doc["prosumers"][p.id]["s"], out + np.zeros(12), atol=1e-9)
        assert np.allclose(doc["prosumers"][p.id]["b"], got + np.zeros(12), atol=1e-9)


def test_privacy_subproblem_sees_own_data_and_prices_only() -> None:
    # structural: the subproblem is built from one ProsumerData and then given prices
    hints = typing.get_type_hints(solve_prosumer)
    assert list(inspect.signature(solve_prosumer).parameters) == [
        "own",
        "sell_price",
        "buy_price",
    ]
    assert hints["own"] is ProsumerData
    assert list(inspect.signature(ProsumerLP.solve).parameters) == [
        "self",
        "sell_price",
        "buy_price",
    ]
    # ProsumerData holds one prosumer's fields and the public market terms, no others
    fields = set(ProsumerData.__dataclass_fields__)
    assert fields == {
        "id",
        "load",
        "pv",
        "battery_kwh",
        "battery_kw",
        "efficiency",
        "soc0",
        "grid_kw",
        "market",
    }
    problem = build_problem(_hand_case())
    own = problem.prosumers[1]
    # B alone at pool price 0.28 buys exactly its need beyond nothing: 3 and 1 kWh at
    # 0.28 + 0.02 = the grid's 0.3 is a tie; at 0.2 it buys all from the pool
    r = solve_prosumer(own, np.array([[0.2, 0.2]]), np.array([[0.2, 0.2]]))
    assert r.b[0] == pytest.approx([3.0, 1.0], abs=1e-9)
    assert r.value == pytest.approx(4 * 0.22, abs=1e-9)


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
    ],
)
def test_bad_input_is_one_located_line(old: str, new: str, expected: str) -> None:
    text = _GOOD.replace(old, new, 1)
    assert text != _GOOD
    with pytest.raises(ScenarioError) as info:
        parse_dayahead_text(text, "f.toml")
    assert str(info.value).startswith(expected)
    assert "\n" not in str(info.value)
