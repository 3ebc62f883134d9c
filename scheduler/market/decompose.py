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
    seller: str
    buyer: str
    route: tuple[str, ...]  # resource ids, seller's terminal first, buyer's terminal last
    packets: int
    loss_cost: float  # priced loss of one packet on the route
    loss_j: float  # joules one packet loses on the route


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
