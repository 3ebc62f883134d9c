"""The dynamic programme shared by the dual and the primal kernels.

Flat arrays only (see ``scheduler.problem`` for their layout). ``lam[r, t]`` prices
resource r in slot t, ``mu[b, t]`` one buffer place of storage router b in slot t.
Offsets ``w`` count slots from a transfer's release slot.
"""

from __future__ import annotations

import numpy as np
from numba import njit

INF = np.inf

# How a DP treats packets already placed (``occ``, ``store_occ``):
IGNORE = 0  # the relaxed subproblem: others do not exist
HARD = 1  # repair: an occupied resource-slot or a full buffer is forbidden
SOFT = 2  # negotiation: each packet already there costs ``pres`` more


@njit(cache=True)
def _segment_row(lam, res_active, weight, occ, occ_mode, pres, route_res, lo, hi, rel, width, out):
    """out[w] = weight * sum of lam over the segment's resources in slot rel+w, plus
    what packets already there mean under ``occ_mode``."""
    for w in range(width):
        out[w] = 0.0
    for i in range(lo, hi):
        r = route_res[i]
        if occ_mode == HARD:
            row_occ = occ[r]
            for w in range(width):
                if row_occ[rel + w] != 0:
                    out[w] = INF
        elif occ_mode == SOFT:
            row_occ = occ[r]
            for w in range(width):
                out[w] += pres * row_occ[rel + w]
        if res_active[r] and weight != 0.0:
            row = lam[r]
            for w in range(width):
                out[w] += weight * row[rel + w]


@njit(cache=True)
def route_dp(
    route,
    rel,
    width,
    lam,
    mu,
    res_active,
    weight,
    hold_price,
    delay_price,
    occ,
    store_occ,
    store_cap,
    occ_mode,
    pres,
    route_seg_ptr,
    seg_res_ptr,
    route_res,
    seg_store,
    cost,
    row,
    hold_prefix,
    arg,
):
    """Backward DP over the segments of one route.

    On return ``cost[w]`` is the cheapest priced cost (delay + hold + weighted
    multipliers, without the route's loss cost) of a packet whose first segment runs in
    slot ``rel + w``; ``arg[j, w]`` is the offset of segment j+1 when segment j runs at
    offset w. Ties go to the earliest departure.
    """
    s_first = route_seg_ptr[route]
    s_last = route_seg_ptr[route + 1] - 1
    _segment_row(
        lam,
        res_active,
        weight,
        occ,
        occ_mode,
        pres,
        route_res,
        seg_res_ptr[s_last],
        seg_res_ptr[s_last + 1],
        rel,
        width,
        cost,
    )
    for w in range(width):
        cost[w] += delay_price * w
    for s in range(s_last - 1, s_first - 1, -1):
        j = s - s_first
        b = seg_store[s]
        acc = 0.0
        for w in range(width):
            hold_prefix[w] = acc
            acc += hold_price + weight * mu[b, rel + w]
            if occ_mode == SOFT and store_occ[b, rel + w] >= store_cap[b]:
                acc += pres * (store_occ[b, rel + w] + 1 - store_cap[b])
        _segment_row(
            lam,
            res_active,
            weight,
            occ,
            occ_mode,
            pres,
            route_res,
            seg_res_ptr[s],
            seg_res_ptr[s + 1],
            rel,
            width,
            row,
        )
        run = INF
        run_arg = -1
        for w in range(width - 1, -1, -1):
            if occ_mode == HARD and store_occ[b, rel + w] >= store_cap[b]:
                run = INF  # no buffer place in slot w: the packet cannot wait past it
                run_arg = -1
            v = hold_prefix[w] + cost[w]
            if v <= run:
                run = v
                run_arg = w
            arg[j, w] = run_arg
            row[w] = row[w] - hold_prefix[w] + run
        for w in range(width):
            cost[w] = row[w]


@njit(cache=True)
def reconstruct(route, w, rel, j_count, arg, out_slots):
    ww = w
    out_slots[0] = rel + ww
    for j in range(j_count - 1):
        ww = arg[j, ww]
        out_slots[j + 1] = rel + ww


@njit(cache=True)
def best_over_routes(
    k,
    width,
    lam,
    mu,
    res_active,
    weight,
    hold_price,
    delay_price,
    occ,
    store_occ,
    store_cap,
    occ_mode,
    pres,
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
):
    """For each start offset w < ``width`` of transfer k: the cheapest cost over its
    routes (``best[w]``) and which route gives it (``best_route[w]``); ``arg[i]`` holds
    route r0+i's DP choices. Only slots rel .. rel+width-1 are used, so a packet that
    starts at w also finishes before ``width``."""
    rel = tr_release[k]
    r0 = tr_route_ptr[k]
    for w in range(width):
        best[w] = INF
        best_route[w] = -1
    for r in range(r0, tr_route_ptr[k + 1]):
        route_dp(
            r,
            rel,
            width,
            lam,
            mu,
            res_active,
            weight,
            hold_price,
            delay_price,
            occ,
            store_occ,
            store_cap,
            occ_mode,
            pres,
            route_seg_ptr,
            seg_res_ptr,
            route_res,
            seg_store,
            cost,
            row,
            hold_prefix,
            arg[r - r0],
        )
        c = route_cost[r]
        for w in range(width):
            v = c + cost[w]
            if v < best[w]:
                best[w] = v
                best_route[w] = r


@njit(cache=True)
def workspace(n_slots, max_routes, max_segs):
    """Scratch arrays for ``best_over_routes``: cost, row, hold_prefix, arg, best,
    best_route."""
    return (
        np.empty(n_slots),
        np.empty(n_slots),
        np.empty(n_slots),
        np.empty((max_routes, max_segs, n_slots), dtype=np.int64),
        np.empty(n_slots),
        np.empty(n_slots, dtype=np.int64),
    )
