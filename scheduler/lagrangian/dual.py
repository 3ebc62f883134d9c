"""Dual side of the Lagrangian planner: exact subproblems and subgradient steps."""

from __future__ import annotations

import numpy as np
from numba import njit

from scheduler.lagrangian.dp import IGNORE, best_over_routes, reconstruct, workspace


@njit(cache=True)
def quiet_routes(res_active, mu, route_seg_ptr, seg_res_ptr, route_res, seg_store):
    """Routes that cross no priced resource and wait at no priced buffer. Their priced
    cost is the route's loss + delay * offset, never waiting (holding costs >= 0)."""
    n_routes = len(route_seg_ptr) - 1
    store_priced = np.zeros(mu.shape[0], dtype=np.bool_)
    for b in range(mu.shape[0]):
        for t in range(mu.shape[1]):
            if mu[b, t] > 0.0:
                store_priced[b] = True
                break
    quiet = np.ones(n_routes, dtype=np.bool_)
    for r in range(n_routes):
        s0 = route_seg_ptr[r]
        s1 = route_seg_ptr[r + 1]
        for i in range(seg_res_ptr[s0], seg_res_ptr[s1]):
            if res_active[route_res[i]]:
                quiet[r] = False
                break
        for s in range(s0, s1 - 1):
            if store_priced[seg_store[s]]:
                quiet[r] = False
    return quiet


@njit(cache=True)
def _quiet_best(k, tr_route_ptr, route_cost):
    """Cheapest route of a transfer whose routes are all quiet (first one on ties)."""
    best_r = tr_route_ptr[k]
    for r in range(tr_route_ptr[k] + 1, tr_route_ptr[k + 1]):
        if route_cost[r] < route_cost[best_r]:
            best_r = r
    return best_r


@njit(cache=True)
def lagrangian_subproblems(
    lam,
    mu,
    res_active,
    hold_price,
    delay_price,
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
    out_route,
    out_seg_slots,
):
    """Solve every transfer's relaxed subproblem exactly.

    A transfer keeps one constraint of its own: at most one of its packets leaves the
    source per slot. It then takes the ``n_k`` cheapest start slots whose priced cost is
    below its value (ties: earliest slot, first route). Returns the sum over transfers of
    (priced cost - value) of the chosen packets; ``out_route[p] = -1`` marks packets left
    undelivered.
    """
    n_slots = lam.shape[1]
    max_segs = out_seg_slots.shape[1]
    max_routes = 1
    for k in range(len(tr_packets)):
        max_routes = max(max_routes, tr_route_ptr[k + 1] - tr_route_ptr[k])
    cost, row, hold_prefix, arg, best, best_route = workspace(n_slots, max_routes, max_segs)
    candidates = np.empty(n_slots, dtype=np.int64)
    dummy_occ = np.zeros((1, 1), dtype=np.int64)
    dummy_store = np.zeros((1, 1), dtype=np.int64)
    dummy_cap = np.zeros(1, dtype=np.int64)
    quiet = quiet_routes(res_active, mu, route_seg_ptr, seg_res_ptr, route_res, seg_store)
    total = 0.0
    for k in range(len(tr_packets)):
        base = pk_ptr[k]
        n = tr_packets[k]
        for p in range(base, base + n):
            out_route[p] = -1
        r0 = tr_route_ptr[k]
        r1 = tr_route_ptr[k + 1]
        if n == 0 or r1 == r0:
            continue
        rel = tr_release[k]
        width = tr_deadline[k] - rel + 1
        value = tr_value[k]
        all_quiet = True
        for r in range(r0, r1):
            all_quiet = all_quiet and quiet[r]
        if all_quiet:
            # no prices on any route: the first n slots, each as cheap as it gets
            r = _quiet_best(k, tr_route_ptr, route_cost)
            n_segs = route_seg_ptr[r + 1] - route_seg_ptr[r]
            for w in range(min(n, width)):
                reduced = route_cost[r] + delay_price * w - value
                if reduced >= 0.0:
                    break
                total += reduced
                out_route[base + w] = r
                for j in range(n_segs):
                    out_seg_slots[base + w, j] = rel + w
            continue
        # Prices are >= 0, so a packet starting at offset w costs at least the cheapest
        # route's loss + delay * w. Evaluate a prefix of the window, doubling it until
        # that floor passes the n-th cheapest cost found: later slots cannot be chosen.
        floor = route_cost[r0]
        for r in range(r0 + 1, r1):
            floor = min(floor, route_cost[r])
        span = width if delay_price <= 0.0 else min(width, max(2 * n, n + 16))
        while True:
            best_over_routes(
                k,
                span,
                lam,
                mu,
                res_active,
                1.0,
                hold_price,
                delay_price,
                dummy_occ,
                dummy_store,
                dummy_cap,
                IGNORE,
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
            # only slots cheaper than the value can be chosen: sort just those
            n_cand = 0
            for w in range(span):
                if best[w] - value < 0.0:
                    candidates[n_cand] = w
                    n_cand += 1
            order = np.argsort(best[candidates[:n_cand]], kind="mergesort")
            cutoff = value if n_cand < n else best[candidates[order[n - 1]]]
            if span == width or floor + delay_price * span > cutoff:
                break
            span = min(width, 2 * span)
        for i in range(min(n, n_cand)):
            w = candidates[order[i]]
            total += best[w] - value
            r = best_route[w]
            p = base + i
            out_route[p] = r
            reconstruct(
                r, w, rel, route_seg_ptr[r + 1] - route_seg_ptr[r], arg[r - r0], out_seg_slots[p]
            )
    return total


@njit(cache=True)
def count_usage(
    out_route,
    out_seg_slots,
    route_seg_ptr,
    seg_res_ptr,
    route_res,
    seg_store,
    store_cap,
    res_use,
    store_use,
    reset,
):
    """Packets per resource-slot and buffer places per storage-router-slot, added to
    ``res_use``/``store_use`` (zeroed first if ``reset``). Returns True if some
    resource-slot or buffer is over its capacity."""
    if reset:
        res_use[:] = 0
        store_use[:] = 0
    over = False
    for p in range(len(out_route)):
        r = out_route[p]
        if r < 0:
            continue
        s0 = route_seg_ptr[r]
        s1 = route_seg_ptr[r + 1]
        for s in range(s0, s1):
            t = out_seg_slots[p, s - s0]
            for i in range(seg_res_ptr[s], seg_res_ptr[s + 1]):
                res_use[route_res[i], t] += 1
                if res_use[route_res[i], t] > 1:
                    over = True
            if s < s1 - 1:
                b = seg_store[s]
                for u in range(t, out_seg_slots[p, s - s0 + 1]):
                    store_use[b, u] += 1
                    if store_use[b, u] > store_cap[b]:
                        over = True
    return over


@njit(cache=True)
def _block_gradient(prices, use, cap, block, grad):
    """Subgradient summed over blocks of ``block`` slots, projected on prices >= 0
    (a block whose prices are all zero and whose constraint is slack does not move).
    Returns its squared norm."""
    n_rows, n_slots = prices.shape
    norm2 = 0.0
    for r in range(n_rows):
        for b in range(grad.shape[1]):
            g = 0.0
            priced = False
            for t in range(b * block, min(n_slots, (b + 1) * block)):
                g += use[r, t] - cap[r]
                if prices[r, t] > 0.0:
                    priced = True
            if g > 0.0 or priced:
                grad[r, b] = g
                norm2 += g * g
            else:
                grad[r, b] = 0.0
    return norm2


@njit(cache=True)
def _slot_norm2(prices, use, cap):
    """||g||^2 of the plain projected subgradient (blocks of one slot)."""
    norm2 = 0.0
    for r in range(prices.shape[0]):
        for t in range(prices.shape[1]):
            g = use[r, t] - cap[r]
            if g > 0.0 or prices[r, t] > 0.0:
                norm2 += g * g
    return norm2


@njit(cache=True)
def _move(prices, use, cap, grad, block, step, active, weights):
    """prices += step * gradient (per block, or per slot when ``block == 1``), clipped at
    zero; marks rows still priced, zeroes ``use`` for the next count, and returns the
    sum of the new prices weighted by ``weights`` per row."""
    n_rows, n_slots = prices.shape
    total = 0.0
    for r in range(n_rows):
        active[r] = False
        row_sum = 0.0
        for t in range(n_slots):
            g = use[r, t] - cap[r] if block == 1 else grad[r, t // block]
            use[r, t] = 0
            v = prices[r, t] + step * g
            if v > 0.0:
                prices[r, t] = v
                active[r] = True
                row_sum += v
            else:
                prices[r, t] = 0.0
        total += weights[r] * row_sum
    return total


@njit(cache=True)
def subgradient_step(
    lam, mu, res_use, store_use, store_cap, step_scale, res_active, store_active, block
):
    """One projected subgradient step of size ``step_scale / ||g||^2``, with prices moved
    together in blocks of ``block`` slots (``block = 1``: the plain subgradient; larger
    blocks find the level of the prices before their shape in time).

    Consumes the usage counts (they are zeroed). Returns (||g||^2, penalty) where the
    penalty is sum(lam) + sum(store_cap * mu) of the new prices, the constant part of
    the next dual value; ||g||^2 = 0 means no relaxed constraint is broken (prices
    unchanged)."""
    n_slots = lam.shape[1]
    ones = np.ones(lam.shape[0])
    caps = store_cap * 1.0
    if block == 1:
        grad_res = np.empty((0, 0))
        grad_store = np.empty((0, 0))
        norm2 = _slot_norm2(lam, res_use, ones) + _slot_norm2(mu, store_use, caps)
    else:
        n_blocks = (n_slots + block - 1) // block
        grad_res = np.empty((lam.shape[0], n_blocks))
        grad_store = np.empty((mu.shape[0], n_blocks))
        norm2 = _block_gradient(lam, res_use, ones, block, grad_res)
        norm2 += _block_gradient(mu, store_use, caps, block, grad_store)
    step = step_scale / norm2 if norm2 > 0.0 else 0.0
    penalty = _move(lam, res_use, ones, grad_res, block, step, res_active, ones)
    penalty += _move(mu, store_use, caps, grad_store, block, step, store_active, caps)
    return norm2, penalty
