"""One prosumer's problem: the exact dynamic programme against HiGHS on the same LP
written independently, and privacy: what a prosumer is given and what it gives back,
and that the reported schedule never comes from a central model."""

from __future__ import annotations

import dataclasses
import inspect
import typing

import numpy as np
import pytest

from bench.dayahead import parse_dayahead
from bench.vpp_generate import generate_vpp
from scheduler.dayahead import balance, build_problem, joint, master, repair, solve_dayahead
from scheduler.dayahead import prosumer as prosumer_module
from scheduler.dayahead.kernel import respond
from scheduler.dayahead.problem import ProsumerData
from scheduler.dayahead.prosumer import Columns, Prosumer, Quote, Settled, solve_prosumer
from tests.dayahead_oracle import prosumer_optimum


def _case(rng: np.random.Generator) -> dict:
    T = int(rng.integers(1, 14))
    h = float(rng.choice([0.25, 1.0, 2.0]))
    buy = rng.uniform(0.1, 0.4, T)
    sell = buy * rng.uniform(0.0, 1.0, T)
    pool = rng.uniform(-0.05, 0.5, T)  # prices below zero and above the grid's too
    fee = float(rng.choice([0.0, 0.01, 0.05]))
    grid = float(rng.uniform(0.0, 4.0))
    load, pv = rng.uniform(0, 3, T), rng.uniform(0, 4, T) * (rng.random() < 0.7)
    battery = rng.random() < 0.7
    e_cap = float(rng.uniform(1, 12)) if battery else 0.0
    kw = float(rng.uniform(0.3, 5)) if battery else 0.0
    e0 = float(rng.choice([0.0, rng.uniform(0, 1), 1.0])) * e_cap
    big = 1 + grid + kw + float(np.abs(load - pv).max()) + 2 * (load.max() + pv.max() + kw + grid)
    # grid in, grid out, pool sell, pool buy, curtail, unmet (at a price nothing reaches)
    source = np.array([True, False, False, True, False, True])
    price = np.vstack([buy, sell, pool, pool + fee, np.zeros(T), np.full(T, 1e4)])
    cap = np.vstack(
        [
            np.full(T, grid),
            np.full(T, grid),
            pv + kw + grid,
            load + kw + grid,
            np.full(T, big),
            np.full(T, big),
        ]
    )
    if rng.random() < 0.3:
        cap[2:4] = 0.0  # no trades: the grid alone
    return dict(y0=load - pv, price=price, cap=cap, source=source, h=h,
                eta=float(rng.uniform(0.7, 1.0)), e_cap=e_cap, kw=kw, e0=e0)  # fmt: skip


def test_dynamic_programme_is_the_lp_optimum() -> None:
    rng = np.random.default_rng(7)
    for _ in range(120):
        c = _case(rng)
        T, C = len(c["y0"]), len(c["source"])
        q, e = np.zeros((C, T)), np.zeros(T + 1)
        charge, discharge = np.zeros(T), np.zeros(T)
        value = respond(
            c["y0"], c["price"], c["cap"], c["source"], c["h"], c["eta"], c["e_cap"],
            c["kw"], c["e0"], q, e, charge, discharge,
        )  # fmt: skip
        best = prosumer_optimum(
            c["y0"], c["price"], c["cap"], c["source"], c["h"], c["eta"], c["e_cap"],
            c["kw"], c["e0"],
        )  # fmt: skip
        assert value == pytest.approx(best, rel=1e-8, abs=1e-8)
        # and the schedule it returns is one that achieves it
        sign = np.where(c["source"], 1.0, -1.0)
        assert ((sign[:, None] * q).sum(axis=0) >= c["y0"] + charge - discharge - 1e-9).all()
        assert (q >= 0).all() and (q <= c["cap"] + 1e-9).all()
        assert e[0] == pytest.approx(c["e0"]) and e[T] >= c["e0"] - 1e-9
        step = (c["eta"] * charge - discharge / c["eta"]) * c["h"]
        assert np.allclose(np.diff(e), step, atol=1e-9)
        assert (e >= -1e-12).all() and (e <= c["e_cap"] + 1e-9).all()
        assert h_cost(c, q) == pytest.approx(value, abs=1e-9)


def h_cost(c: dict, q: np.ndarray) -> float:
    sign = np.where(c["source"], 1.0, -1.0)
    return c["h"] * float(np.sum(sign[:, None] * c["price"] * q))


def _fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def test_privacy_what_a_prosumer_is_given_and_gives_back() -> None:
    # built from its own data and the public caps of its channels
    params = inspect.signature(Prosumer.__init__).parameters
    assert list(params) == ["self", "own", "sell_cap", "buy_cap"]
    assert typing.get_type_hints(Prosumer.__init__)["own"] is ProsumerData
    # afterwards: prices, weights over its own quotes, or trade quantities
    assert list(inspect.signature(Prosumer.respond).parameters) == [
        "self", "sell_price", "buy_price"]  # fmt: skip
    assert list(inspect.signature(Prosumer.combine).parameters) == ["self", "weights"]
    assert list(inspect.signature(Prosumer.used).parameters) == ["self", "weights"]
    assert list(inspect.signature(Prosumer.settle).parameters) == ["self", "sells", "buys"]
    # or, in the bilateral framework, the quotes its own pool self gave (no other's)
    assert list(inspect.signature(Prosumer.recall).parameters) == ["self", "other"]
    # what it gives back: trade quantities and numbers, never load, PV or battery
    assert _fields(Quote) == {"value", "s", "b", "short", "short_kw"}
    # (and its quotes' serial numbers: a counter, so the operator can keep its columns)
    assert _fields(Columns) == {"net", "bought", "grid", "separable", "ids"}
    assert _fields(Settled) == {"cost", "short"}
    # ProsumerData holds one prosumer's fields and the public market terms, no others
    assert _fields(ProsumerData) == {
        "id", "load", "pv", "battery_kwh", "battery_kw", "efficiency", "soc0", "grid_kw",
        "market"}  # fmt: skip
    assert list(inspect.signature(solve_prosumer).parameters) == [
        "own", "sell_price", "buy_price"]  # fmt: skip


def _walk(value: object, seen: set[int]) -> typing.Iterator[object]:
    if id(value) in seen:
        return
    seen.add(id(value))
    yield value
    if isinstance(value, dict):
        for v in value.values():
            yield from _walk(v, seen)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _walk(v, seen)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _walk(getattr(value, f.name), seen)


@pytest.mark.parametrize(("framework", "split"), [("pool", False), ("bilateral", False),
                                                  ("bilateral", True)])  # fmt: skip
def test_privacy_the_operator_sees_quotes_only(framework: str, split: bool, monkeypatch) -> None:
    if split:  # the large-VPP master on a small VPP
        monkeypatch.setattr(repair, "SPLIT_ABOVE", 0)
    problem = build_problem(parse_dayahead(generate_vpp(8, 8, seed=2, peers=3)))
    private = [p.load for p in problem.prosumers] + [p.pv for p in problem.prosumers]
    calls = []

    def spy(module: object, name: str) -> None:
        real = getattr(module, name)

        def wrapped(*args: object, **kwargs: object) -> object:
            calls.append(name)
            for v in _walk((args, kwargs), set()):
                # no prosumer, none of its data, not even an array equal to its load or PV
                assert not isinstance(v, ProsumerData | Prosumer), name
                if isinstance(v, np.ndarray):
                    for arr in private:
                        assert not (v.shape == arr.shape and np.array_equal(v, arr)), name
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapped)

    spy(repair, "restricted_master")
    spy(repair, "split_master")
    spy(repair, "pool_balance")
    spy(repair, "elastic_balance")

    def central(*args: object, **kwargs: object) -> None:
        raise AssertionError("the centralised LP was used")

    monkeypatch.setattr(joint, "_central", central)
    result = solve_dayahead(problem, framework, iterations=30)
    assert ("split_master" if split else "restricted_master") in calls
    assert "elastic_balance" in calls
    assert result.total_cost > 0
    # the operator's modules do not even import the prosumers' data type
    for module in (balance, master):
        assert "ProsumerData" not in vars(module)


def test_a_prosumer_recalls_only_its_own_quotes() -> None:
    problem = build_problem(parse_dayahead(generate_vpp(3, 4, seed=2, peers=2)))
    a, b = problem.prosumers[:2]
    none = np.zeros((1, 4))
    pool_a = Prosumer(a, a.sell_cap()[None, :], a.buy_cap()[None, :])
    pool_a.respond(none, none)
    mine = Prosumer(a, np.tile(none + 5, (2, 1)), np.tile(none + 5, (2, 1)))
    mine.recall(pool_a)
    assert np.array_equal(mine.columns().net, pool_a.columns().net)
    assert np.array_equal(mine.columns().ids, pool_a.columns().ids)
    with pytest.raises(ValueError, match="quotes offered to"):
        Prosumer(b, none + 5, none + 5).recall(pool_a)


def test_quote_serials_count_what_the_operator_was_given(monkeypatch) -> None:
    monkeypatch.setattr(prosumer_module, "KEEP", 3)
    problem = build_problem(parse_dayahead(generate_vpp(3, 4, seed=2, peers=2)))
    own = problem.prosumers[0]
    agent = Prosumer(own, own.sell_cap()[None, :], own.buy_cap()[None, :])
    given = {}  # serial -> net purchase, as the operator was given them
    levels = np.linspace(-0.5, 0.5, 12)
    for level in levels:
        price = np.full((1, 4), level)
        agent.respond(price, price)
        cols = agent.columns()
        for k, net in zip(cols.ids.tolist(), cols.net, strict=True):
            # a quote keeps its serial while remembered
            assert np.array_equal(given.setdefault(k, net.copy()), net)
    # one new serial per new quote: 0, 1, 2, ... with none skipped
    assert sorted(given) == list(range(len(given))) and len(given) > 3
    # quotes it quoted and forgot between two looks get no serial: the operator cannot
    # count schedules it never saw
    fresh = 0
    rng = np.random.default_rng(3)
    for _ in range(20):
        price = rng.uniform(-0.5, 0.5, (1, 4))  # a price per period: other schedules
        agent.respond(price, price)
        fresh += agent.fresh
    assert fresh > 3  # more new quotes than it keeps: some were forgotten unseen
    new = sorted(set(agent.columns().ids.tolist()) - set(given))
    assert new == list(range(len(given), len(given) + len(new)))
