"""max-volume against its text: hand-worked books, and brute force over every integer
allocation of small networks for the most volume at one uniform price."""

from __future__ import annotations

import random

import pytest

from bench import parse_dict
from scheduler.market import clear_market
from tests.market_cases import oracle_max_volume, triangle, two_routers


def crossing(seed: int):
    """A triangle market whose asks and bids interleave (0.10 to 0.30), so that one
    uniform price often cannot suit every pair the optimum would trade."""
    rng = random.Random(200 + seed)
    data = triangle(rng, n_quotes=5 + seed % 2)
    for q in data["offers"] + data["bids"]:
        q["price"] = rng.randint(5, 15) / 50
    return data


CASES = [crossing(seed) for seed in range(12)]


def clear(data, mechanism="max-volume", **kw):
    return clear_market(*parse_dict(data), mechanism, **kw)


def one_router(offers, bids):
    return two_routers([(q, "X", n, p) for q, n, p in offers],
                       [(q, "X", n, p) for q, n, p in bids], loss_price=0.0)  # fmt: skip


def test_hand_worked_book():
    # offers s5 4 @ 5, s2 2 @ 2; bids b6 2 @ 6, b10 3 @ 10. Volume: 2 at price 2, 5 at 5
    # and at 6, 3 at 10. The most, 5, at 5 and 6 with the same best welfare 23: the lower
    # price decides who may trade. The highest ask that trades is 5, the lowest bid 6:
    # every packet at 5.5.
    r = clear(one_router([("s5", 4, 5.0), ("s2", 2, 2.0)], [("b6", 2, 6.0), ("b10", 3, 10.0)]))
    assert r.volume == 5 and r.welfare == 23.0
    assert {(t.buyer_price, t.seller_price) for t in r.trades} == {(5.5, 5.5)}
    sold = {s.id: s.packets for s in r.participants}
    assert sold == {"s5": 3, "s2": 2, "b6": 2, "b10": 3}
    assert r.settlement("b10").payment == 3 * 5.5 and r.settlement("s2").payment == -2 * 5.5


def test_one_uniform_price_may_trade_less_than_the_optimum():
    # a 1 @ 1 and c 1 @ 8; b 1 @ 3 and d 1 @ 9. Two packets would need a price >= 8
    # (c sells) and <= 3 (b buys): only one trades, a -> d (welfare 8), at the lowest
    # price reaching it, 1; the uniform price is (1 + 9) / 2 = 5.
    r = clear(one_router([("a", 1, 1.0), ("c", 1, 8.0)], [("b", 1, 3.0), ("d", 1, 9.0)]))
    assert [(t.seller, t.buyer, t.packets) for t in r.trades] == [("a", "d", 1)]
    assert r.trades[0].buyer_price == 5.0 and r.welfare == 8.0
    assert clear(one_router([("a", 1, 1.0), ("c", 1, 8.0)], [("b", 1, 3.0), ("d", 1, 9.0)]),
                 "vcg").welfare == 8.0  # fmt: skip


def test_a_packet_can_trade_at_a_loss_of_welfare():
    """Bid 0.12 covers ask 0.10 but not the 0.1666 the route loses (two accesses and
    line L at 1 per joule, see test_market_priority): max-volume still trades it, at
    0.11 each side; the operator pays the losses, and the optimum is no trade."""
    r = clear(two_routers([("S", "X", 1, 0.10)], [("B", "Y", 1, 0.12)]))
    assert r.volume == 1
    assert r.welfare == pytest.approx(0.02 - 0.1666, abs=1e-12)
    assert r.budget == pytest.approx(-0.1666, abs=1e-12)
    assert r.trades[0].buyer_price == pytest.approx(0.11, abs=1e-15)
    assert r.optimum_welfare == 0.0 and r.welfare_gap == pytest.approx(0.1466, abs=1e-12)


def test_nothing_crosses():
    r = clear(one_router([("s", 2, 5.0)], [("b", 2, 4.0)]))
    assert r.trades == () and r.volume == 0 and r.budget == 0.0


@pytest.mark.parametrize("data", CASES, ids=[f"triangle{i}" for i in range(len(CASES))])
def test_volume_and_welfare_match_brute_force(data):
    r = clear(data)
    volume, welfare = oracle_max_volume(data)
    assert r.volume == volume
    assert r.welfare == pytest.approx(welfare, abs=1e-9)
    prices = {(t.buyer_price, t.seller_price) for t in r.trades}
    assert len(prices) <= 1  # one uniform price
    for t in r.trades:
        assert t.ask <= t.buyer_price == t.seller_price <= t.value
    assert r.budget == pytest.approx(-r.loss_cost, abs=1e-12)


def test_the_cases_are_not_trivial():
    """Guard: the uniform price binds in some cases (it trades less than the optimum
    does, or differently), and the network binds in some."""
    differs = sum(clear(d).welfare < clear(d, "vcg").welfare - 1e-9 for d in CASES)
    assert differs >= 2
    volumes = [oracle_max_volume(d)[0] for d in CASES]
    assert sum(v > 0 for v in volumes) >= 8
