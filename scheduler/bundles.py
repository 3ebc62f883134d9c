"""The arrays the Numba kernels share, bundled as named tuples (Numba takes them as one
argument each and reads their fields by name).

Layout of ``Arrays`` (see ``scheduler.problem``):

    transfer k -> routes    tr_route_ptr[k] : tr_route_ptr[k+1]
    route r    -> segments  route_seg_ptr[r] : route_seg_ptr[r+1]
    segment s  -> resources route_res[seg_res_ptr[s] : seg_res_ptr[s+1]]
    segment s  -> storage router seg_store[s] it waits at afterwards (-1: last segment)
    transfer k -> packet rows pk_ptr[k] : pk_ptr[k+1] of per-packet arrays

``Prices``: ``lam[r, t]`` prices resource r in slot t, ``mu[b, t]`` one buffer place of
storage router b in slot t, both scaled by ``weight`` (0: unpriced). ``Places``: packets
already placed, ``occ[r, t]`` per resource-slot and ``store_occ[b, t]`` buffer places;
with ``hard`` a taken resource-slot or a full buffer is forbidden, otherwise ignored.
``Packets``: per-packet output, ``route[p]`` (-1: undelivered) and ``seg_slots[p, j]``.
Offsets ``w`` count slots from a transfer's release slot.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit
from numpy.typing import NDArray

Ints = NDArray[np.int64]
Floats = NDArray[np.float64]


class Arrays(NamedTuple):
    tr_packets: Ints
    tr_value: Floats
    tr_release: Ints
    tr_deadline: Ints
    tr_route_ptr: Ints
    route_cost: Floats
    route_seg_ptr: Ints
    seg_res_ptr: Ints
    route_res: Ints
    seg_store: Ints
    pk_ptr: Ints
    store_cap: Ints
    delay_price: float
    hold_price: float


class Prices(NamedTuple):
    lam: Floats
    mu: Floats
    active: NDArray[np.bool_]  # resources with any positive price
    weight: float


class Places(NamedTuple):
    occ: Ints
    store_occ: Ints
    hard: bool


class Packets(NamedTuple):
    route: Ints
    seg_slots: Ints


class Work(NamedTuple):
    """Scratch for one DP at a time: cost, row and hold_prefix per offset, the DP's
    choices per (route, segment, offset), the best cost and route per offset, a packet's
    segment slots, candidate offsets and the cheapest of them in order."""

    cost: Floats
    row: Floats
    hold_prefix: Floats
    arg: Ints
    best: Floats
    best_route: Ints
    slots: Ints
    candidates: Ints
    cheapest: Ints  # positions of the cheapest candidates, in order


@njit(cache=True, nogil=True)
def make_work(a, n_slots):
    max_routes = 1
    for k in range(len(a.tr_packets)):
        max_routes = max(max_routes, a.tr_route_ptr[k + 1] - a.tr_route_ptr[k])
    max_segs = 1
    for r in range(len(a.route_seg_ptr) - 1):
        max_segs = max(max_segs, a.route_seg_ptr[r + 1] - a.route_seg_ptr[r])
    return Work(
        np.empty(n_slots),
        np.empty(n_slots),
        np.empty(n_slots),
        np.empty((max_routes, max_segs, n_slots), dtype=np.int64),
        np.empty(n_slots),
        np.empty(n_slots, dtype=np.int64),
        np.empty(max_segs, dtype=np.int64),
        np.empty(n_slots, dtype=np.int64),
        np.empty(n_slots, dtype=np.int64),
    )


@njit(cache=True, nogil=True)
def unpriced(n_resources):
    """Prices that price nothing (true costs only)."""
    return Prices(np.zeros((1, 1)), np.zeros((1, 1)), np.zeros(n_resources, dtype=np.bool_), 0.0)


@njit(cache=True, nogil=True)
def nowhere():
    """Places for the relaxed subproblem: nothing is taken."""
    return Places(np.zeros((1, 1), dtype=np.int64), np.zeros((1, 1), dtype=np.int64), False)
