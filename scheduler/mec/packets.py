"""An allocation's energies as whole packets.

A packet on pair (k, j) takes e_j = V_j x I_j x tau from source k (the server's voltage
and current, one slot's conduction time) and delivers (1 - l_kj) e_j. Rounding: each
pair first gets floor(x_p / e_j) packets; then each pair with a remainder gets one
packet more, least satisfied server first (the pick rule's order: fairness first),
unless that packet breaks its source's energy or the capacity of a router on its route
(counted in whole packets). So every pair delivers within one packet of its allocation,
a server short of its demand is not left short by a fraction of a packet when the
energy is there, and the packets never break a limit the allocation met.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from scheduler.mec.instance import MecInstance

Pair = tuple[int, int]
ROUND_OFF = 1e-9  # in packets: x / e this close to an integer is that integer


def routers_crossed(inst: MecInstance) -> dict[Pair, list[int]]:
    """The capped routers (indices into ``inst.routers``) each pair's route crosses."""
    out: dict[Pair, list[int]] = {}
    for r, uses in enumerate(inst.uses):
        for p in uses:
            out.setdefault(p, []).append(r)
    return out


def whole_packets(
    inst: MecInstance,
    pairs: Sequence[Pair],
    x: np.ndarray,
    packet_j: np.ndarray,
    crossed: dict[Pair, list[int]] | None = None,
) -> np.ndarray:
    """Packets per pair for the energies ``x`` (J per pair); ``packet_j``: e per pair;
    ``crossed``: ``routers_crossed(inst)``, when the caller keeps it."""
    ratio = np.maximum(np.asarray(x, dtype=float), 0.0) / packet_j
    count = np.floor(ratio + ROUND_OFF).astype(np.int64)
    source_left = inst.available_j.astype(float).copy()
    router_left = inst.capacity_j.astype(float).copy()
    on_route = routers_crossed(inst) if crossed is None else crossed
    crosses = [on_route.get(p, []) for p in pairs]
    satisfied = np.ones(len(pairs))
    for i, (k, j) in enumerate(pairs):
        e = count[i] * packet_j[i]
        source_left[k] -= e
        for r in crosses[i]:
            router_left[r] -= e
        if inst.demand_j[j] > 0:
            satisfied[i] = e * (1.0 - inst.loss[k, j]) / inst.demand_j[j]
    short = [i for i in range(len(pairs)) if ratio[i] - count[i] > ROUND_OFF]
    for i in sorted(short, key=lambda i: (satisfied[i], i)):
        k, e = pairs[i][0], packet_j[i]
        if source_left[k] >= e and all(router_left[r] >= e for r in crosses[i]):
            count[i] += 1
            source_left[k] -= e
            for r in crosses[i]:
                router_left[r] -= e
    return count
