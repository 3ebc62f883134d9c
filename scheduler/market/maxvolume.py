"""Max-volume ("maximum utilisation"): one uniform price that clears the most packets.

At a price p the sellers asking at most p may sell and the buyers bidding at least p may
buy; the *volume* at p is the most packets those sellers can deliver to those buyers
through the network (quotes, accesses, lines and SOPs within their room: a max flow).
Between two neighbouring quoted prices the eligible sellers are those of the lower one
and the eligible buyers those of the higher, so some quoted price always reaches the
most volume over all prices; only quoted prices are tried.

Ties: among the quoted prices reaching the most volume, the one whose best allocation
(most welfare at that volume) has the most welfare; then the lowest price. The traded
packets are that allocation (a min-cost flow with its volume fixed). The uniform price
is the midpoint of the highest ask and the lowest bid that trade: every trade is at it,
every trading party gains or breaks even, and the operator pays for the losses (its
budget is minus the priced losses). A packet may trade at a loss of welfare (its bid
covers its ask but not its route's losses): the rule counts packets, not welfare.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from scheduler.market.book import Book, Pass, PassOutcome
from scheduler.market.decompose import decompose
from scheduler.market.flow import FlowSolver, cancel_opposite, welfare
from scheduler.market.network import SINK, build_network

# welfare ties between prices: a bigger relative difference than this is a real one
_TIE = 1e-12


def max_volume_pass(book: Book, this: Pass) -> PassOutcome:
    net = build_network(
        book.scenario, book.topology, this.participants, packet=book.packet, room=this.room
    )
    n = net.n_participants
    quotes = np.arange(n)
    if n == 0 or not net.cap[:n].any():
        return PassOutcome(())
    price = np.asarray([p.price for p in net.participants])
    offer = np.asarray([p.side == "offer" for p in net.participants])
    prices = sorted({float(x) for x in price[net.cap[:n] > 0]})

    def open_at(p: float) -> np.ndarray:
        eligible = np.where(offer, price <= p, price >= p)
        return np.where(eligible, net.cap[:n], 0)

    solver = FlowSolver(net)
    count = np.zeros(net.n_arcs)
    count[net.head == SINK] = -1.0  # minimise minus the packets bought: a max flow
    solver.set_costs(count)
    volume: dict[float, int] = {}
    for p in prices:
        solver.set_upper(quotes, open_at(p))
        volume[p] = int(-round(float(count @ solver.run(f"the volume at price {p:g}"))))
    most = max(volume.values())
    if most == 0:
        return PassOutcome(())
    solver.set_costs(net.cost)
    solver.fix_volume(most)
    best: tuple[float, np.ndarray] | None = None
    for p in (p for p in prices if volume[p] == most):
        solver.set_upper(quotes, open_at(p))
        flow = solver.run(f"the allocation at price {p:g}")
        w = welfare(net, flow)
        if best is None or w > best[0] + _TIE * max(1.0, abs(best[0])):
            best = (w, flow)
    assert best is not None
    flow = cancel_opposite(net, best[1])
    trades = decompose(net, flow)
    ask = {p.id: p.price for p in net.participants}
    # the highest ask and the lowest bid that trade
    uniform = (max(ask[t.seller] for t in trades) + min(ask[t.buyer] for t in trades)) / 2
    return PassOutcome(tuple(replace(t, buyer_price=uniform, seller_price=uniform) for t in trades))
