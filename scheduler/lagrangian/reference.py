"""The Lagrangian subproblem kernel in pure NumPy, vectorised over slots.

Same inputs, outputs and tie-breaking as ``dual.lagrangian_subproblems``; it exists to
measure what Numba buys (benchmarks/planning.py) and to cross-check the Numba kernel
(tests). Python loops run over transfers and routes only.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from scheduler.bundles import Arrays, Packets, Prices


def _suffix_min(values: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Minimum over j >= w of values[j], and the smallest such j (ties: earliest)."""
    width = len(values)
    smin = np.minimum.accumulate(values[::-1])[::-1]
    later = np.append(smin[1:], np.inf)
    is_record = values <= later  # values[w] is the minimum from w on
    first = np.where(is_record, np.arange(width), width)
    arg = np.minimum.accumulate(first[::-1])[::-1]
    return smin, arg


def _quiet_routes(res_active, mu, route_seg_ptr, seg_res_ptr, route_res, seg_store):
    """Routes with no priced resource and no priced buffer (see dual.quiet_routes)."""
    store_priced = (mu > 0.0).any(axis=1) if mu.size else np.zeros(0, dtype=bool)
    quiet = []
    for r in range(len(route_seg_ptr) - 1):
        s0, s1 = int(route_seg_ptr[r]), int(route_seg_ptr[r + 1])
        res = route_res[seg_res_ptr[s0] : seg_res_ptr[s1]]
        stores = seg_store[s0 : s1 - 1]
        quiet.append(not res_active[res].any() and not store_priced[stores].any())
    return np.asarray(quiet, dtype=bool)


def _best_over_routes(
    lam,
    mu,
    hold_price,
    delay_price,
    route_cost,
    route_seg_ptr,
    seg_res_ptr,
    route_res,
    seg_store,
    r0,
    r1,
    rel,
    span,
):
    """best cost per start offset < span over routes r0..r1-1, the route, DP choices."""
    offsets = np.arange(span)
    best = np.full(span, np.inf)
    best_route = np.full(span, -1, dtype=np.int64)
    args: dict[int, list[NDArray[np.int64]]] = {}
    hi = rel + span
    for r in range(r0, r1):
        segs = range(int(route_seg_ptr[r]), int(route_seg_ptr[r + 1]))
        res = route_res[seg_res_ptr[segs[-1]] : seg_res_ptr[segs[-1] + 1]]
        cost = lam[res, rel:hi].sum(axis=0) + delay_price * offsets
        route_args: list[NDArray[np.int64]] = []
        for s in reversed(segs[:-1]):
            b = int(seg_store[s])
            prefix = np.concatenate(([0.0], np.cumsum(hold_price + mu[b, rel : hi - 1])))
            smin, arg = _suffix_min(prefix + cost)
            res = route_res[seg_res_ptr[s] : seg_res_ptr[s + 1]]
            cost = lam[res, rel:hi].sum(axis=0) - prefix + smin
            route_args.append(arg)
        args[r] = route_args[::-1]
        total_r = route_cost[r] + cost
        better = total_r < best
        best[better] = total_r[better]
        best_route[better] = r
    return best, best_route, args


def lagrangian_subproblems_numpy(a: Arrays, prices: Prices, out: Packets) -> float:
    """``dual.lagrangian_subproblems`` in NumPy."""
    lam, mu, res_active = prices.lam, prices.mu, prices.active
    (tr_packets, tr_value, tr_release, tr_deadline, tr_route_ptr, route_cost, route_seg_ptr,
     seg_res_ptr, route_res, seg_store, pk_ptr, _, delay_price, hold_price) = a  # fmt: skip
    out_route, out_seg_slots = out.route, out.seg_slots
    total = 0.0
    quiet = _quiet_routes(res_active, mu, route_seg_ptr, seg_res_ptr, route_res, seg_store)
    for k in range(len(tr_packets)):
        base, n = int(pk_ptr[k]), int(tr_packets[k])
        out_route[base : base + n] = -1
        r0, r1 = int(tr_route_ptr[k]), int(tr_route_ptr[k + 1])
        if n == 0 or r1 == r0:
            continue
        rel, dl = int(tr_release[k]), int(tr_deadline[k])
        width = dl - rel + 1
        offsets = np.arange(width)
        if quiet[r0:r1].all():
            r = r0 + int(np.argmin(route_cost[r0:r1]))
            reduced = route_cost[r] + delay_price * offsets[:n] - tr_value[k]
            take = int(np.argmax(reduced >= 0.0)) if (reduced >= 0.0).any() else len(reduced)
            total += float(reduced[:take].sum())
            out_route[base : base + take] = r
            n_segs = int(route_seg_ptr[r + 1] - route_seg_ptr[r])
            out_seg_slots[base : base + take, :n_segs] = (rel + offsets[:take])[:, None]
            continue
        floor = float(route_cost[r0:r1].min())
        span = width if delay_price <= 0.0 else min(width, max(2 * n, n + 16))
        while True:  # the prefix doubling of dual.lagrangian_subproblems
            best, best_route, args = _best_over_routes(
                lam,
                mu,
                hold_price,
                delay_price,
                route_cost,
                route_seg_ptr,
                seg_res_ptr,
                route_res,
                seg_store,
                r0,
                r1,
                rel,
                span,
            )
            order = np.argsort(best, kind="stable")
            cheap = order[best[order] - tr_value[k] < 0.0]
            cutoff = tr_value[k] if len(cheap) < n else best[cheap[n - 1]]
            if span == width or floor + delay_price * span > cutoff:
                break
            span = min(width, 2 * span)
        chosen = cheap[:n]
        total += float((best[chosen] - tr_value[k]).sum())
        for i, w in enumerate(chosen):
            p = base + i
            r = int(best_route[w])
            out_route[p] = r
            ww = int(w)
            out_seg_slots[p, 0] = rel + ww
            for j, arg in enumerate(args[r]):
                ww = int(arg[ww])
                out_seg_slots[p, j + 1] = rel + ww
    return total
