"""How the welfare of one allocation is divided: VCG (Clarke pivot) or Nash bargaining.

Both return each participant's *utility* (net gain at its quoted price); payments follow
from it: ``payment = gross - utility`` with ``gross`` = value of the packets bought
(buyer) or minus the ask for the packets sold (seller). A positive payment goes to the
operator, a negative one comes from it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

import numpy as np

from scheduler.market.errors import MarketError
from scheduler.market.flow import FlowSolver, welfare
from scheduler.market.network import FloatArray, IntArray, MarketNetwork

Mechanism = Literal["vcg", "nash"]
MECHANISMS: tuple[Mechanism, ...] = ("vcg", "nash")

# W - W_without_i is >= 0 in exact arithmetic; below -this it is a solver bug, not noise
_NOISE = 1e-9


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
    net: MarketNetwork,
    allocated: IntArray,
    total: float,
    weights: Mapping[str, float] | None = None,
) -> FloatArray:
    """The Nash bargaining split among the trading parties: with transferable utility and
    no trade as the disagreement point, maximising prod(u_i ** w_i) subject to
    sum(u_i) = W gives u_i = W * w_i / sum(w); equal weights split W equally."""
    ids = [p.id for p in net.participants]
    weights = dict(weights or {})
    for pid, w in weights.items():
        if pid not in ids:
            raise MarketError("--weight", f"no offer or bid '{pid}'")
        if not (math.isfinite(w) and w > 0):
            raise MarketError("--weight", f"{pid}: a weight must be a finite number > 0, not {w}")
    utility = np.zeros(net.n_participants)
    trading = np.flatnonzero(allocated)
    if trading.size:
        share = np.asarray([weights.get(ids[i], 1.0) for i in trading.tolist()])
        utility[trading] = total * share / share.sum()
    return utility


def payments(net: MarketNetwork, allocated: IntArray, utility: FloatArray) -> FloatArray:
    """Money each participant hands the operator (negative: it is paid)."""
    gross = -net.cost[: net.n_participants] * allocated
    return gross - utility + 0.0  # + 0.0: no -0.0 for those who trade nothing
