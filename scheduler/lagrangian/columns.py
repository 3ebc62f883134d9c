"""Packets as columns: one packet of transfer k on route r in given segment slots.

The Lagrangian subproblems and the repairs produce packets; the HiGHS masters of
``scheduler.lagrangian.master`` take them as columns of a packing LP/MIP. A column's
rows are the transfer (at most ``n_k`` packets), every resource it crosses in the slot
it crosses it, and every buffer place it holds, each counted in its block of ``block``
slots (``block = 1``: slot by slot, the exact constraints of docs/design.md). Blocks wider
than one slot aggregate capacities; a column then also takes one place in a
(transfer, start slot) row, which the source's access row no longer enforces.

Row keys are dense integers: resource-blocks first, then storage-blocks, then
(transfer, start slot) pairs (only when ``block > 1``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit
from numpy.typing import NDArray

from scheduler.bundles import Ints

Floats = NDArray[np.float64]


class Columns(NamedTuple):
    k: Ints  # transfer of each column
    r: Ints  # route
    slots: Ints  # (n, max segments): slot of each segment
    cost: Floats  # true cost minus the transfer's value (negative: worth delivering)
    key: Ints  # 64-bit hash of (k, r, slots), to tell columns apart

    def take(self, index: NDArray[np.integer] | NDArray[np.bool_]) -> Columns:
        return Columns(self.k[index], self.r[index], self.slots[index], self.cost[index],
                       self.key[index])  # fmt: skip

    def distinct(self) -> Columns:
        """Each column once (the first of equal keys), in their order."""
        _, first = np.unique(self.key, return_index=True)
        return self.take(np.sort(first))

    @staticmethod
    def concat(parts: list[Columns]) -> Columns:
        return Columns(
            np.concatenate([c.k for c in parts]),
            np.concatenate([c.r for c in parts]),
            np.concatenate([c.slots for c in parts]),
            np.concatenate([c.cost for c in parts]),
            np.concatenate([c.key for c in parts]),
        )


@njit(cache=True, nogil=True)
def _mix(h, v):
    """One step of a splitmix64-style hash."""
    h = (h ^ np.uint64(v)) * np.uint64(0x9E3779B97F4A7C15)
    h ^= h >> np.uint64(31)
    return h


@njit(cache=True, nogil=True)
def _extract(a, packets):
    n = 0
    for p in range(len(packets.route)):
        if packets.route[p] >= 0:
            n += 1
    width = packets.seg_slots.shape[1]
    ks = np.empty(n, dtype=np.int64)
    rs = np.empty(n, dtype=np.int64)
    slots = np.zeros((n, width), dtype=np.int64)
    cost = np.empty(n)
    key = np.empty(n, dtype=np.int64)
    j = 0
    for k in range(len(a.tr_packets)):
        rel = a.tr_release[k]
        for p in range(a.pk_ptr[k], a.pk_ptr[k + 1]):
            r = packets.route[p]
            if r < 0:
                continue
            n_segs = a.route_seg_ptr[r + 1] - a.route_seg_ptr[r]
            h = _mix(np.uint64(0x243F6A8885A308D3), k)
            h = _mix(h, r)
            for s in range(n_segs):
                slots[j, s] = packets.seg_slots[p, s]
                h = _mix(h, packets.seg_slots[p, s])
            last = packets.seg_slots[p, n_segs - 1]
            cost[j] = (
                a.route_cost[r]
                + a.delay_price * (last - rel)
                + a.hold_price * (last - packets.seg_slots[p, 0])
                - a.tr_value[k]
            )
            ks[j] = k
            rs[j] = r
            key[j] = np.int64(h)
            j += 1
    return ks, rs, slots, cost, key


def columns_of(problem_arrays, packets) -> Columns:  # type: ignore[no-untyped-def]
    """Every delivered packet of ``packets`` as a column."""
    return Columns(*_extract(problem_arrays, packets))


@njit(cache=True, nogil=True)
def column_entries(a, ks, rs, slots, block, n_slots, n_res):
    """Rows of each column as dense keys (see the module docstring), with coefficients.

    Returns (ptr, keys, coefs): column j's entries are keys[ptr[j]:ptr[j+1]]."""
    n_blocks = (n_slots + block - 1) // block
    n_store = len(a.store_cap)
    store_base = n_res * n_blocks
    pair_base = (n_res + n_store) * n_blocks
    n = len(ks)
    ptr = np.zeros(n + 1, dtype=np.int64)
    # an upper bound on the entries: resources per route, held slots, one pair row
    total = 0
    for j in range(n):
        r = rs[j]
        s0 = a.route_seg_ptr[r]
        s1 = a.route_seg_ptr[r + 1]
        total += a.seg_res_ptr[s1] - a.seg_res_ptr[s0] + 1
        total += slots[j, s1 - s0 - 1] - slots[j, 0]
    keys = np.empty(total, dtype=np.int64)
    coefs = np.empty(total)
    e = 0
    for j in range(n):
        r = rs[j]
        s0 = a.route_seg_ptr[r]
        s1 = a.route_seg_ptr[r + 1]
        start = e
        for s in range(s0, s1):
            t = slots[j, s - s0]
            for i in range(a.seg_res_ptr[s], a.seg_res_ptr[s + 1]):
                e = _add(keys, coefs, start, e, a.route_res[i] * n_blocks + t // block)
            if s < s1 - 1:
                b = a.seg_store[s]
                for u in range(t, slots[j, s - s0 + 1]):
                    e = _add(keys, coefs, start, e, store_base + b * n_blocks + u // block)
        if block > 1:
            e = _add(keys, coefs, start, e, pair_base + ks[j] * n_slots + slots[j, 0])
        ptr[j + 1] = e
    return ptr, keys[:e], coefs[:e]


@njit(cache=True, nogil=True)
def _add(keys, coefs, start, end, key):
    """Add 1 to ``key`` among the entries start..end of one column (a resource met
    twice in one block counts twice)."""
    for i in range(start, end):
        if keys[i] == key:
            coefs[i] += 1.0
            return end
    keys[end] = key
    coefs[end] = 1.0
    return end + 1


def key_space(n_res: int, n_store: int, n_transfers: int, n_slots: int, block: int) -> int:
    n_blocks = -(-n_slots // block)
    return (n_res + n_store) * n_blocks + (n_transfers * n_slots if block > 1 else 0)


def capacities(store_cap: Ints, n_res: int, n_slots: int, block: int) -> Floats:
    """Right-hand side of every resource- and storage-block row, by key."""
    n_blocks = -(-n_slots // block)
    length = np.minimum(block, n_slots - np.arange(n_blocks) * block).astype(np.float64)
    res = np.tile(length, n_res)
    store = (store_cap[:, None] * length[None, :]).ravel()
    return np.concatenate([res, store])
