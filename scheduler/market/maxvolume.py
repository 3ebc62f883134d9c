"""Max-volume ("maximum utilisation"): one uniform price that clears the most packets.

At a price p the supply is the packets offered at or below p and the demand the packets
bid at or above p; the volume is min(supply, demand). Volume is quasi-concave in p, so
the prices reaching the most volume form an interval. Tie rule: the clearing price is
the midpoint of the lowest and highest quoted prices that reach it. The long side is
rationed by price, then time (book order); every trade is at the clearing price.
"""

from __future__ import annotations

from collections.abc import Sequence

from bench.models import Bid, Offer
from scheduler.market.priority import BookTrade


def _volume(offers: Sequence[Offer], bids: Sequence[Bid], p: float) -> int:
    supply = sum(o.packets for o in offers if o.price <= p)
    demand = sum(b.packets for b in bids if b.price >= p)
    return min(supply, demand)


def max_volume(
    offers: Sequence[Offer], bids: Sequence[Bid]
) -> tuple[float | None, tuple[BookTrade, ...]]:
    """(clearing price, trades); the price is None when nothing can trade."""
    prices = sorted({q.price for q in (*offers, *bids)})
    vols = {p: _volume(offers, bids, p) for p in prices}
    best = max(vols.values(), default=0)
    if best == 0:
        return None, ()
    reach = [p for p in prices if vols[p] == best]
    price = (reach[0] + reach[-1]) / 2
    asks = sorted(
        (i for i, o in enumerate(offers) if o.price <= price), key=lambda i: (offers[i].price, i)
    )
    wants = sorted(
        (j for j, b in enumerate(bids) if b.price >= price), key=lambda j: (-bids[j].price, j)
    )
    left_o = {i: offers[i].packets for i in asks}
    left_b = {j: bids[j].packets for j in wants}
    trades: list[BookTrade] = []
    todo, a, w = best, 0, 0
    while todo:
        i, j = asks[a], wants[w]
        n = min(left_o[i], left_b[j], todo)
        if n:
            trades.append(BookTrade(offers[i].id, bids[j].id, n, price))
            left_o[i] -= n
            left_b[j] -= n
            todo -= n
        a += not left_o[i]
        w += not left_b[j]
    return price, tuple(trades)
