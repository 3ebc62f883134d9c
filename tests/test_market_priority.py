"""price-priority against its text: hand-worked books, an independent walk of the rule on
random networks, and the welfare optimum where the rule must reach it."""

from __future__ import annotations

import itertools
import random

import pytest

from bench import parse_dict
from scheduler.market import clear_market
from tests.market_cases import oracle_price_priority, triangle, two_routers


def bigger(data):
    """Quotes of 2-6 packets against 2-3 slots: the room on the routes binds."""
    for q in data["offers"] + data["bids"]:
        q["packets"] *= 2
    return data


CASES = [bigger(triangle(random.Random(100 + seed), n_quotes=4 + seed % 3)) for seed in range(16)]


def clear(data, mechanism="price-priority", **kw):
    return clear_market(*parse_dict(data), mechanism, **kw)


def one_router(offers, bids):
    """Every quote on its own terminal of router X; losses are not priced."""
    return two_routers([(q, "X", n, p) for q, n, p in offers],
                       [(q, "X", n, p) for q, n, p in bids], loss_price=0.0)  # fmt: skip


def rows(result):
    return [(t.seller, t.buyer, t.packets, t.buyer_price, t.seller_price) for t in result.trades]


def test_hand_worked_book():
    # bids 10 (3 packets), 6 (2); offers 2 (2), 5 (4). b10 takes 2 from s2 at (2+10)/2 = 6
    # and 1 from s5 at 7.5; b6 takes 2 from s5 at 5.5. Welfare 8*2 + 5*1 + 1*2 = 23.
    r = clear(one_router([("s5", 4, 5.0), ("s2", 2, 2.0)], [("b6", 2, 6.0), ("b10", 3, 10.0)]))
    assert rows(r) == [
        ("s2", "b10", 2, 6.0, 6.0),
        ("s5", "b10", 1, 7.5, 7.5),
        ("s5", "b6", 2, 5.5, 5.5),
    ]
    assert r.welfare == 23.0 and r.volume == 5 and r.budget == 0.0
    assert r.settlement("b10").payment == 2 * 6.0 + 7.5
    assert r.settlement("s5").payment == -(7.5 + 2 * 5.5)


def test_time_priority_breaks_price_ties():
    r = clear(one_router([("first", 1, 3.0), ("second", 1, 3.0)], [("b", 1, 4.0)]))
    assert rows(r) == [("first", "b", 1, 3.5, 3.5)]
    r = clear(one_router([("s", 1, 3.0)], [("early", 1, 4.0), ("late", 1, 4.0)]))
    assert rows(r) == [("s", "early", 1, 3.5, 3.5)]


def test_no_trade_when_the_bid_is_below_the_offer():
    r = clear(one_router([("s", 2, 5.0)], [("b", 2, 4.0)]))
    assert r.trades == () and r.welfare == 0.0


def test_the_highest_bid_goes_first_even_over_a_costly_route():
    """S (1 packet at 0.10, router X); B1 bids 0.30 at Y behind line L, B2 0.20 at X.
    A packet loses I^2 R tau = 100 * 0.02 * 0.0049 = 0.0098 J on each access and
    100 * 0.3 * 0.0049 = 0.147 J on L, at 1 per joule. B1 (the highest bid) gets it over
    L: its surplus 0.30 - 0.10 - 0.1666 = 0.0334 splits evenly. The optimum sells to B2
    instead (surplus 0.20 - 0.10 - 0.0196 = 0.0804)."""
    data = two_routers([("S", "X", 1, 0.10)], [("B1", "Y", 1, 0.30), ("B2", "X", 1, 0.20)])
    r = clear(data)
    (t,) = r.trades
    assert (t.seller, t.buyer, t.route) == ("S", "B1", ("TS", "L", "TB1"))
    assert t.loss_cost == pytest.approx(0.1666, abs=1e-12)
    assert t.buyer_price == pytest.approx(0.30 - 0.0334 / 2, abs=1e-12)
    assert t.seller_price == pytest.approx(0.10 + 0.0334 / 2, abs=1e-12)
    assert r.welfare == pytest.approx(0.0334, abs=1e-12)
    assert r.optimum_welfare == pytest.approx(0.0804, abs=1e-12)
    assert r.welfare_gap == pytest.approx(0.047, abs=1e-12)
    assert r.budget == pytest.approx(0.0, abs=1e-15)  # the operator keeps what it pays for losses


def test_a_route_whose_losses_exceed_the_surplus_is_not_taken():
    # 0.12 - 0.10 < 0.1666: no trade over L
    r = clear(two_routers([("S", "X", 1, 0.10)], [("B", "Y", 1, 0.12)]))
    assert r.trades == ()


@pytest.mark.parametrize("data", CASES, ids=[f"triangle{i}" for i in range(len(CASES))])
def test_the_walk_matches_the_rule_written_out(data):
    """An independent walk of docs/market.md's text over every simple route."""
    r = clear(data)
    expected = oracle_price_priority(data)
    got = [(t.seller, t.buyer, t.route, t.packets) for t in r.trades]
    assert got == [e[:4] for e in expected]
    for t, e in zip(r.trades, expected, strict=True):
        assert (t.buyer_price, t.seller_price) == pytest.approx(e[4:], abs=1e-12)


def test_the_cases_make_the_walk_bind():
    """Guard on the cases: some trades are cut by the room on a route, not by quotes."""
    cut = 0
    for data in CASES:
        left = {q["id"]: q["packets"] for q in data["offers"] + data["bids"]}
        for s, b, _route, n, _, _ in oracle_price_priority(data):
            left[s] -= n
            left[b] -= n
            cut += left[s] > 0 and left[b] > 0
    assert cut >= 3


def _brute_optimum(asks: list[float], values: list[float]) -> float:
    best = 0.0
    for k in range(min(len(asks), len(values)) + 1):
        for s in itertools.combinations(asks, k):
            for v in itertools.combinations(values, k):
                best = max(best, sum(v) - sum(s))
    return best


def test_on_one_router_without_losses_it_reaches_the_optimum():
    """The textbook walk down both sides of a book is welfare-optimal: brute force over
    every set of packets sold and bought."""
    prices = [1.0, 3.0, 4.0, 7.0]
    for po, pb in itertools.product(itertools.permutations(prices, 2), repeat=2):
        data = one_router(
            [("s0", 2, po[0]), ("s1", 1, po[1])], [("b0", 1, pb[0]), ("b1", 2, pb[1])]
        )
        asks = [po[0], po[0], po[1]]
        values = [pb[0], pb[1], pb[1]]
        assert clear(data).welfare == _brute_optimum(asks, values)
