"""Primal side of the Lagrangian planner: turn relaxed solutions into feasible plans.

``occ[r, t]`` counts packets on resource r in slot t (at most 1 in a feasible plan),
``store_occ[b, t]`` buffer places taken at storage router b in slot t. Per-packet output
arrays: ``route[p]`` (-1: undelivered) and ``seg_slots[p, j]``; packet p belongs to the
transfer k with ``pk_ptr[k] <= p < pk_ptr[k+1]``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from scheduler.lagrangian.dp import (
    HARD,
    INF,
    SOFT,
    best_over_routes,
    reconstruct,
    route_dp,
    workspace,
)

EPS = 1e-12


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
def _max_routes(tr_route_ptr):
    m = 1
    for k in range(len(tr_route_ptr) - 1):
        m = max(m, tr_route_ptr[k + 1] - tr_route_ptr[k])
    return m


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
    need_dp = True
    cursor = 0
    ranked = np.empty(0, dtype=np.int64)
    while placed < count:
        if need_dp:
            best_over_routes(
                k,
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
            ranked = np.argsort(best[:width], kind="mergesort")
            cursor = 0
            need_dp = False
        if cursor >= width or best[ranked[cursor]] == INF:
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
        occ.shape[1], _max_routes(tr_route_ptr), out_seg_slots.shape[1]
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
        occ.shape[1], _max_routes(tr_route_ptr), out_seg_slots.shape[1]
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
        n_slots, _max_routes(tr_route_ptr), out_seg_slots.shape[1]
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
            best_over_routes(
                k,
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
            width = tr_deadline[k] - rel + 1
            w = np.argmin(best[:width])
            if best[w] < now - EPS:
                r2 = best_route[w]
                n2 = route_seg_ptr[r2 + 1] - route_seg_ptr[r2]
                reconstruct(r2, w, rel, n2, arg[r2 - tr_route_ptr[k]], slots)
                out_route[p] = r2
                for j in range(n2):
                    out_seg_slots[p, j] = slots[j]
                gained += now - best[w]
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


@njit(cache=True)
def place_on(
    k,
    r,
    w,
    hold_price,
    delay_price,
    store_cap,
    tr_value,
    tr_release,
    tr_deadline,
    route_cost,
    route_seg_ptr,
    seg_res_ptr,
    route_res,
    seg_store,
    occ,
    store_occ,
    out_route,
    out_seg_slots,
    row_out,
    cost,
    row,
    hold_prefix,
    arg,
    slots,
):
    """Place one packet of transfer k on route r with its first segment at offset w
    (later segments where cheapest and free). Returns its true cost, or -1.0 if the
    place is taken or the packet would cost its value."""
    rel = tr_release[k]
    width = tr_deadline[k] - rel + 1
    no_lam = np.zeros((1, 1))
    no_active = np.zeros(occ.shape[0], dtype=np.bool_)
    no_mu = np.zeros((max(1, store_occ.shape[0]), occ.shape[1]))
    route_dp(
        r,
        rel,
        width,
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
    if cost[w] == INF:
        return -1.0
    n_segs = route_seg_ptr[r + 1] - route_seg_ptr[r]
    reconstruct(r, w, rel, n_segs, arg[0], slots)
    true_cost = packet_cost(r, slots, n_segs, rel, route_cost, delay_price, hold_price)
    if true_cost >= tr_value[k]:
        return -1.0
    occupy(r, slots, 1, route_seg_ptr, seg_res_ptr, route_res, seg_store, occ, store_occ)
    out_route[row_out] = r
    for j in range(n_segs):
        out_seg_slots[row_out, j] = slots[j]
    return true_cost


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
    cost, row, hold_prefix, arg, best, best_route = workspace(
        n_slots, _max_routes(tr_route_ptr), max_segs
    )
    slots_a = np.empty(max_segs, dtype=np.int64)
    old_a = np.empty(max_segs, dtype=np.int64)
    old_b = np.empty(max_segs, dtype=np.int64)
    new_b = np.empty(max_segs, dtype=np.int64)
    no_lam = np.zeros((1, 1))
    no_mu = np.zeros((max(1, store_occ.shape[0]), n_slots))
    no_active = np.zeros(n_res, dtype=np.bool_)
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
    for a in np.argsort(-now, kind="mergesort"):
        k = tr_of[a]
        rel = tr_release[k]
        ra = out_route[a]
        tries = 0
        done = False
        for t in range(rel, tr_deadline[k] + 1):
            if done or tries >= max_tries:
                break
            if delay_price * (t - rel) >= now[a]:
                break  # later places cannot beat where A is now
            for r in range(tr_route_ptr[k], tr_route_ptr[k + 1]):
                c_new = route_cost[r] + delay_price * (t - rel)
                if c_new >= now[a] - EPS:
                    continue
                blocker = -1
                several = False
                for i in range(
                    route_res_ptr_of(r, route_seg_ptr, seg_res_ptr),
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
                best_over_routes(
                    kb,
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
                width_b = tr_deadline[kb] - tr_release[kb] + 1
                wb = np.argmin(best[:width_b])
                c_b = best[wb] if best[wb] < tr_value[kb] else tr_value[kb]
                if c_new + c_b < now[a] + now[b] - EPS:
                    # keep: A on (r, t); B re-placed or dropped
                    if ra >= 0:
                        _set_owner(ra, old_a, -1, route_seg_ptr, seg_res_ptr, route_res, owner)
                    _set_owner(rb, old_b, -1, route_seg_ptr, seg_res_ptr, route_res, owner)
                    out_route[a] = r
                    for j in range(n_segs):
                        out_seg_slots[a, j] = t
                    _set_owner(r, slots_a, a, route_seg_ptr, seg_res_ptr, route_res, owner)
                    if best[wb] < tr_value[kb]:
                        rb2 = best_route[wb]
                        nb2 = route_seg_ptr[rb2 + 1] - route_seg_ptr[rb2]
                        reconstruct(
                            rb2, wb, tr_release[kb], nb2, arg[rb2 - tr_route_ptr[kb]], new_b
                        )
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


@njit(cache=True)
def route_res_ptr_of(r, route_seg_ptr, seg_res_ptr):
    return seg_res_ptr[route_seg_ptr[r]]


@njit(cache=True)
def negotiate(
    passes,
    pres,
    pres_growth,
    hist_step,
    order,
    hist,
    hist_store,
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
    """Negotiated congestion (PathFinder): packets may share a resource-slot for a price.

    Each pass rips up every transfer (in ``order``) and re-places its packets on the
    cheapest places by true cost + history cost ``hist`` + ``pres`` per packet already
    there. After each pass the present factor grows and every overused resource-slot's
    history cost rises by ``hist_step`` per extra packet, until nothing is overused.
    ``out_route``/``out_seg_slots`` hold the starting plan and the result; ``occ``/
    ``store_occ`` must describe the starting plan. Returns the passes run, or -1 if
    resources are still overused (the caller repairs what is left)."""
    n_res, n_slots = occ.shape
    max_segs = out_seg_slots.shape[1]
    cost, row, hold_prefix, arg, best, best_route = workspace(
        n_slots, _max_routes(tr_route_ptr), max_segs
    )
    slots = np.empty(max_segs, dtype=np.int64)
    active = np.zeros(n_res, dtype=np.bool_)
    for it in range(passes):
        for r in range(n_res):
            active[r] = False
            for t in range(n_slots):
                if hist[r, t] > 0.0:
                    active[r] = True
                    break
        for idx in range(len(order)):
            k = order[idx]
            base = pk_ptr[k]
            for p in range(base, pk_ptr[k + 1]):
                r = out_route[p]
                if r >= 0:
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
                    out_route[p] = -1
            r0 = tr_route_ptr[k]
            if tr_packets[k] == 0 or tr_route_ptr[k + 1] == r0:
                continue
            rel = tr_release[k]
            width = tr_deadline[k] - rel + 1
            best_over_routes(
                k,
                hist,
                hist_store,
                active,
                1.0,
                hold_price,
                delay_price,
                occ,
                store_occ,
                store_cap,
                SOFT,
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
            )
            ranked = np.argsort(best[:width], kind="mergesort")
            chosen = 0
            for i in range(width):
                if chosen >= tr_packets[k]:
                    break
                w = ranked[i]
                if best[w] >= tr_value[k]:
                    break
                r = best_route[w]
                n_segs = route_seg_ptr[r + 1] - route_seg_ptr[r]
                reconstruct(r, w, rel, n_segs, arg[r - r0], slots)
                occupy(
                    r, slots, 1, route_seg_ptr, seg_res_ptr, route_res, seg_store, occ, store_occ
                )
                p = base + chosen
                out_route[p] = r
                for j in range(n_segs):
                    out_seg_slots[p, j] = slots[j]
                chosen += 1
        overused = False
        for r in range(n_res):
            for t in range(n_slots):
                if occ[r, t] > 1:
                    overused = True
                    hist[r, t] += hist_step * (occ[r, t] - 1)
        for b in range(store_occ.shape[0]):
            for t in range(n_slots):
                if store_occ[b, t] > store_cap[b]:
                    overused = True
                    hist_store[b, t] += hist_step * (store_occ[b, t] - store_cap[b])
        if not overused:
            return it + 1
        pres *= pres_growth
    return -1
