"""Price-priority ("the highest price gets"), with price-time priority, on the network.

Bids are taken highest price first, offers lowest price first; equal prices keep the
book's order (time priority: earlier in the file goes first). The best bid meets the
offers from the lowest up, each over its cheapest route first: as many packets as both
have left and the route has room for, while the bid covers the ask plus the route's
transport cost. Then the next bid does the same with what is left. On one router
without losses this is the textbook walk down the two sides of the book. Each pair
trades at its price minus (bid) or plus (ask) half of its surplus (``greedy``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from scheduler.market.book import Book, Pass, PassOutcome
from scheduler.market.greedy import Candidate, walk
from scheduler.market.network import Participant


def book_order(
    participants: tuple[Participant, ...],
) -> tuple[list[Participant], list[Participant]]:
    """(offers lowest ask first, bids highest price first), ties in book order; only
    those with packets left."""
    ranked = list(enumerate(participants))
    offers = [p for _, p in sorted(ranked, key=lambda e: (e[1].price, e[0])) if p.side == "offer"]
    bids = [p for _, p in sorted(ranked, key=lambda e: (-e[1].price, e[0])) if p.side == "bid"]
    return [p for p in offers if p.packets], [p for p in bids if p.packets]


def price_priority_pass(book: Book, this: Pass) -> PassOutcome:
    left = {p.id: p.packets for p in this.participants}
    room = dict(this.room)
    return PassOutcome(walk(_candidates(book, this, left), left, room))


def _candidates(book: Book, this: Pass, left: Mapping[str, int]) -> Iterator[Candidate]:
    offers, bids = book_order(this.participants)
    for b in bids:
        for o in offers:
            if not left[b.id] or o.price > b.price:
                break  # the bid is served, or no offer from here on is cheap enough
            if not left[o.id]:
                continue
            for route in book.routes(o.terminal, b.terminal):
                if b.price - o.price - route.cost < 0:
                    break  # routes come cheapest first
                yield Candidate(o, b, route)
