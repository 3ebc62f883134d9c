"""Primal repair: feasible plans built from scratch or from a relaxed solution."""

from __future__ import annotations

import numpy as np
from numba import njit

from scheduler.lagrangian.dp import HARD, INF, best_over_routes, reconstruct, workspace
from scheduler.lagrangian.occupancy import fits, max_routes, occupy, packet_cost


@njit(cache=True)
def place_packets(
    k,
    count,
    weight,
    lam,
    mu,
    res_active,
    hold_price,
    delay_price,
    store_cap,
    tr_value,
    tr_release,
    tr_deadline,
    tr_route_ptr,
    route_cost,
    route_seg_ptr,
    seg_res_ptr,
    route_res,
    seg_store,
    occ,
    store_occ,
    out_route,
    out_seg_slots,
    first_free,
    cost,
    row,
    hold_prefix,
    arg,
    best,
    best_route,
    slots,
):
    """Place up to ``count`` more packets of transfer k, each on its cheapest free
    (route, slots) by true cost plus ``weight`` times the multipliers, into output rows
    ``first_free, first_free+1, ...``. Packets whose true cost reaches the transfer's
    value are not placed. Returns (packets placed, their true cost)."""
    r0 = tr_route_ptr[k]
    rel = tr_release[k]
    width = tr_deadline[k] - rel + 1
    value = tr_value[k]
    placed = 0
    total = 0.0
    if count <= 0 or tr_route_ptr[k + 1] == r0:
        return 0, 0.0
    # costs are >= the cheapest route's loss + delay * offset: evaluate a prefix of the
    # window and widen it only when the next candidate could be beaten further on
    floor = route_cost[r0]
    for r in range(r0 + 1, tr_route_ptr[k + 1]):
        floor = min(floor, route_cost[r])
    span = width if delay_price <= 0.0 else min(width, max(2 * count, count + 16))
    need_dp = True
    cursor = 0
    ranked = np.empty(0, dtype=np.int64)
    while placed < count:
        if need_dp:
            best_over_routes(
                k,
                span,
                lam,
                mu,
                res_active,
                weight,
                hold_price,
                delay_price,
                occ,
                store_occ,
                store_cap,
                HARD,
                0.0,
                tr_release,
                tr_deadline,
                tr_route_ptr,
                route_cost,
                route_seg_ptr,
                seg_res_ptr,
                route_res,
                seg_store,
                cost,
                row,
                hold_prefix,
                arg,
                best,
                best_route,
            )
            ranked = np.argsort(best[:span], kind="mergesort")
            cursor = 0
            need_dp = False
        if span < width and (cursor >= span or best[ranked[cursor]] >= floor + delay_price * span):
            span = min(width, 2 * span)
            need_dp = True
            continue
        if cursor >= span or best[ranked[cursor]] == INF:
            break
        w = ranked[cursor]
        cursor += 1
        r = best_route[w]
        n_segs = route_seg_ptr[r + 1] - route_seg_ptr[r]
        reconstruct(r, w, rel, n_segs, arg[r - r0], slots)
        if not fits(
            r, slots, route_seg_ptr, seg_res_ptr, route_res, seg_store, occ, store_occ, store_cap
        ):
            need_dp = True  # a packet placed just before took one of its places
            continue
        true_cost = packet_cost(r, slots, n_segs, rel, route_cost, delay_price, hold_price)
        if true_cost >= value:
            continue
        occupy(r, slots, 1, route_seg_ptr, seg_res_ptr, route_res, seg_store, occ, store_occ)
        p = first_free + placed
        out_route[p] = r
        for j in range(n_segs):
            out_seg_slots[p, j] = slots[j]
        total += true_cost
        placed += 1
    return placed, total


@njit(cache=True)
def repair(
    order,
    weight,
    lam,
    mu,
    res_active,
    hold_price,
    delay_price,
    store_cap,
    tr_packets,
    tr_value,
    tr_release,
    tr_deadline,
    tr_route_ptr,
    route_cost,
    route_seg_ptr,
    seg_res_ptr,
    route_res,
    seg_store,
    pk_ptr,
    occ,
    store_occ,
    out_route,
    out_seg_slots,
):
    """A feasible plan built transfer by transfer in ``order``. Returns its objective."""
    cost, row, hold_prefix, arg, best, best_route = workspace(
        occ.shape[1], max_routes(tr_route_ptr), out_seg_slots.shape[1]
    )
    slots = np.empty(out_seg_slots.shape[1], dtype=np.int64)
    occ[:] = 0
    store_occ[:] = 0
    out_route[:] = -1
    objective = 0.0
    for idx in range(len(order)):
        k = order[idx]
        placed, spent = place_packets(
            k,
            tr_packets[k],
            weight,
            lam,
            mu,
            res_active,
            hold_price,
            delay_price,
            store_cap,
            tr_value,
            tr_release,
            tr_deadline,
            tr_route_ptr,
            route_cost,
            route_seg_ptr,
            seg_res_ptr,
            route_res,
            seg_store,
            occ,
            store_occ,
            out_route,
            out_seg_slots,
            pk_ptr[k],
            cost,
            row,
            hold_prefix,
            arg,
            best,
            best_route,
            slots,
        )
        objective += spent + tr_value[k] * (tr_packets[k] - placed)
    return objective


@njit(cache=True)
def repair_relaxed(
    relaxed_route,
    relaxed_slots,
    order,
    weight,
    lam,
    mu,
    res_active,
    hold_price,
    delay_price,
    store_cap,
    tr_packets,
    tr_value,
    tr_release,
    tr_deadline,
    tr_route_ptr,
    route_cost,
    route_seg_ptr,
    seg_res_ptr,
    route_res,
    seg_store,
    pk_ptr,
    occ,
    store_occ,
    out_route,
    out_seg_slots,
):
    """A feasible plan that keeps as much of a relaxed solution as fits.

    Transfers in ``order`` keep their relaxed packets whose places are still free; then,
    in the same order, each transfer places what it is missing on its cheapest free
    places (true cost plus ``weight`` times the multipliers). Returns the objective."""
    cost, row, hold_prefix, arg, best, best_route = workspace(
        occ.shape[1], max_routes(tr_route_ptr), out_seg_slots.shape[1]
    )
    slots = np.empty(out_seg_slots.shape[1], dtype=np.int64)
    occ[:] = 0
    store_occ[:] = 0
    out_route[:] = -1
    kept = np.zeros(len(tr_packets), dtype=np.int64)
    objective = 0.0
    for idx in range(len(order)):
        k = order[idx]
        rel = tr_release[k]
        for p in range(pk_ptr[k], pk_ptr[k + 1]):
            r = relaxed_route[p]
            if r < 0:
                break  # relaxed packets of a transfer come first
            n_segs = route_seg_ptr[r + 1] - route_seg_ptr[r]
            for j in range(n_segs):
                slots[j] = relaxed_slots[p, j]
            if not fits(
                r,
                slots,
                route_seg_ptr,
                seg_res_ptr,
                route_res,
                seg_store,
                occ,
                store_occ,
                store_cap,
            ):
                continue
            true_cost = packet_cost(r, slots, n_segs, rel, route_cost, delay_price, hold_price)
            if true_cost >= tr_value[k]:
                continue
            occupy(r, slots, 1, route_seg_ptr, seg_res_ptr, route_res, seg_store, occ, store_occ)
            q = pk_ptr[k] + kept[k]
            out_route[q] = r
            for j in range(n_segs):
                out_seg_slots[q, j] = slots[j]
            objective += true_cost
            kept[k] += 1
    for idx in range(len(order)):
        k = order[idx]
        placed, spent = place_packets(
            k,
            tr_packets[k] - kept[k],
            weight,
            lam,
            mu,
            res_active,
            hold_price,
            delay_price,
            store_cap,
            tr_value,
            tr_release,
            tr_deadline,
            tr_route_ptr,
            route_cost,
            route_seg_ptr,
            seg_res_ptr,
            route_res,
            seg_store,
            occ,
            store_occ,
            out_route,
            out_seg_slots,
            pk_ptr[k] + kept[k],
            cost,
            row,
            hold_prefix,
            arg,
            best,
            best_route,
            slots,
        )
        objective += spent + tr_value[k] * (tr_packets[k] - kept[k] - placed)
    return objective
