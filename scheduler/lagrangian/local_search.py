"""Local search on a feasible plan: reinsertion and ejection moves (bundles: see
``scheduler.bundles``). ``places`` must describe the plan in ``packets``."""

from __future__ import annotations

import numpy as np
from numba import njit

from scheduler.bundles import make_work, unpriced
from scheduler.lagrangian.dp import reconstruct, route_dp
from scheduler.lagrangian.occupancy import fits, occupy, packet_cost, put
from scheduler.lagrangian.repair import place_packets

EPS = 1e-12
SCAN_PER_TRY = 16  # earlier slots examined per ejection tried, at most


@njit(cache=True, nogil=True)
def cheapest_free(a, k, limit, places, work, out_slots):
    """The cheapest free place of one packet of transfer k costing less than ``limit``.

    Writes its segment slots to ``out_slots`` and returns (route, cost), or (-1, limit)
    if there is none. A cut-through route's cost grows with its slot, so its first free
    slot is its best and a scan finds it; routes through storage routers run the DP,
    only over the slots that could still beat ``limit``.
    """
    rel = a.tr_release[k]
    width = a.tr_deadline[k] - rel + 1
    prices = unpriced(places.occ.shape[0])
    best_c = limit
    best_r = -1
    for r in range(a.tr_route_ptr[k], a.tr_route_ptr[k + 1]):
        rc = a.route_cost[r]
        if rc >= best_c:
            continue
        w_max = width - 1
        if a.delay_price > 0.0:
            w_max = min(w_max, int((best_c - rc) / a.delay_price))
        s0 = a.route_seg_ptr[r]
        if a.route_seg_ptr[r + 1] - s0 == 1:
            lo = a.seg_res_ptr[s0]
            hi = a.seg_res_ptr[s0 + 1]
            for w in range(w_max + 1):
                t = rel + w
                free = True
                for i in range(lo, hi):
                    if places.occ[a.route_res[i], t] != 0:
                        free = False
                        break
                if free:
                    c = rc + a.delay_price * w
                    if c < best_c:
                        best_c = c
                        best_r = r
                        out_slots[0] = t
                    break
            continue
        arg = work.arg[0]
        route_dp(a, r, rel, w_max + 1, prices, places, work.cost, work.row, work.hold_prefix,
                 arg)  # fmt: skip
        w = np.argmin(work.cost[: w_max + 1])
        if rc + work.cost[w] < best_c:
            best_c = rc + work.cost[w]
            best_r = r
            reconstruct(a, r, w, rel, arg, out_slots)
    return best_r, best_c


@njit(cache=True, nogil=True)
def _owners(a, packets):
    """Transfer of every packet row."""
    owner = np.empty(len(packets.route), dtype=np.int64)
    for k in range(len(a.tr_packets)):
        owner[a.pk_ptr[k] : a.pk_ptr[k + 1]] = k
    return owner


@njit(cache=True, nogil=True)
def _gather_undelivered(a, k, packets):
    """Move transfer k's delivered rows in front of its undelivered ones; return the
    first undelivered row."""
    fill = a.pk_ptr[k]
    for p in range(a.pk_ptr[k], a.pk_ptr[k + 1]):
        if packets.route[p] >= 0:
            if p != fill:
                packets.route[fill] = packets.route[p]
                packets.seg_slots[fill] = packets.seg_slots[p]
                packets.route[p] = -1
            fill += 1
    return fill


@njit(cache=True, nogil=True)
def improve(a, rounds, places, packets):
    """Take each packet out and put it back on its cheapest free place, latest packets
    first; then try to deliver undelivered packets. Returns the objective's decrease."""
    work = make_work(a, places.occ.shape[1])
    slots = work.slots
    owner = _owners(a, packets)
    gained = 0.0
    for _ in range(rounds):
        moved = False
        # latest delivery first: freeing late places helps nobody, early ones do
        last = np.full(len(packets.route), -1, dtype=np.int64)
        for p in range(len(packets.route)):
            r = packets.route[p]
            if r >= 0:
                last[p] = packets.seg_slots[p, a.route_seg_ptr[r + 1] - a.route_seg_ptr[r] - 1]
        for p in np.argsort(-last, kind="mergesort"):
            r = packets.route[p]
            if r < 0:
                continue
            k = owner[p]
            now = packet_cost(a, r, packets.seg_slots[p], a.tr_release[k])
            occupy(a, r, packets.seg_slots[p], -1, places)
            r2, c2 = cheapest_free(a, k, now - EPS, places, work, slots)
            if r2 >= 0:
                put(packets, p, r2, slots, a.route_seg_ptr[r2 + 1] - a.route_seg_ptr[r2])
                gained += now - c2
                moved = True
            occupy(a, packets.route[p], packets.seg_slots[p], 1, places)
        prices = unpriced(places.occ.shape[0])
        for k in range(len(a.tr_packets)):
            fill = _gather_undelivered(a, k, packets)
            if fill == a.pk_ptr[k + 1]:
                continue
            placed, spent = place_packets(a, k, a.pk_ptr[k + 1] - fill, prices, places, packets,
                                          fill, work)  # fmt: skip
            if placed > 0:
                gained += placed * a.tr_value[k] - spent
                moved = True
        if not moved:
            break
    return gained


@njit(cache=True, nogil=True)
def _set_owner(a, r, slots, p, owner):
    s0 = a.route_seg_ptr[r]
    for s in range(s0, a.route_seg_ptr[r + 1]):
        t = slots[s - s0]
        for i in range(a.seg_res_ptr[s], a.seg_res_ptr[s + 1]):
            owner[a.route_res[i], t] = p


@njit(cache=True, nogil=True)
def _lone_blocker(a, r, t, mover, owner):
    """The one packet (other than ``mover``) on route r's resources in slot t, -1 if
    none, -2 if several."""
    blocker = -1
    for i in range(a.seg_res_ptr[a.route_seg_ptr[r]], a.seg_res_ptr[a.route_seg_ptr[r + 1]]):
        q = owner[a.route_res[i], t]
        if q >= 0 and q != mover:
            if blocker == -1:
                blocker = q
            elif q != blocker:
                return -2
    return blocker


@njit(cache=True, nogil=True)
def eject(a, max_tries, total_tries, places, packets):
    """Ejection moves: move packet A to an earlier cut-through place that exactly one
    packet B blocks, re-place B on its cheapest free place (or drop it), keep the move if
    the two together cost less. Undelivered packets try it too. At most ``max_tries``
    moves per packet and ``total_tries`` in all. Returns the objective's decrease."""
    n_res, n_slots = places.occ.shape
    work = make_work(a, n_slots)
    max_segs = packets.seg_slots.shape[1]
    slots_a = np.empty(max_segs, dtype=np.int64)
    old_a = np.empty(max_segs, dtype=np.int64)
    old_b = np.empty(max_segs, dtype=np.int64)
    new_b = np.empty(max_segs, dtype=np.int64)
    owner = np.full((n_res, n_slots), -1, dtype=np.int64)
    for p in range(len(packets.route)):
        if packets.route[p] >= 0:
            _set_owner(a, packets.route[p], packets.seg_slots[p], p, owner)
    tr_of = _owners(a, packets)
    now = np.empty(len(packets.route))
    for p in range(len(packets.route)):
        k, r = tr_of[p], packets.route[p]
        now[p] = (
            a.tr_value[k] if r < 0 else packet_cost(a, r, packets.seg_slots[p], a.tr_release[k])
        )
    gained = 0.0
    spent = 0
    for mover in np.argsort(-now, kind="mergesort"):
        if spent >= total_tries:
            break  # work budget: the costliest packets, visited first, had their turn
        k = tr_of[mover]
        rel = a.tr_release[k]
        ra = packets.route[mover]
        tries = 0
        looked = 0
        done = False
        for t in range(rel, a.tr_deadline[k] + 1):
            # a few ejections, among the earliest places: they gain the most
            if done or tries >= max_tries or looked >= SCAN_PER_TRY * max_tries:
                break
            looked += 1
            if a.delay_price * (t - rel) >= now[mover]:
                break  # later places cannot beat where A is now
            for r in range(a.tr_route_ptr[k], a.tr_route_ptr[k + 1]):
                c_new = a.route_cost[r] + a.delay_price * (t - rel)
                if c_new >= now[mover] - EPS:
                    continue
                b = _lone_blocker(a, r, t, mover, owner)
                if b < 0 or tr_of[b] == k:
                    continue  # free places are improve()'s job; B of A's transfer is a no-op
                n_segs = a.route_seg_ptr[r + 1] - a.route_seg_ptr[r]
                slots_a[:n_segs] = t
                kb, rb = tr_of[b], packets.route[b]
                old_b[:] = packets.seg_slots[b]
                # take A and B out, put A in, find B's best free place
                if ra >= 0:
                    old_a[:] = packets.seg_slots[mover]
                    occupy(a, ra, old_a, -1, places)
                occupy(a, rb, old_b, -1, places)
                tries += 1
                spent += 1
                if not fits(a, r, slots_a, places):
                    occupy(a, rb, old_b, 1, places)
                    if ra >= 0:
                        occupy(a, ra, old_a, 1, places)
                    continue
                occupy(a, r, slots_a, 1, places)
                # B's cheapest free place that still makes the move pay; or dropping B
                limit = now[mover] + now[b] - c_new - EPS
                rb2, c_b = cheapest_free(a, kb, min(limit, a.tr_value[kb]), places, work, new_b)
                if rb2 < 0:
                    c_b = a.tr_value[kb]  # B left undelivered
                if c_new + c_b < now[mover] + now[b] - EPS:
                    # keep: A on (r, t); B re-placed or dropped
                    if ra >= 0:
                        _set_owner(a, ra, old_a, -1, owner)
                    _set_owner(a, rb, old_b, -1, owner)
                    put(packets, mover, r, slots_a, n_segs)
                    _set_owner(a, r, slots_a, mover, owner)
                    if rb2 >= 0:
                        occupy(a, rb2, new_b, 1, places)
                        put(packets, b, rb2, new_b, a.route_seg_ptr[rb2 + 1] - a.route_seg_ptr[rb2])
                        _set_owner(a, rb2, new_b, b, owner)
                    else:
                        packets.route[b] = -1
                    gained += now[mover] + now[b] - c_new - c_b
                    now[mover] = c_new
                    now[b] = c_b
                    ra = r
                    done = True
                    break
                # undo
                occupy(a, r, slots_a, -1, places)
                occupy(a, rb, old_b, 1, places)
                if ra >= 0:
                    occupy(a, ra, old_a, 1, places)
    return gained
