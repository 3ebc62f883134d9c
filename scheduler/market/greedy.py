"""The walk shared by the rules that match pair by pair (price-priority, combined-offer).

A rule hands over its candidates in its own order: (seller, buyer, route). Each candidate
trades as many packets as the seller and the buyer both have left and every resource on
the route still has room for (one packet per slot, both directions of a line or SOP
together), then the walk moves on. Prices split the candidate's surplus (the buyer's
quoted price minus the seller's minus the route's transport cost) equally: the buyer
pays its price minus half of it, the seller receives its ask plus half of it, and the
operator keeps the transport cost, with which it buys the losses (budget balanced).
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass

from scheduler.market.book import RouteCost
from scheduler.market.decompose import Trade
from scheduler.market.network import Participant


@dataclass(frozen=True, slots=True)
class Candidate:
    seller: Participant
    buyer: Participant
    route: RouteCost

    @property
    def surplus(self) -> float:
        """The combined offer: bid minus ask minus the route's transport cost, per packet."""
        return self.buyer.price - self.seller.price - self.route.cost


def walk(
    candidates: Iterable[Candidate],
    left: MutableMapping[str, int],
    room: MutableMapping[str, int],
) -> tuple[Trade, ...]:
    """Trade each candidate in turn; ``left`` (packets per participant) and ``room``
    (packets per resource) shrink as trades are made."""
    trades: list[Trade] = []
    for c in candidates:
        s, b, r = c.seller, c.buyer, c.route
        n = min(left[s.id], left[b.id])
        for rid in r.route:
            if n <= 0:
                break
            n = min(n, room[rid])
        if n <= 0:
            continue
        left[s.id] -= n
        left[b.id] -= n
        for rid in r.route:
            room[rid] -= n
        half = c.surplus / 2
        trades.append(
            Trade(
                s.id,
                b.id,
                r.route,
                n,
                r.cost,
                r.loss_j,
                buyer_price=b.price - half,
                seller_price=s.price + half,
            )
        )
    return tuple(trades)
