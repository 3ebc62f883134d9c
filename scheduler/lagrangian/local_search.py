"""Local search on a feasible plan: reinsertion and ejection moves."""

from __future__ import annotations

import numpy as np
from numba import njit

from scheduler.lagrangian.dp import HARD, reconstruct, route_dp, workspace
from scheduler.lagrangian.occupancy import fits, max_routes, occupy, packet_cost
from scheduler.lagrangian.repair import place_packets

EPS = 1e-12
SCAN_PER_TRY = 16  # earlier slots examined per ejection tried, at most


@njit(cache=True)
def cheapest_free(
    k,
    limit,
    hold_price,
    delay_price,
    store_cap,
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
    cost,
    row,
    hold_prefix,
    arg,
    no_lam,
    no_mu,
    no_active,
    out_slots,
):
    """The cheapest free place of one packet of transfer k costing less than ``limit``.

    Writes its segment slots to ``out_slots`` and returns (route, cost), or (-1, limit)
    if there is none. A cut-through route's cost grows with its slot, so its first free
    slot is its best and a scan finds it; routes through storage routers run the DP,
    only over the slots that could still beat ``limit``.
    """
    rel = tr_release[k]
    width = tr_deadline[k] - rel + 1
    best_c = limit
    best_r = -1
    for r in range(tr_route_ptr[k], tr_route_ptr[k + 1]):
        rc = route_cost[r]
        if rc >= best_c:
            continue
        w_max = width - 1
        if delay_price > 0.0:
            w_max = min(w_max, int((best_c - rc) / delay_price))
        s0 = route_seg_ptr[r]
        n_segs = route_seg_ptr[r + 1] - s0
        if n_segs == 1:
            lo = seg_res_ptr[s0]
            hi = seg_res_ptr[s0 + 1]
            for w in range(w_max + 1):
                t = rel + w
                free = True
                for i in range(lo, hi):
                    if occ[route_res[i], t] != 0:
                        free = False
                        break
                if free:
                    c = rc + delay_price * w
                    if c < best_c:
                        best_c = c
                        best_r = r
                        out_slots[0] = t
                    break
            continue
        route_dp(
            r,
            rel,
            w_max + 1,
            no_lam,
            no_mu,
            no_active,
            0.0,
            hold_price,
            delay_price,
            occ,
            store_occ,
            store_cap,
            HARD,
            0.0,
            route_seg_ptr,
            seg_res_ptr,
            route_res,
            seg_store,
            cost,
            row,
            hold_prefix,
            arg[0],
        )
        w = np.argmin(cost[: w_max + 1])
        if rc + cost[w] < best_c:
            best_c = rc + cost[w]
            best_r = r
            reconstruct(r, w, rel, n_segs, arg[0], out_slots)
    return best_r, best_c


@njit(cache=True)
def improve(
    rounds,
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
    """Local search on a feasible plan (``occ``/``store_occ`` must describe it): take
    each packet out and put it back on its cheapest free place, latest packets first;
    then try to deliver undelivered packets. Returns the objective's decrease."""
    n_slots = occ.shape[1]
    cost, row, hold_prefix, arg, best, best_route = workspace(
        n_slots, max_routes(tr_route_ptr), out_seg_slots.shape[1]
    )
    slots = np.empty(out_seg_slots.shape[1], dtype=np.int64)
    no_lam = np.zeros((1, 1))
    no_mu = np.zeros((max(1, store_occ.shape[0]), n_slots))
    no_active = np.zeros(occ.shape[0], dtype=np.bool_)
    gained = 0.0
    n_tr = len(tr_packets)
    owner = np.empty(len(out_route), dtype=np.int64)
    for k in range(n_tr):
        owner[pk_ptr[k] : pk_ptr[k + 1]] = k
    for _ in range(rounds):
        moved = False
        # latest delivery first: freeing late places helps nobody, early ones do
        last = np.full(len(out_route), -1, dtype=np.int64)
        for p in range(len(out_route)):
            r = out_route[p]
            if r >= 0:
                last[p] = out_seg_slots[p, route_seg_ptr[r + 1] - route_seg_ptr[r] - 1]
        for p in np.argsort(-last, kind="mergesort"):
            r = out_route[p]
            if r < 0:
                continue
            k = owner[p]
            rel = tr_release[k]
            n_segs = route_seg_ptr[r + 1] - route_seg_ptr[r]
            now = packet_cost(r, out_seg_slots[p], n_segs, rel, route_cost, delay_price, hold_price)
            occupy(
                r,
                out_seg_slots[p],
                -1,
                route_seg_ptr,
                seg_res_ptr,
                route_res,
                seg_store,
                occ,
                store_occ,
            )
            r2, c2 = cheapest_free(
                k,
                now - EPS,
                hold_price,
                delay_price,
                store_cap,
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
                cost,
                row,
                hold_prefix,
                arg,
                no_lam,
                no_mu,
                no_active,
                slots,
            )
            if r2 >= 0:
                n2 = route_seg_ptr[r2 + 1] - route_seg_ptr[r2]
                out_route[p] = r2
                for j in range(n2):
                    out_seg_slots[p, j] = slots[j]
                gained += now - c2
                moved = True
            occupy(
                out_route[p],
                out_seg_slots[p],
                1,
                route_seg_ptr,
                seg_res_ptr,
                route_res,
                seg_store,
                occ,
                store_occ,
            )
        for k in range(n_tr):
            first = pk_ptr[k + 1]
            for p in range(pk_ptr[k], pk_ptr[k + 1]):
                if out_route[p] < 0:
                    first = p
                    break
            missing = pk_ptr[k + 1] - first
            if missing == 0:
                continue
            # undelivered rows of a transfer may sit anywhere: gather them at the end
            fill = first
            for p in range(first, pk_ptr[k + 1]):
                if out_route[p] >= 0:
                    out_route[fill] = out_route[p]
                    out_seg_slots[fill] = out_seg_slots[p]
                    out_route[p] = -1
                    fill += 1
            placed, spent = place_packets(
                k,
                pk_ptr[k + 1] - fill,
                0.0,
                no_lam,
                no_mu,
                no_active,
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
                fill,
                cost,
                row,
                hold_prefix,
                arg,
                best,
                best_route,
                slots,
            )
            if placed > 0:
                gained += placed * tr_value[k] - spent
                moved = True
        if not moved:
            break
    return gained


@njit(cache=True)
def _owner_map(out_route, out_seg_slots, route_seg_ptr, seg_res_ptr, route_res, owner):
    owner[:] = -1
    for p in range(len(out_route)):
        r = out_route[p]
        if r < 0:
            continue
        s0 = route_seg_ptr[r]
        for s in range(s0, route_seg_ptr[r + 1]):
            t = out_seg_slots[p, s - s0]
            for i in range(seg_res_ptr[s], seg_res_ptr[s + 1]):
                owner[route_res[i], t] = p


@njit(cache=True)
def _set_owner(r, slots, p, route_seg_ptr, seg_res_ptr, route_res, owner):
    s0 = route_seg_ptr[r]
    for s in range(s0, route_seg_ptr[r + 1]):
        t = slots[s - s0]
        for i in range(seg_res_ptr[s], seg_res_ptr[s + 1]):
            owner[route_res[i], t] = p


@njit(cache=True)
def eject(
    max_tries,
    total_tries,
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
    """Ejection moves on a feasible plan: move packet A to an earlier cut-through place
    that exactly one packet B blocks, re-place B on its cheapest free place, keep the
    move if the two together cost less. Undelivered packets try it too. Returns the
    objective's decrease."""
    n_res, n_slots = occ.shape
    max_segs = out_seg_slots.shape[1]
    cost, row, hold_prefix, arg, _, _ = workspace(n_slots, max_routes(tr_route_ptr), max_segs)
    no_lam = np.zeros((1, 1))
    no_mu = np.zeros((max(1, store_occ.shape[0]), n_slots))
    no_active = np.zeros(n_res, dtype=np.bool_)
    slots_a = np.empty(max_segs, dtype=np.int64)
    old_a = np.empty(max_segs, dtype=np.int64)
    old_b = np.empty(max_segs, dtype=np.int64)
    new_b = np.empty(max_segs, dtype=np.int64)
    owner = np.empty((n_res, n_slots), dtype=np.int64)
    _owner_map(out_route, out_seg_slots, route_seg_ptr, seg_res_ptr, route_res, owner)
    n_pk = len(out_route)
    tr_of = np.empty(n_pk, dtype=np.int64)
    for k in range(len(tr_packets)):
        tr_of[pk_ptr[k] : pk_ptr[k + 1]] = k
    now = np.empty(n_pk)
    for p in range(n_pk):
        k = tr_of[p]
        r = out_route[p]
        if r < 0:
            now[p] = tr_value[k]
        else:
            now[p] = packet_cost(
                r,
                out_seg_slots[p],
                route_seg_ptr[r + 1] - route_seg_ptr[r],
                tr_release[k],
                route_cost,
                delay_price,
                hold_price,
            )
    gained = 0.0
    spent = 0
    for a in np.argsort(-now, kind="mergesort"):
        if spent >= total_tries:
            break  # work budget: the costliest packets, visited first, had their turn
        k = tr_of[a]
        rel = tr_release[k]
        ra = out_route[a]
        tries = 0
        looked = 0
        done = False
        for t in range(rel, tr_deadline[k] + 1):
            # a few ejections, among the earliest places: they gain the most
            if done or tries >= max_tries or looked >= SCAN_PER_TRY * max_tries:
                break
            looked += 1
            if delay_price * (t - rel) >= now[a]:
                break  # later places cannot beat where A is now
            for r in range(tr_route_ptr[k], tr_route_ptr[k + 1]):
                c_new = route_cost[r] + delay_price * (t - rel)
                if c_new >= now[a] - EPS:
                    continue
                blocker = -1
                several = False
                for i in range(
                    seg_res_ptr[route_seg_ptr[r]],
                    seg_res_ptr[route_seg_ptr[r + 1]],
                ):
                    q = owner[route_res[i], t]
                    if q >= 0 and q != a:
                        if blocker == -1:
                            blocker = q
                        elif q != blocker:
                            several = True
                            break
                if several or blocker == -1 or tr_of[blocker] == k:
                    continue  # free places are improve()'s job; B of A's transfer is a no-op
                n_segs = route_seg_ptr[r + 1] - route_seg_ptr[r]
                for j in range(n_segs):
                    slots_a[j] = t
                b = blocker
                kb = tr_of[b]
                rb = out_route[b]
                nb = route_seg_ptr[rb + 1] - route_seg_ptr[rb]
                for j in range(nb):
                    old_b[j] = out_seg_slots[b, j]
                # take A and B out, put A in, find B's best free place
                if ra >= 0:
                    na = route_seg_ptr[ra + 1] - route_seg_ptr[ra]
                    for j in range(na):
                        old_a[j] = out_seg_slots[a, j]
                    occupy(
                        ra,
                        old_a,
                        -1,
                        route_seg_ptr,
                        seg_res_ptr,
                        route_res,
                        seg_store,
                        occ,
                        store_occ,
                    )
                occupy(
                    rb, old_b, -1, route_seg_ptr, seg_res_ptr, route_res, seg_store, occ, store_occ
                )
                tries += 1
                spent += 1
                if not fits(
                    r,
                    slots_a,
                    route_seg_ptr,
                    seg_res_ptr,
                    route_res,
                    seg_store,
                    occ,
                    store_occ,
                    store_cap,
                ):
                    occupy(
                        rb,
                        old_b,
                        1,
                        route_seg_ptr,
                        seg_res_ptr,
                        route_res,
                        seg_store,
                        occ,
                        store_occ,
                    )
                    if ra >= 0:
                        occupy(
                            ra,
                            old_a,
                            1,
                            route_seg_ptr,
                            seg_res_ptr,
                            route_res,
                            seg_store,
                            occ,
                            store_occ,
                        )
                    continue
                occupy(
                    r, slots_a, 1, route_seg_ptr, seg_res_ptr, route_res, seg_store, occ, store_occ
                )
                # B's cheapest free place that still makes the move pay; or dropping B
                limit = now[a] + now[b] - c_new - EPS
                rb2, c_b = cheapest_free(
                    kb,
                    min(limit, tr_value[kb]),
                    hold_price,
                    delay_price,
                    store_cap,
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
                    cost,
                    row,
                    hold_prefix,
                    arg,
                    no_lam,
                    no_mu,
                    no_active,
                    new_b,
                )
                if rb2 < 0:
                    c_b = tr_value[kb]  # B left undelivered
                if c_new + c_b < now[a] + now[b] - EPS:
                    # keep: A on (r, t); B re-placed or dropped
                    if ra >= 0:
                        _set_owner(ra, old_a, -1, route_seg_ptr, seg_res_ptr, route_res, owner)
                    _set_owner(rb, old_b, -1, route_seg_ptr, seg_res_ptr, route_res, owner)
                    out_route[a] = r
                    for j in range(n_segs):
                        out_seg_slots[a, j] = t
                    _set_owner(r, slots_a, a, route_seg_ptr, seg_res_ptr, route_res, owner)
                    if rb2 >= 0:
                        nb2 = route_seg_ptr[rb2 + 1] - route_seg_ptr[rb2]
                        occupy(
                            rb2,
                            new_b,
                            1,
                            route_seg_ptr,
                            seg_res_ptr,
                            route_res,
                            seg_store,
                            occ,
                            store_occ,
                        )
                        out_route[b] = rb2
                        for j in range(nb2):
                            out_seg_slots[b, j] = new_b[j]
                        _set_owner(rb2, new_b, b, route_seg_ptr, seg_res_ptr, route_res, owner)
                    else:
                        out_route[b] = -1
                    gained += now[a] + now[b] - c_new - c_b
                    now[a] = c_new
                    now[b] = c_b
                    ra = r
                    done = True
                    break
                # undo
                occupy(
                    r, slots_a, -1, route_seg_ptr, seg_res_ptr, route_res, seg_store, occ, store_occ
                )
                occupy(
                    rb, old_b, 1, route_seg_ptr, seg_res_ptr, route_res, seg_store, occ, store_occ
                )
                if ra >= 0:
                    occupy(
                        ra,
                        old_a,
                        1,
                        route_seg_ptr,
                        seg_res_ptr,
                        route_res,
                        seg_store,
                        occ,
                        store_occ,
                    )
    return gained
