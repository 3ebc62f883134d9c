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

from scheduler.market.book import Book, Pass, PassOutcome
from scheduler.market.greedy import Candidate, walk


def combined_offer_pass(book: Book, this: Pass) -> PassOutcome:
    order = {p.id: i for i, p in enumerate(this.participants)}
    offers = [p for p in this.participants if p.side == "offer" and p.packets]
    bids = [p for p in this.participants if p.side == "bid" and p.packets]
    ranked: list[tuple[float, int, int, int, Candidate]] = []
    for b in bids:
        for o in offers:
            if o.price > b.price:
                continue
            for k, route in enumerate(book.routes(o.terminal, b.terminal)):
                c = Candidate(o, b, route)
                if c.surplus < 0:
                    break  # routes come cheapest first
                ranked.append((-c.surplus, order[b.id], order[o.id], k, c))
    ranked.sort(key=lambda e: e[:4])
    left = {p.id: p.packets for p in this.participants}
    return PassOutcome(walk((e[4] for e in ranked), left, dict(this.room)))
