"""Green matching: a first pass before any rule, so green offers go first to green bids.

A bid *seeks green* when it has a ``green_premium`` or is ``green_only``.

1. The green pass: the chosen rule clears the green offers against the bids that seek
   green, each bid quoting its price plus its premium (what a packet of green energy is
   worth to it).
2. The open pass: the same rule clears what is left, every offer (green or not) against
   every bid that is not ``green_only``, at the quoted prices, in the room the green
   pass left on accesses, lines and SOPs.

A ``green_only`` bid therefore never receives other energy. Green energy that reaches a
bid with a premium in the open pass is still green: the buyer pays the premium on top
of that trade's price and the seller receives it. Without the green pass
(``green=False``) nothing pays a premium and ``green_only`` bids do not trade.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from scheduler.market.book import Book, Pass, PassOutcome
from scheduler.market.decompose import Trade

PassRule = Callable[[Book, Pass], PassOutcome]


def run_passes(book: Book, rule: PassRule, green: bool) -> list[tuple[Pass, PassOutcome]]:
    """The passes the rule ran, in order, with their outcomes."""
    left = {p.id: p.packets for p in book.participants}
    room = book.full_room()
    done: list[tuple[Pass, PassOutcome]] = []
    if green:
        first = Pass(
            "green",
            tuple(
                replace(p, packets=left[p.id], price=p.price + p.premium)
                if p.side == "bid"
                else replace(p, packets=left[p.id])
                for p in book.participants
                if (p.side == "offer" and p.green) or p.seeks_green
            ),
            dict(room),
        )
        if _both_sides(first):
            outcome = rule(book, first)
            _use(outcome.trades, left, room)
            done.append((first, outcome))
    rest = Pass(
        "open",
        tuple(replace(p, packets=left[p.id]) for p in book.participants if not p.green_only),
        dict(room),
    )
    done.append((rest, rule(book, rest) if _both_sides(rest) else PassOutcome(())))
    return done


def _both_sides(this: Pass) -> bool:
    return {p.side for p in this.participants if p.packets} == {"offer", "bid"}


def _use(trades: tuple[Trade, ...], left: dict[str, int], room: dict[str, int]) -> None:
    for t in trades:
        left[t.seller] -= t.packets
        left[t.buyer] -= t.packets
        for rid in t.route:
            room[rid] -= t.packets
