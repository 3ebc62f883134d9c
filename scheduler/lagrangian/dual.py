"""Dual side of the Lagrangian planner: exact subproblems and subgradient steps."""

from __future__ import annotations

import numpy as np
from numba import njit

from scheduler.lagrangian.dp import IGNORE, best_over_routes, reconstruct, workspace


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
    below its value. Returns the sum over transfers of (priced cost - value) of the
    chosen packets; ``out_route[p] = -1`` marks packets left undelivered.
    """
    n_slots = lam.shape[1]
    max_segs = out_seg_slots.shape[1]
    max_routes = 1
    for k in range(len(tr_packets)):
        max_routes = max(max_routes, tr_route_ptr[k + 1] - tr_route_ptr[k])
    cost, row, hold_prefix, arg, best, best_route = workspace(n_slots, max_routes, max_segs)
    dummy_occ = np.zeros((1, 1), dtype=np.int64)
    dummy_store = np.zeros((1, 1), dtype=np.int64)
    dummy_cap = np.zeros(1, dtype=np.int64)
    total = 0.0
    for k in range(len(tr_packets)):
        base = pk_ptr[k]
        n = tr_packets[k]
        for p in range(base, base + n):
            out_route[p] = -1
        r0 = tr_route_ptr[k]
        if n == 0 or tr_route_ptr[k + 1] == r0:
            continue
        rel = tr_release[k]
        width = tr_deadline[k] - rel + 1
        best_over_routes(
            k,
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
        order = np.argsort(best[:width], kind="mergesort")
        value = tr_value[k]
        chosen = 0
        for i in range(width):
            if chosen >= n:
                break
            w = order[i]
            reduced = best[w] - value
            if reduced >= 0.0:
                break
            total += reduced
            r = best_route[w]
            p = base + chosen
            out_route[p] = r
            reconstruct(
                r, w, rel, route_seg_ptr[r + 1] - route_seg_ptr[r], arg[r - r0], out_seg_slots[p]
            )
            chosen += 1
    return total


@njit(cache=True)
def count_usage(
    out_route,
    out_seg_slots,
    route_seg_ptr,
    seg_res_ptr,
    route_res,
    seg_store,
    res_use,
    store_use,
):
    """Packets per resource-slot and buffer places per storage-router-slot."""
    res_use[:] = 0
    store_use[:] = 0
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
            if s < s1 - 1:
                b = seg_store[s]
                for u in range(t, out_seg_slots[p, s - s0 + 1]):
                    store_use[b, u] += 1


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
def _move(prices, grad, block, step):
    """prices += step * block gradient, clipped at zero; True per row still priced."""
    n_rows, n_slots = prices.shape
    active = np.zeros(n_rows, dtype=np.bool_)
    for r in range(n_rows):
        for t in range(n_slots):
            v = prices[r, t] + step * grad[r, t // block]
            if v > 0.0:
                prices[r, t] = v
                active[r] = True
            else:
                prices[r, t] = 0.0
    return active


@njit(cache=True)
def subgradient_step(lam, mu, res_use, store_use, store_cap, step_scale, res_active, block):
    """One projected subgradient step of size ``step_scale / ||g||^2``, with prices moved
    together in blocks of ``block`` slots (``block = 1``: the plain subgradient; larger
    blocks find the level of the prices before their shape in time).

    Returns ||g||^2 (0 means the relaxed solution breaks no relaxed constraint)."""
    n_slots = lam.shape[1]
    n_blocks = (n_slots + block - 1) // block
    grad_res = np.empty((lam.shape[0], n_blocks))
    grad_store = np.empty((mu.shape[0], n_blocks))
    ones = np.ones(lam.shape[0])
    norm2 = _block_gradient(lam, res_use, ones, block, grad_res)
    norm2 += _block_gradient(mu, store_use, store_cap * 1.0, block, grad_store)
    if norm2 == 0.0:
        return 0.0
    step = step_scale / norm2
    res_active[:] = _move(lam, grad_res, block, step)
    _move(mu, grad_store, block, step)
    return norm2
