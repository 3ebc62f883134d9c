"""Combined-offer: pairs taken in order of the highest combined offer.

Every (offer, bid, route) with the route among the pair's ``DEFAULT_K`` cheapest within
the market packet's current and power limits is a candidate; its *combined offer* is
bid minus ask minus the route's transport cost (the energy the packet loses on the
route's accesses, lines and SOPs, priced at ``loss_price_per_j``: an SOP's loss is
``loss_coeff`` of the power it carries). Candidates with a negative combined offer never
trade. The rest are taken highest first; ties go to the earlier bid in the book, then
the earlier offer, then the cheaper route. Each trades within what is left of both
quotes and of every resource on its route, at an equal split of its combined offer
(``greedy``); the operator keeps the transport cost and buys the losses with it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np

from scheduler.market.book import Book, Pass, PassOutcome, RouteCost
from scheduler.market.greedy import Candidate, walk
from scheduler.market.network import Participant
from scheduler.routes import DEFAULT_K


def combined_offer_pass(book: Book, this: Pass) -> PassOutcome:
    offers = [p for p in this.participants if p.side == "offer" and p.packets]
    bids = [p for p in this.participants if p.side == "bid" and p.packets]
    left = {p.id: p.packets for p in this.participants}
    return PassOutcome(walk(_ranked(book, offers, bids, left), left, dict(this.room)))


def _ranked(
    book: Book, offers: list[Participant], bids: list[Participant], left: Mapping[str, int]
) -> Iterator[Candidate]:
    """Every candidate with a combined offer >= 0, in the rule's order (participants
    come in book order, so their positions break ties as the book does); those of a
    party with nothing ``left`` are passed over unmade."""
    if not (offers and bids):
        return
    sellers = sorted({o.terminal for o in offers})
    buyers = sorted({b.terminal for b in bids})
    routes: dict[tuple[int, int], tuple[RouteCost, ...]] = {}
    cost = np.full((len(sellers), len(buyers), DEFAULT_K), np.inf)
    cheapest = {t: min(o.price for o in offers if o.terminal == t) for t in sellers}
    dearest = {t: max(b.price for b in bids if b.terminal == t) for t in buyers}
    for i, s in enumerate(sellers):
        for j, b in enumerate(buyers):
            # no route search where no ask at s meets a bid at b
            routes[i, j] = book.routes(s, b) if cheapest[s] <= dearest[b] else ()
            for k, route in enumerate(routes[i, j]):
                cost[i, j, k] = route.cost
    at_s = np.asarray([sellers.index(o.terminal) for o in offers])
    at_b = np.asarray([buyers.index(b.terminal) for b in bids])
    ask = np.asarray([o.price for o in offers])
    bid = np.asarray([b.price for b in bids])
    # combined[o, b, k] = (bid - ask) - cost, as Candidate.surplus computes it
    combined = (bid[None, :] - ask[:, None])[:, :, None] - cost[at_s[:, None], at_b[None, :], :]
    o_idx, b_idx, k_idx = np.nonzero(combined >= 0)
    values = combined[o_idx, b_idx, k_idx]
    order = np.lexsort((k_idx, o_idx, b_idx, -values))
    pairs = zip(o_idx[order].tolist(), b_idx[order].tolist(), k_idx[order].tolist(), strict=True)
    terminal_s, terminal_b = at_s.tolist(), at_b.tolist()
    for o, b, k in pairs:
        seller, buyer = offers[o], bids[b]
        if left[seller.id] and left[buyer.id]:
            yield Candidate(seller, buyer, routes[terminal_s[o], terminal_b[b]][k])
