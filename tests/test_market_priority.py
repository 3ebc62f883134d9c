"""price-priority against hand-worked books and a brute-force welfare optimum."""

from __future__ import annotations

import itertools

from bench.models import Bid, Offer
from scheduler.market.priority import BookTrade, book_welfare, price_priority


def _o(i: str, n: int, p: float) -> Offer:
    return Offer(id=i, terminal="t", packets=n, price=p)


def _b(i: str, n: int, p: float) -> Bid:
    return Bid(id=i, terminal="t", packets=n, price=p)


def test_hand_worked_book() -> None:
    # bids 10 (3 packets), 6 (2); offers 2 (2), 5 (4): bid 10 takes 2 @ 2 then 1 @ 5,
    # bid 6 takes 2 @ 5; welfare 8*2 + 5*1 + 1*2 = 23
    offers = [_o("s5", 4, 5.0), _o("s2", 2, 2.0)]
    bids = [_b("b6", 2, 6.0), _b("b10", 3, 10.0)]
    trades = price_priority(offers, bids)
    assert trades == (
        BookTrade("s2", "b10", 2, 6.0),
        BookTrade("s5", "b10", 1, 7.5),
        BookTrade("s5", "b6", 2, 5.5),
    )
    assert book_welfare(offers, bids, trades) == 23.0


def test_time_priority_breaks_price_ties() -> None:
    offers = [_o("first", 1, 3.0), _o("second", 1, 3.0)]
    assert price_priority(offers, [_b("b", 1, 4.0)]) == (BookTrade("first", "b", 1, 3.5),)


def test_no_trade_when_bid_below_offer() -> None:
    assert price_priority([_o("s", 2, 5.0)], [_b("b", 2, 4.0)]) == ()


def _brute_optimum(offers: list[Offer], bids: list[Bid]) -> float:
    # every packet-level assignment of bid packets to offer packets on a tiny book
    ask = [o.price for o in offers for _ in range(o.packets)]
    val = [b.price for b in bids for _ in range(b.packets)]
    best = 0.0
    for k in range(min(len(ask), len(val)) + 1):
        for s in itertools.combinations(ask, k):
            for v in itertools.combinations(val, k):
                best = max(best, sum(v) - sum(s))
    return best


def test_welfare_equals_brute_force_on_small_books() -> None:
    prices = [1.0, 3.0, 4.0, 7.0]
    for po, pb in itertools.product(itertools.permutations(prices, 2), repeat=2):
        offers = [_o("s0", 2, po[0]), _o("s1", 1, po[1])]
        bids = [_b("b0", 1, pb[0]), _b("b1", 2, pb[1])]
        got = book_welfare(offers, bids, price_priority(offers, bids))
        assert got == _brute_optimum(offers, bids)
