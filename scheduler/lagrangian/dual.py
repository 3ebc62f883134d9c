"""Dual side of the Lagrangian planner: exact subproblems and subgradient steps."""

from __future__ import annotations

import numpy as np
from numba import njit

from scheduler.bundles import make_work, nowhere
from scheduler.lagrangian.dp import (
    best_over_routes,
    cheapest_floor,
    first_span,
    reconstruct,
)


@njit(cache=True, nogil=True)
def quiet_routes(a, prices):
    """Routes that cross no priced resource and wait at no priced buffer. Their priced
    cost is the route's loss + delay * offset, never waiting (holding costs >= 0)."""
    mu = prices.mu
    store_priced = np.zeros(mu.shape[0], dtype=np.bool_)
    for b in range(mu.shape[0]):
        for t in range(mu.shape[1]):
            if mu[b, t] > 0.0:
                store_priced[b] = True
                break
    n_routes = len(a.route_seg_ptr) - 1
    quiet = np.ones(n_routes, dtype=np.bool_)
    for r in range(n_routes):
        s0 = a.route_seg_ptr[r]
        s1 = a.route_seg_ptr[r + 1]
        for i in range(a.seg_res_ptr[s0], a.seg_res_ptr[s1]):
            if prices.active[a.route_res[i]]:
                quiet[r] = False
                break
        for s in range(s0, s1 - 1):
            if store_priced[a.seg_store[s]]:
                quiet[r] = False
    return quiet


@njit(cache=True, nogil=True)
def _quiet_transfer(a, k, out):
    """Subproblem of a transfer none of whose routes is priced: the first n slots on its
    cheapest route (first one on ties), each while cheaper than the value."""
    r = a.tr_route_ptr[k]
    for r2 in range(a.tr_route_ptr[k] + 1, a.tr_route_ptr[k + 1]):
        if a.route_cost[r2] < a.route_cost[r]:
            r = r2
    rel = a.tr_release[k]
    width = a.tr_deadline[k] - rel + 1
    base = a.pk_ptr[k]
    n_segs = a.route_seg_ptr[r + 1] - a.route_seg_ptr[r]
    total = 0.0
    for w in range(min(a.tr_packets[k], width)):
        reduced = a.route_cost[r] + a.delay_price * w - a.tr_value[k]
        if reduced >= 0.0:
            break
        total += reduced
        out.route[base + w] = r
        for j in range(n_segs):
            out.seg_slots[base + w, j] = rel + w
    return total


SMALL_SELECT = 64  # below this many packets, select by insertion rather than sort


@njit(cache=True, nogil=True)
def _cheapest(best, candidates, n_cand, n, buffer):
    """Positions (into ``candidates``) of the min(n, n_cand) cheapest candidates, cheapest
    first, ties by position: what a stable sort's prefix would give, without sorting
    them all or allocating when n is small."""
    if n > SMALL_SELECT:
        return np.argsort(best[candidates[:n_cand]], kind="mergesort")
    m = 0
    for i in range(n_cand):
        v = best[candidates[i]]
        if m == n and v >= best[candidates[buffer[m - 1]]]:
            continue
        j = m if m < n else n - 1  # where it goes in: after every value <= v
        while j > 0 and best[candidates[buffer[j - 1]]] > v:
            if j < n:
                buffer[j] = buffer[j - 1]
            j -= 1
        buffer[j] = i
        if m < n:
            m += 1
    return buffer[:m]


@njit(cache=True, nogil=True)
def lagrangian_subproblems(a, prices, out, spans):
    """Solve every transfer's relaxed subproblem exactly.

    ``spans[k]`` is where transfer k's search of its window starts (the offsets it
    needed last time: prices move little between iterations) and is updated; any
    value gives the same, exact, result.

    A transfer keeps one constraint of its own: at most one of its packets leaves the
    source per slot. It then takes the ``n_k`` cheapest start slots whose priced cost is
    below its value (ties: earliest slot, first route). Returns the sum over transfers of
    (priced cost - value) of the chosen packets; ``out.route[p] = -1`` marks packets left
    undelivered.
    """
    work = make_work(a, prices.lam.shape[1])
    places = nowhere()
    quiet = quiet_routes(a, prices)
    best, candidates = work.best, work.candidates
    total = 0.0
    for k in range(len(a.tr_packets)):
        base = a.pk_ptr[k]
        n = a.tr_packets[k]
        for p in range(base, base + n):
            out.route[p] = -1
        r0 = a.tr_route_ptr[k]
        r1 = a.tr_route_ptr[k + 1]
        if n == 0 or r1 == r0:
            continue
        all_quiet = True
        for r in range(r0, r1):
            all_quiet = all_quiet and quiet[r]
        if all_quiet:
            total += _quiet_transfer(a, k, out)
            continue
        rel = a.tr_release[k]
        width = a.tr_deadline[k] - rel + 1
        value = a.tr_value[k]
        # Prices are >= 0, so a packet starting at offset w costs at least the cheapest
        # route's loss + delay * w. Evaluate a prefix of the window, doubling it until
        # that floor passes the n-th cheapest cost found: later slots cannot be chosen.
        floor = cheapest_floor(a, k)
        span = min(width, max(first_span(a, width, n), spans[k]))
        while True:
            best_over_routes(a, k, span, prices, places, work)
            # only slots cheaper than the value can be chosen: sort just those
            n_cand = 0
            for w in range(span):
                if best[w] - value < 0.0:
                    candidates[n_cand] = w
                    n_cand += 1
            order = _cheapest(best, candidates, n_cand, n, work.cheapest)
            cutoff = value if n_cand < n else best[candidates[order[n - 1]]]
            if span == width or floor + a.delay_price * span > cutoff:
                break
            span = min(width, 2 * span)
        spans[k] = span
        for i in range(min(n, n_cand)):
            w = candidates[order[i]]
            total += best[w] - value
            r = work.best_route[w]
            out.route[base + i] = r
            reconstruct(a, r, w, rel, work.arg[r - r0], out.seg_slots[base + i])
    return total


@njit(cache=True, nogil=True)
def count_usage(a, packets, res_use, store_use, reset):
    """Packets per resource-slot and buffer places per storage-router-slot, added to
    ``res_use``/``store_use`` (zeroed first if ``reset``). Returns True if some
    resource-slot or buffer is over its capacity."""
    if reset:
        res_use[:] = 0
        store_use[:] = 0
    over = False
    for p in range(len(packets.route)):
        r = packets.route[p]
        if r < 0:
            continue
        s0 = a.route_seg_ptr[r]
        s1 = a.route_seg_ptr[r + 1]
        for s in range(s0, s1):
            t = packets.seg_slots[p, s - s0]
            for i in range(a.seg_res_ptr[s], a.seg_res_ptr[s + 1]):
                res_use[a.route_res[i], t] += 1
                if res_use[a.route_res[i], t] > 1:
                    over = True
            if s < s1 - 1:
                b = a.seg_store[s]
                for u in range(t, packets.seg_slots[p, s - s0 + 1]):
                    store_use[b, u] += 1
                    if store_use[b, u] > a.store_cap[b]:
                        over = True
    return over


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
def _slot_norm2(prices, use, cap):
    """||g||^2 of the plain projected subgradient (blocks of one slot)."""
    norm2 = 0.0
    for r in range(prices.shape[0]):
        for t in range(prices.shape[1]):
            g = use[r, t] - cap[r]
            if g > 0.0 or prices[r, t] > 0.0:
                norm2 += g * g
    return norm2


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
def subgradient_step(a, prices, res_use, store_use, store_active, step_scale, block):
    """One projected subgradient step of size ``step_scale / ||g||^2``, with prices moved
    together in blocks of ``block`` slots (``block = 1``: the plain subgradient; larger
    blocks find the level of the prices before their shape in time).

    Consumes the usage counts (they are zeroed). Returns (||g||^2, penalty) where the
    penalty is sum(lam) + sum(store_cap * mu) of the new prices, the constant part of
    the next dual value; ||g||^2 = 0 means no relaxed constraint is broken (prices
    unchanged)."""
    lam, mu = prices.lam, prices.mu
    ones = np.ones(lam.shape[0])
    caps = a.store_cap * 1.0
    if block == 1:
        grad_res = np.empty((0, 0))
        grad_store = np.empty((0, 0))
        norm2 = _slot_norm2(lam, res_use, ones) + _slot_norm2(mu, store_use, caps)
    else:
        n_blocks = (lam.shape[1] + block - 1) // block
        grad_res = np.empty((lam.shape[0], n_blocks))
        grad_store = np.empty((mu.shape[0], n_blocks))
        norm2 = _block_gradient(lam, res_use, ones, block, grad_res)
        norm2 += _block_gradient(mu, store_use, caps, block, grad_store)
    step = step_scale / norm2 if norm2 > 0.0 else 0.0
    penalty = _move(lam, res_use, ones, grad_res, block, step, prices.active, ones)
    penalty += _move(mu, store_use, caps, grad_store, block, step, store_active, caps)
    return norm2, penalty
