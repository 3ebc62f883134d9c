"""The dynamic programme shared by the dual and the primal kernels (bundles: see
``scheduler.bundles``)."""

from __future__ import annotations

import numpy as np
from numba import njit

INF = np.inf


@njit(cache=True, nogil=True)
def _segment_row(a, prices, places, lo, hi, rel, width, out):
    """out[w] = weight * prices of the segment's resources in slot rel+w, or INF where
    one of them is taken (hard places)."""
    for w in range(width):
        out[w] = 0.0
    for i in range(lo, hi):
        r = a.route_res[i]
        if places.hard:
            taken = places.occ[r]
            for w in range(width):
                if taken[rel + w] != 0:
                    out[w] = INF
        if prices.active[r] and prices.weight != 0.0:
            row = prices.lam[r]
            for w in range(width):
                out[w] += prices.weight * row[rel + w]


@njit(cache=True, nogil=True)
def route_dp(a, route, rel, width, prices, places, cost, row, hold_prefix, arg):
    """Backward DP over the segments of one route.

    On return ``cost[w]`` is the cheapest priced cost (delay + hold + weighted prices,
    without the route's loss) of a packet whose first segment runs in slot ``rel + w``
    and whose last finishes before ``width``; ``arg[j, w]`` is the offset of segment j+1
    when segment j runs at offset w. Ties go to the earliest departure.
    """
    s_first = a.route_seg_ptr[route]
    s_last = a.route_seg_ptr[route + 1] - 1
    _segment_row(a, prices, places, a.seg_res_ptr[s_last], a.seg_res_ptr[s_last + 1], rel,
                 width, cost)  # fmt: skip
    for w in range(width):
        cost[w] += a.delay_price * w
    for s in range(s_last - 1, s_first - 1, -1):
        j = s - s_first
        b = a.seg_store[s]
        acc = 0.0
        for w in range(width):
            hold_prefix[w] = acc
            if prices.weight != 0.0:
                acc += a.hold_price + prices.weight * prices.mu[b, rel + w]
            else:
                acc += a.hold_price
        _segment_row(a, prices, places, a.seg_res_ptr[s], a.seg_res_ptr[s + 1], rel, width,
                     row)  # fmt: skip
        run = INF
        run_arg = -1
        for w in range(width - 1, -1, -1):
            if places.hard and places.store_occ[b, rel + w] >= a.store_cap[b]:
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


@njit(cache=True, nogil=True)
def reconstruct(a, route, w, rel, arg, out_slots):
    """Segment slots of the packet that starts route ``route`` at offset w."""
    ww = w
    out_slots[0] = rel + ww
    for j in range(a.route_seg_ptr[route + 1] - a.route_seg_ptr[route] - 1):
        ww = arg[j, ww]
        out_slots[j + 1] = rel + ww


@njit(cache=True, nogil=True)
def best_over_routes(a, k, width, prices, places, work):
    """For each start offset w < ``width`` of transfer k: the cheapest cost over its
    routes (``work.best[w]``) and the route that gives it (``work.best_route[w]``);
    ``work.arg[i]`` holds route r0+i's DP choices. Only slots rel .. rel+width-1 are
    used, so a packet that starts at w also finishes before ``width``."""
    rel = a.tr_release[k]
    r0 = a.tr_route_ptr[k]
    best, best_route = work.best, work.best_route
    for w in range(width):
        best[w] = INF
        best_route[w] = -1
    for r in range(r0, a.tr_route_ptr[k + 1]):
        route_dp(a, r, rel, width, prices, places, work.cost, work.row, work.hold_prefix,
                 work.arg[r - r0])  # fmt: skip
        c = a.route_cost[r]
        for w in range(width):
            v = c + work.cost[w]
            if v < best[w]:
                best[w] = v
                best_route[w] = r


@njit(cache=True, nogil=True)
def cheapest_floor(a, k):
    """The cheapest route loss of transfer k: with prices >= 0, no packet of k starting
    at offset w costs less than this + delay * w."""
    floor = a.route_cost[a.tr_route_ptr[k]]
    for r in range(a.tr_route_ptr[k] + 1, a.tr_route_ptr[k + 1]):
        floor = min(floor, a.route_cost[r])
    return floor


@njit(cache=True, nogil=True)
def first_span(a, width, n):
    """Offsets to evaluate first for n packets: a short prefix of the window, or all of it
    when delays are free (then a later slot can be as cheap as an early one)."""
    if a.delay_price <= 0.0:
        return width
    return min(width, max(2 * n, n + 16))
