"""An integer flow into trades: (seller, buyer, route, packets).

Each unit of flow leaves the source on a seller's arc and reaches the sink on a buyer's
arc; peeling off simple source-sink paths (depth-first, sellers in scenario order) says
who supplies whom over which lines. The pairing is one choice among equals: every
decomposition of the same flow has the same welfare, losses and payments. What may remain
after the paths are cycles of zero cost, which move nothing and are dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from scheduler.market.errors import MarketError
from scheduler.market.network import SINK, SOURCE, IntArray, MarketNetwork


@dataclass(frozen=True, slots=True)
class Trade:
    """Packets one seller sends one buyer over one route, and what they are worth.

    ``sink_j`` and ``green_j`` are what the planning model says reaches the buyer's
    terminal: a certificate may be issued per *metered* joule of a green trade, never
    more than ``green_j`` (see ``certifiable_green_j``)."""

    seller: str
    buyer: str
    route: tuple[str, ...]  # resource ids, seller's terminal first, buyer's terminal last
    packets: int
    loss_cost: float  # priced loss of one packet on the route
    loss_j: float  # joules one packet loses on the route
    value: float = 0.0  # the buyer's value of one packet of this energy (premium included)
    ask: float = 0.0  # the seller's ask per packet
    buyer_price: float = 0.0  # per packet, paid by the buyer (premium included)
    seller_price: float = 0.0  # per packet, received by the seller
    green: bool = False  # the seller's energy is green (renewable origin)
    sink_j: float = 0.0  # joules all its packets bring to the buyer's terminal
    green_j: float = 0.0  # of which green: sink_j for a green trade, else 0

    @property
    def gain(self) -> float:
        """Welfare per packet: value minus ask minus the priced loss."""
        return self.value - self.ask - self.loss_cost


def certifiable_green_j(trade: Trade, delivered_j: float) -> float:
    """Green joules a delivery of ``trade`` may be certified for: what was metered at the
    buyer, never more than the trade's green energy, and nothing for other energy."""
    if not trade.green or not delivered_j > 0:
        return 0.0
    return min(float(delivered_j), trade.green_j)


def decompose(net: MarketNetwork, flow: IntArray) -> tuple[Trade, ...]:
    rest = flow.copy()
    out_arcs: list[list[int]] = [[] for _ in range(net.n_nodes)]
    for arc in np.flatnonzero(rest).tolist():
        out_arcs[int(net.tail[arc])].append(arc)
    found: dict[tuple[int, int, tuple[int, ...]], int] = {}
    for seller in range(net.n_participants):
        while rest[seller] > 0:
            path = _path(net, rest, out_arcs, seller)
            if path is None:
                raise MarketError("", f"flow of {net.participants[seller].id} reaches no buyer")
            amount = int(min(rest[a] for a in path))
            rest[path] -= amount
            key = (seller, path[-1], tuple(path[1:-1]))
            found[key] = found.get(key, 0) + amount
    leftover = [p.id for i, p in enumerate(net.participants) if p.side == "bid" and rest[i]]
    if leftover:
        raise MarketError("", f"flow reaches {', '.join(leftover)} from no seller")
    return tuple(_trade(net, *key, n) for key, n in found.items())


def _path(
    net: MarketNetwork, rest: IntArray, out_arcs: list[list[int]], first: int
) -> list[int] | None:
    """A simple path of positive flow from the source (over arc ``first``) to the sink."""
    stack = [(int(net.head[first]), [first])]
    seen = {SOURCE}
    while stack:
        node, path = stack.pop()
        if node == SINK:
            return path
        if node in seen:
            continue
        seen.add(node)
        for arc in out_arcs[node]:
            if rest[arc] > 0 and int(net.head[arc]) not in seen:
                stack.append((int(net.head[arc]), [*path, arc]))
    return None


def _trade(net: MarketNetwork, seller: int, buyer: int, inner: tuple[int, ...], n: int) -> Trade:
    # inner: the seller's access, the links, the buyer's access
    return Trade(
        seller=net.participants[seller].id,
        buyer=net.participants[buyer].id,
        route=tuple(net.resource[a] for a in inner),
        packets=n,
        loss_cost=math.fsum(net.cost[a] for a in inner),
        loss_j=math.fsum(net.loss_j[a] for a in inner),
    )
