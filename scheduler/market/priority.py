"""Price-priority matching ("the highest price gets"), on the book alone.

The rule: sort bids by price, highest first, and offers by price, lowest first; ties
keep the book's order (time priority: earlier in the book goes first). The best bid
meets the best offer for as many packets as both still have, while the bid's price is
at least the offer's; each pair trades at the midpoint of the two prices. Network
limits are not applied here (a later step routes the trades through the market flow).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bench.models import Bid, Offer


@dataclass(frozen=True, slots=True)
class BookTrade:
    seller: str
    buyer: str
    packets: int
    price: float  # per packet, paid by the buyer to the seller


def price_priority(offers: Sequence[Offer], bids: Sequence[Bid]) -> tuple[BookTrade, ...]:
    """The trades of price-time priority; welfare is sum((bid - offer) * packets)."""
    asks = sorted(range(len(offers)), key=lambda i: (offers[i].price, i))
    wants = sorted(range(len(bids)), key=lambda j: (-bids[j].price, j))
    left_o = [o.packets for o in offers]
    left_b = [b.packets for b in bids]
    trades: list[BookTrade] = []
    a = w = 0
    while a < len(asks) and w < len(wants):
        o, b = offers[asks[a]], bids[wants[w]]
        if b.price < o.price:
            break
        n = min(left_o[asks[a]], left_b[wants[w]])
        if n:
            trades.append(BookTrade(o.id, b.id, n, (o.price + b.price) / 2))
            left_o[asks[a]] -= n
            left_b[wants[w]] -= n
        if not left_o[asks[a]]:
            a += 1
        if not left_b[wants[w]]:
            w += 1
    return tuple(trades)


def book_welfare(
    offers: Sequence[Offer], bids: Sequence[Bid], trades: Sequence[BookTrade]
) -> float:
    ask = {o.id: o.price for o in offers}
    value = {b.id: b.price for b in bids}
    return sum((value[t.buyer] - ask[t.seller]) * t.packets for t in trades)
