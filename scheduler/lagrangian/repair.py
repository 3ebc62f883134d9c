"""Primal repair: feasible plans built from scratch or from a relaxed solution (bundles:
see ``scheduler.bundles``)."""

from __future__ import annotations

import numpy as np
from numba import njit

from scheduler.bundles import make_work
from scheduler.lagrangian.dp import (
    INF,
    best_over_routes,
    cheapest_floor,
    first_span,
    reconstruct,
)
from scheduler.lagrangian.occupancy import fits, occupy, packet_cost, put


@njit(cache=True, nogil=True)
def place_packets(a, k, count, prices, places, out, first_free, work):
    """Place up to ``count`` more packets of transfer k, each on its cheapest free
    (route, slots) by true cost plus the weighted prices, into output rows
    ``first_free, first_free + 1, ...``. Packets whose true cost reaches the transfer's
    value are not placed. Returns (packets placed, their true cost)."""
    r0 = a.tr_route_ptr[k]
    if count <= 0 or a.tr_route_ptr[k + 1] == r0:
        return 0, 0.0
    rel = a.tr_release[k]
    width = a.tr_deadline[k] - rel + 1
    best, slots = work.best, work.slots
    # costs are >= the cheapest route's loss + delay * offset: evaluate a prefix of the
    # window and widen it only when the next candidate could be beaten further on
    floor = cheapest_floor(a, k)
    span = first_span(a, width, count)
    placed = 0
    total = 0.0
    need_dp = True
    cursor = 0
    ranked = np.empty(0, dtype=np.int64)
    while placed < count:
        if need_dp:
            best_over_routes(a, k, span, prices, places, work)
            ranked = np.argsort(best[:span], kind="mergesort")
            cursor = 0
            need_dp = False
        if span < width and (
            cursor >= span or best[ranked[cursor]] >= floor + a.delay_price * span
        ):
            span = min(width, 2 * span)
            need_dp = True
            continue
        if cursor >= span or best[ranked[cursor]] == INF:
            break
        w = ranked[cursor]
        cursor += 1
        r = work.best_route[w]
        reconstruct(a, r, w, rel, work.arg[r - r0], slots)
        if not fits(a, r, slots, places):
            need_dp = True  # a packet placed just before took one of its places
            continue
        true_cost = packet_cost(a, r, slots, rel)
        if true_cost >= a.tr_value[k]:
            continue
        occupy(a, r, slots, 1, places)
        put(out, first_free + placed, r, slots, a.route_seg_ptr[r + 1] - a.route_seg_ptr[r])
        total += true_cost
        placed += 1
    return placed, total


@njit(cache=True, nogil=True)
def repair(a, order, prices, places, out):
    """A feasible plan built transfer by transfer in ``order``. Returns its objective."""
    work = make_work(a, places.occ.shape[1])
    places.occ[:] = 0
    places.store_occ[:] = 0
    out.route[:] = -1
    objective = 0.0
    for idx in range(len(order)):
        k = order[idx]
        placed, spent = place_packets(a, k, a.tr_packets[k], prices, places, out, a.pk_ptr[k],
                                      work)  # fmt: skip
        objective += spent + a.tr_value[k] * (a.tr_packets[k] - placed)
    return objective


@njit(cache=True, nogil=True)
def repair_relaxed(a, relaxed, order, prices, places, out):
    """A feasible plan that keeps as much of a relaxed solution as fits.

    Transfers in ``order`` keep their relaxed packets whose places are still free; then,
    in the same order, each transfer places what it is missing on its cheapest free
    places (true cost plus the weighted prices). Returns the objective."""
    work = make_work(a, places.occ.shape[1])
    slots = work.slots
    places.occ[:] = 0
    places.store_occ[:] = 0
    out.route[:] = -1
    kept = np.zeros(len(a.tr_packets), dtype=np.int64)
    objective = 0.0
    for idx in range(len(order)):
        k = order[idx]
        rel = a.tr_release[k]
        for p in range(a.pk_ptr[k], a.pk_ptr[k + 1]):
            r = relaxed.route[p]
            if r < 0:
                break  # relaxed packets of a transfer come first
            n_segs = a.route_seg_ptr[r + 1] - a.route_seg_ptr[r]
            for j in range(n_segs):
                slots[j] = relaxed.seg_slots[p, j]
            if not fits(a, r, slots, places):
                continue
            true_cost = packet_cost(a, r, slots, rel)
            if true_cost >= a.tr_value[k]:
                continue
            occupy(a, r, slots, 1, places)
            put(out, a.pk_ptr[k] + kept[k], r, slots, n_segs)
            objective += true_cost
            kept[k] += 1
    for idx in range(len(order)):
        k = order[idx]
        missing = a.tr_packets[k] - kept[k]
        placed, spent = place_packets(a, k, missing, prices, places, out,
                                      a.pk_ptr[k] + kept[k], work)  # fmt: skip
        objective += spent + a.tr_value[k] * (missing - placed)
    return objective
