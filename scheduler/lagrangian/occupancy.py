"""Placed packets: do they fit, take or give back their places, what they cost (bundles:
see ``scheduler.bundles``)."""

from __future__ import annotations

from numba import njit


@njit(cache=True, nogil=True)
def fits(a, r, slots, places):
    """Are route r's resources free in its segments' slots, and its buffers not full?"""
    s0 = a.route_seg_ptr[r]
    s1 = a.route_seg_ptr[r + 1]
    for s in range(s0, s1):
        t = slots[s - s0]
        for i in range(a.seg_res_ptr[s], a.seg_res_ptr[s + 1]):
            if places.occ[a.route_res[i], t] != 0:
                return False
        if s < s1 - 1:
            b = a.seg_store[s]
            for u in range(t, slots[s - s0 + 1]):
                if places.store_occ[b, u] >= a.store_cap[b]:
                    return False
    return True


@njit(cache=True, nogil=True)
def occupy(a, r, slots, delta, places):
    """Take (delta = 1) or give back (delta = -1) a packet's places."""
    s0 = a.route_seg_ptr[r]
    s1 = a.route_seg_ptr[r + 1]
    for s in range(s0, s1):
        t = slots[s - s0]
        for i in range(a.seg_res_ptr[s], a.seg_res_ptr[s + 1]):
            places.occ[a.route_res[i], t] += delta
        if s < s1 - 1:
            b = a.seg_store[s]
            for u in range(t, slots[s - s0 + 1]):
                places.store_occ[b, u] += delta


@njit(cache=True, nogil=True)
def packet_cost(a, r, slots, rel):
    """True cost of one delivered packet: losses + delay + slots held in storage."""
    last = slots[a.route_seg_ptr[r + 1] - a.route_seg_ptr[r] - 1]
    return a.route_cost[r] + a.delay_price * (last - rel) + a.hold_price * (last - slots[0])


@njit(cache=True, nogil=True)
def put(packets, p, r, slots, n_segs):
    """Write a placed packet into output row p."""
    packets.route[p] = r
    for j in range(n_segs):
        packets.seg_slots[p, j] = slots[j]


@njit(cache=True, nogil=True)
def plan_objective(a, packets):
    """Objective of a per-packet assignment (``route[p] = -1``: undelivered)."""
    total = 0.0
    for k in range(len(a.tr_value)):
        for p in range(a.pk_ptr[k], a.pk_ptr[k + 1]):
            r = packets.route[p]
            if r < 0:
                total += a.tr_value[k]
            else:
                total += packet_cost(a, r, packets.seg_slots[p], a.tr_release[k])
    return total
