"""max-volume against hand-worked books and a brute-force most-volume search."""

from __future__ import annotations

import itertools

from bench.models import Bid, Offer
from scheduler.market.maxvolume import max_volume
from scheduler.market.priority import BookTrade


def _o(i: str, n: int, p: float) -> Offer:
    return Offer(id=i, terminal="t", packets=n, price=p)


def _b(i: str, n: int, p: float) -> Bid:
    return Bid(id=i, terminal="t", packets=n, price=p)


def test_hand_worked_book() -> None:
    # offers 2@2, 4@5; bids 3@10, 2@6. At 5 or 6: supply 6, demand 5 -> volume 5, the
    # most; reached by quoted prices 5 and 6 -> price 5.5. Offers rationed: s2 first.
    offers = [_o("s5", 4, 5.0), _o("s2", 2, 2.0)]
    bids = [_b("b6", 2, 6.0), _b("b10", 3, 10.0)]
    price, trades = max_volume(offers, bids)
    assert price == 5.5
    assert trades == (
        BookTrade("s2", "b10", 2, 5.5),
        BookTrade("s5", "b10", 1, 5.5),
        BookTrade("s5", "b6", 2, 5.5),
    )


def test_nothing_crosses() -> None:
    assert max_volume([_o("s", 2, 5.0)], [_b("b", 2, 4.0)]) == (None, ())


def _brute_volume(offers: list[Offer], bids: list[Bid]) -> int:
    # the most packets k such that k offer packets and k bid packets share one price
    ask = [o.price for o in offers for _ in range(o.packets)]
    val = [b.price for b in bids for _ in range(b.packets)]
    best = 0
    for k in range(1, min(len(ask), len(val)) + 1):
        for s in itertools.combinations(ask, k):
            if any(all(v >= max(s) for v in c) for c in itertools.combinations(val, k)):
                best = k
    return best


def test_volume_equals_brute_force_on_small_books() -> None:
    prices = [1.0, 3.0, 4.0, 7.0]
    for po, pb in itertools.product(itertools.permutations(prices, 2), repeat=2):
        offers = [_o("s0", 2, po[0]), _o("s1", 1, po[1])]
        bids = [_b("b0", 1, pb[0]), _b("b1", 2, pb[1])]
        _price, trades = max_volume(offers, bids)
        assert sum(t.packets for t in trades) == _brute_volume(offers, bids)
        ask = {o.id: o.price for o in offers}
        val = {b.id: b.price for b in bids}
        assert all(ask[t.seller] <= t.price <= val[t.buyer] for t in trades)
