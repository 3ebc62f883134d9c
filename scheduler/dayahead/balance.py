"""The operator's side of the repair: trade quantities in, balanced trade quantities out.

It sees only what the prosumers quote: their proposed trades and their floors (the least
net purchase, buys - sells, each can live with per period). Nothing here knows a load, a
PV profile or a battery. Trades are arcs: in the pool, prosumer -> pool (a sell) and
pool -> prosumer (a buy), the pool a node whose net must be 0; in the bilateral
framework, the peer links themselves.

``pool_balance``: the long side of each period is cut pro rata (a seller can always sell
less); when buyers are long, they give up what they can spare above their floors first,
then sellers with room below theirs sell more. ``pair_balance``: each pair trades the
smaller of the seller's offer and the buyer's bid. Either way, periods where some floor
is still not met go to ``elastic_balance``: the least change of the trades (in kW) that
meets every floor, or else the least total shortfall.
"""

from __future__ import annotations

import numpy as np

from scheduler.dayahead.lp import INF, LpBuilder, solve
from scheduler.dayahead.problem import Array

_TOL = 1e-9


def net_of(arcs: list[tuple[int, int]], x: Array, nodes: int) -> Array:
    """Net purchase per node and period (in minus out)."""
    net = np.zeros((nodes, x.shape[1]))
    for k, (a, z) in enumerate(arcs):
        net[z] += x[k]
        net[a] -= x[k]
    return net


def pool_balance(net: Array, floor: Array) -> Array:
    """Net purchases (N, T) whose sum is 0 in every period, near ``net``, meeting
    ``floor`` where the period allows it."""
    n = net.copy()
    buy = np.maximum(n, 0.0)
    sell = np.maximum(-n, 0.0)
    demand, supply = buy.sum(axis=0), sell.sum(axis=0)
    # sellers long: each sells its share of the demand
    long_s = supply > demand
    share = np.divide(demand, supply, out=np.zeros_like(demand), where=supply > 0)
    n[:, long_s] = np.where(n[:, long_s] < 0, n[:, long_s] * share[long_s], n[:, long_s])
    # buyers long: they give up what they can spare above their floors, pro rata
    excess = np.where(demand > supply, demand - supply, 0.0)
    spare = np.where(n > 0, np.maximum(n - np.maximum(floor, 0.0), 0.0), 0.0)
    cut = np.minimum(excess, spare.sum(axis=0))
    n -= spare * np.divide(cut, spare.sum(axis=0), out=np.zeros_like(cut), where=cut > 0)
    # still long: whoever has room below its floor sells more
    excess -= cut
    room = np.where(n <= 0, np.maximum(n - floor, 0.0), 0.0)
    more = np.minimum(excess, room.sum(axis=0))
    n -= room * np.divide(more, room.sum(axis=0), out=np.zeros_like(more), where=more > 0)
    # whatever is left unbalanced: buyers get less than their floors want
    left = excess - more
    buy = np.maximum(n, 0.0)
    n -= buy * np.divide(left, buy.sum(axis=0), out=np.zeros_like(left), where=left > 0)
    return n


def pool_arcs(nodes: int) -> list[tuple[int, int]]:
    """The pool as arcs: 0..N-1 are sells into the pool (node N), N..2N-1 buys out."""
    return [(i, nodes) for i in range(nodes)] + [(nodes, i) for i in range(nodes)]


def elastic_balance(
    arcs: list[tuple[int, int]], x: Array, floor: Array, hub: int | None = None
) -> tuple[Array, Array]:
    """Trades (arcs, T) near ``x`` meeting every floor (nodes, T) where possible; the
    ``hub`` node (the pool), if any, must net 0. Only periods where some floor is broken
    are solved. Returns the trades and the shortfall per node and period."""
    nodes = floor.shape[0]
    net = net_of(arcs, x, nodes + (hub is not None))
    broken = np.flatnonzero((net[:nodes] < floor - _TOL).any(axis=0))
    out = x.copy()
    short = np.zeros_like(floor)
    if len(broken) == 0:
        return out, short
    # far above any change of the trades: meet the floors first, then change little
    penalty = 1e3 * (1.0 + float(np.abs(x).sum(axis=0).max()))
    lp = LpBuilder()
    up = np.empty((len(arcs), len(broken)), dtype=np.int64)
    down = up.copy()
    miss = np.empty((nodes, len(broken)), dtype=np.int64)
    for j, t in enumerate(broken):
        for k in range(len(arcs)):
            up[k, j] = lp.col(1.0, 0.0, INF)
            down[k, j] = lp.col(1.0, 0.0, float(x[k, t]))
        for i in range(nodes):
            miss[i, j] = lp.col(penalty, 0.0, INF)
    ins: list[list[int]] = [[] for _ in range(nodes + 1)]
    outs: list[list[int]] = [[] for _ in range(nodes + 1)]
    for k, (a, z) in enumerate(arcs):
        ins[z].append(k)
        outs[a].append(k)
    for j, t in enumerate(broken):
        for i in range(nodes):
            terms = [(up[k, j], 1.0) for k in ins[i]] + [(down[k, j], -1.0) for k in ins[i]]
            terms += [(up[k, j], -1.0) for k in outs[i]] + [(down[k, j], 1.0) for k in outs[i]]
            terms.append((miss[i, j], 1.0))
            lp.row(terms, float(floor[i, t] - net[i, t]), INF)
        if hub is not None:
            terms = [(up[k, j], 1.0) for k in ins[hub]] + [(down[k, j], -1.0) for k in ins[hub]]
            terms += [(up[k, j], -1.0) for k in outs[hub]]
            terms += [(down[k, j], 1.0) for k in outs[hub]]
            rhs = float(-net[hub, t])
            lp.row(terms, rhs, rhs)
    v = solve(lp.highs(), "the operator's balancing LP")
    out[:, broken] = np.maximum(x[:, broken] + v[up] - v[down], 0.0)
    short[:, broken] = v[miss]
    return out, short
