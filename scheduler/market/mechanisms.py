"""The welfare optimum of a pass (min-cost flow) and how VCG and Nash divide it.

Both return each participant's *utility* (net gain at its quoted price); payments follow
from it: ``payment = gross - utility`` with ``gross`` = value of the packets bought
(buyer) or minus the ask for the packets sold (seller). A positive payment goes to the
operator, a negative one comes from it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from scheduler.market.book import Book, Pass, PassOutcome
from scheduler.market.decompose import decompose
from scheduler.market.errors import MarketError
from scheduler.market.flow import FlowSolver, cancel_opposite, welfare
from scheduler.market.network import FloatArray, IntArray, MarketNetwork, build_network

# W - W_without_i is >= 0 in exact arithmetic; below -this it is a solver bug, not noise
_NOISE = 1e-9


def optimum_pass(book: Book, this: Pass, *, clarke: bool = False) -> PassOutcome:
    """The welfare-maximising trades of one pass; with ``clarke``, each participant's VCG
    utility in it too (one warm re-solve per trading participant)."""
    net = build_network(
        book.scenario, book.topology, this.participants, packet=book.packet, room=this.room
    )
    solver = FlowSolver(net)
    flow = cancel_opposite(net, solver.solve())
    trades = decompose(net, flow)
    if not clarke:
        return PassOutcome(trades)
    allocated = flow[: net.n_participants]
    utility = vcg_utilities(net, solver, allocated, welfare(net, flow))
    return PassOutcome(
        trades,
        {p.id: float(utility[i]) for i, p in enumerate(net.participants)},
        int(np.count_nonzero(allocated)),
    )


def vcg_pass(book: Book, this: Pass) -> PassOutcome:
    return optimum_pass(book, this, clarke=True)


def vcg_utilities(
    net: MarketNetwork, solver: FlowSolver, allocated: IntArray, total: float
) -> FloatArray:
    """Each participant's utility is the welfare it adds: W - W(without it).

    A participant with nothing allocated adds nothing (the optimum without it is the
    same flow), so only those with packets are solved again.
    """
    utility = np.zeros(net.n_participants)
    scale = max(1.0, float(np.abs(net.cost[: net.n_participants]) @ net.cap[: net.n_participants]))
    for i in np.flatnonzero(allocated).tolist():
        gain = total - welfare(net, solver.solve_without(i))
        if gain < -_NOISE * scale:
            raise MarketError(
                "", f"welfare without {net.participants[i].id} exceeds the optimum by {-gain:g}"
            )
        utility[i] = max(gain, 0.0)
    return utility


def nash_utilities(
    ids: Sequence[str],
    allocated: Sequence[int],
    total: float,
    weights: Mapping[str, float] | None = None,
) -> list[float]:
    """The Nash bargaining split among the trading parties: with transferable utility and
    no trade as the disagreement point, maximising prod(u_i ** w_i) subject to
    sum(u_i) = W gives u_i = W * w_i / sum(w); equal weights split W equally."""
    weights = dict(weights or {})
    for pid, w in weights.items():
        if pid not in ids:
            raise MarketError("--weight", f"no offer or bid '{pid}'")
        if not (math.isfinite(w) and w > 0):
            raise MarketError("--weight", f"{pid}: a weight must be a finite number > 0, not {w}")
    utility = [0.0] * len(ids)
    trading = [i for i, n in enumerate(allocated) if n]
    if trading:
        share = np.asarray([weights.get(ids[i], 1.0) for i in trading])
        for i, u in zip(trading, (total * share / share.sum()).tolist(), strict=True):
            utility[i] = u
    return utility


def payments(net: MarketNetwork, allocated: IntArray, utility: FloatArray) -> FloatArray:
    """Money each participant hands the operator (negative: it is paid)."""
    gross = -net.cost[: net.n_participants] * allocated
    return gross - utility + 0.0  # + 0.0: no -0.0 for those who trade nothing
