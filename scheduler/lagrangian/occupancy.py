"""Placed packets: do they fit, take or give back their places, what they cost.

``occ[r, t]`` counts packets on resource r in slot t (at most 1 in a feasible plan),
``store_occ[b, t]`` buffer places taken at storage router b in slot t. Per-packet arrays:
``route[p]`` (-1: undelivered) and ``seg_slots[p, j]``; packet p belongs to the transfer
k with ``pk_ptr[k] <= p < pk_ptr[k+1]``.
"""

from __future__ import annotations

from numba import njit


@njit(cache=True)
def fits(r, slots, route_seg_ptr, seg_res_ptr, route_res, seg_store, occ, store_occ, store_cap):
    s0 = route_seg_ptr[r]
    s1 = route_seg_ptr[r + 1]
    for s in range(s0, s1):
        t = slots[s - s0]
        for i in range(seg_res_ptr[s], seg_res_ptr[s + 1]):
            if occ[route_res[i], t] != 0:
                return False
        if s < s1 - 1:
            b = seg_store[s]
            for u in range(t, slots[s - s0 + 1]):
                if store_occ[b, u] >= store_cap[b]:
                    return False
    return True


@njit(cache=True)
def occupy(r, slots, delta, route_seg_ptr, seg_res_ptr, route_res, seg_store, occ, store_occ):
    s0 = route_seg_ptr[r]
    s1 = route_seg_ptr[r + 1]
    for s in range(s0, s1):
        t = slots[s - s0]
        for i in range(seg_res_ptr[s], seg_res_ptr[s + 1]):
            occ[route_res[i], t] += delta
        if s < s1 - 1:
            b = seg_store[s]
            for u in range(t, slots[s - s0 + 1]):
                store_occ[b, u] += delta


@njit(cache=True)
def packet_cost(r, slots, n_segs, rel, route_cost, delay_price, hold_price):
    """True cost of one delivered packet: losses + delay + slots held in storage."""
    return (
        route_cost[r]
        + delay_price * (slots[n_segs - 1] - rel)
        + hold_price * (slots[n_segs - 1] - slots[0])
    )


@njit(cache=True)
def max_routes(tr_route_ptr):
    m = 1
    for k in range(len(tr_route_ptr) - 1):
        m = max(m, tr_route_ptr[k + 1] - tr_route_ptr[k])
    return m


@njit(cache=True)
def plan_objective(
    out_route,
    out_seg_slots,
    pk_ptr,
    tr_value,
    tr_release,
    route_cost,
    route_seg_ptr,
    delay_price,
    hold_price,
):
    """Objective of a per-packet assignment (``out_route[p] = -1``: undelivered)."""
    total = 0.0
    for k in range(len(tr_value)):
        for p in range(pk_ptr[k], pk_ptr[k + 1]):
            r = out_route[p]
            if r < 0:
                total += tr_value[k]
            else:
                n_segs = route_seg_ptr[r + 1] - route_seg_ptr[r]
                total += packet_cost(
                    r, out_seg_slots[p], n_segs, tr_release[k], route_cost, delay_price, hold_price
                )
    return total
