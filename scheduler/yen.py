"""Yen's K shortest simple paths in Numba, on a multigraph in CSR arrays.

Nodes are routers, edges are lines and SOPs (parallel edges allowed). ``adj_ptr``,
``adj_node`` and ``adj_edge`` list each node's neighbours and the edge to them;
``edge_cost[e]`` is the cost of edge e for the packet at hand (``inf``: not usable).
Ties go to fewer hops, then to the lower sequence of edge indices, so results are
deterministic.
"""

from __future__ import annotations

import numpy as np
from numba import njit

INF = np.inf


@njit(cache=True, nogil=True)
def _less(c1, h1, s1, c2, h2, s2):
    if c1 != c2:
        return c1 < c2
    if h1 != h2:
        return h1 < h2
    return s1 < s2


@njit(cache=True, nogil=True)
def _push(heap_c, heap_h, heap_s, heap_n, size, c, h, s, n):
    i = size
    heap_c[i], heap_h[i], heap_s[i], heap_n[i] = c, h, s, n
    while i > 0:
        parent = (i - 1) // 2
        if _less(heap_c[i], heap_h[i], heap_s[i], heap_c[parent], heap_h[parent], heap_s[parent]):
            heap_c[i], heap_c[parent] = heap_c[parent], heap_c[i]
            heap_h[i], heap_h[parent] = heap_h[parent], heap_h[i]
            heap_s[i], heap_s[parent] = heap_s[parent], heap_s[i]
            heap_n[i], heap_n[parent] = heap_n[parent], heap_n[i]
            i = parent
        else:
            break
    return size + 1


@njit(cache=True, nogil=True)
def _pop(heap_c, heap_h, heap_s, heap_n, size):
    c, h, n = heap_c[0], heap_h[0], heap_n[0]
    size -= 1
    heap_c[0], heap_h[0], heap_s[0], heap_n[0] = (
        heap_c[size], heap_h[size], heap_s[size], heap_n[size],
    )  # fmt: skip
    i = 0
    while True:
        left, right, best = 2 * i + 1, 2 * i + 2, i
        if left < size and _less(heap_c[left], heap_h[left], heap_s[left],
                                 heap_c[best], heap_h[best], heap_s[best]):  # fmt: skip
            best = left
        if right < size and _less(heap_c[right], heap_h[right], heap_s[right],
                                  heap_c[best], heap_h[best], heap_s[best]):  # fmt: skip
            best = right
        if best == i:
            break
        heap_c[i], heap_c[best] = heap_c[best], heap_c[i]
        heap_h[i], heap_h[best] = heap_h[best], heap_h[i]
        heap_s[i], heap_s[best] = heap_s[best], heap_s[i]
        heap_n[i], heap_n[best] = heap_n[best], heap_n[i]
        i = best
    return c, h, n, size


@njit(cache=True, nogil=True)
def dijkstra(adj_ptr, adj_node, adj_edge, edge_cost, start, goal, banned_node, banned_edge,
             out_edges):  # fmt: skip
    """Cheapest path start -> goal avoiding banned nodes and edges. Writes its edges to
    ``out_edges`` and returns (cost, number of edges), or (inf, -1) if there is none."""
    n = len(adj_ptr) - 1
    dist = np.full(n, INF)
    hops = np.zeros(n, dtype=np.int64)
    back_node = np.full(n, -1, dtype=np.int64)
    back_edge = np.full(n, -1, dtype=np.int64)
    done = np.zeros(n, dtype=np.bool_)
    cap = len(adj_node) + 1
    heap_c = np.empty(cap)
    heap_h = np.empty(cap, dtype=np.int64)
    heap_s = np.empty(cap, dtype=np.int64)
    heap_n = np.empty(cap, dtype=np.int64)
    dist[start] = 0.0
    size = _push(heap_c, heap_h, heap_s, heap_n, 0, 0.0, 0, 0, start)
    seq = 0
    while size > 0:
        c, h, node, size = _pop(heap_c, heap_h, heap_s, heap_n, size)
        if done[node]:
            continue
        done[node] = True
        if node == goal:
            break
        for i in range(adj_ptr[node], adj_ptr[node + 1]):
            nxt, e = adj_node[i], adj_edge[i]
            if done[nxt] or banned_node[nxt] or banned_edge[e] or edge_cost[e] == INF:
                continue
            nc = c + edge_cost[e]
            if nc < dist[nxt] or (nc == dist[nxt] and h + 1 < hops[nxt]):
                dist[nxt], hops[nxt] = nc, h + 1
                back_node[nxt], back_edge[nxt] = node, e
                seq += 1
                size = _push(heap_c, heap_h, heap_s, heap_n, size, nc, h + 1, seq, nxt)
    if not done[goal]:
        return INF, -1
    length = hops[goal]
    node = goal
    for i in range(length - 1, -1, -1):
        out_edges[i] = back_edge[node]
        node = back_node[node]
    return dist[goal], length


@njit(cache=True, nogil=True)
def _path_nodes(edges, length, start, edge_a, edge_b, out_nodes):
    node = start
    out_nodes[0] = node
    for i in range(length):
        e = edges[i]
        node = edge_b[e] if edge_a[e] == node else edge_a[e]
        out_nodes[i + 1] = node


@njit(cache=True, nogil=True)
def _same_prefix(a, la, b, lb, upto):
    if la < upto or lb < upto:
        return False
    for i in range(upto):  # noqa: SIM110 (Numba compiles loops, not generators)
        if a[i] != b[i]:
            return False
    return True


@njit(cache=True, nogil=True)
def _same(a, la, b, lb):
    return la == lb and _same_prefix(a, la, b, lb, la)


@njit(cache=True, nogil=True)
def k_shortest(adj_ptr, adj_node, adj_edge, edge_a, edge_b, edge_cost, start, goal, k,
               max_len):  # fmt: skip
    """Yen: up to k cheapest simple paths. Returns (edges[k, max_len], lengths[k], count)."""
    n = len(adj_ptr) - 1
    n_edges = len(edge_cost)
    paths = np.full((k, max_len), -1, dtype=np.int64)
    lengths = np.zeros(k, dtype=np.int64)
    costs = np.zeros(k)
    banned_node = np.zeros(n, dtype=np.bool_)
    banned_edge = np.zeros(n_edges, dtype=np.bool_)
    tmp = np.empty(max_len, dtype=np.int64)
    c, length = dijkstra(adj_ptr, adj_node, adj_edge, edge_cost, start, goal, banned_node,
                         banned_edge, tmp)  # fmt: skip
    if length < 0:
        return paths, lengths, 0
    paths[0, :length] = tmp[:length]
    lengths[0], costs[0] = length, c
    found = 1
    cand_cap = 64
    cand = np.full((cand_cap, max_len), -1, dtype=np.int64)
    cand_len = np.zeros(cand_cap, dtype=np.int64)
    cand_cost = np.zeros(cand_cap)
    n_cand = 0
    nodes = np.empty(max_len + 1, dtype=np.int64)
    while found < k:
        last = found - 1
        _path_nodes(paths[last], lengths[last], start, edge_a, edge_b, nodes)
        for i in range(lengths[last]):
            banned_node[:] = False
            banned_edge[:] = False
            for j in range(found):
                if _same_prefix(paths[j], lengths[j], paths[last], lengths[last], i):
                    banned_edge[paths[j, i]] = True
            for j in range(i):
                banned_node[nodes[j]] = True
            spur_c, spur_len = dijkstra(adj_ptr, adj_node, adj_edge, edge_cost, nodes[i], goal,
                                        banned_node, banned_edge, tmp)  # fmt: skip
            if spur_len < 0 or i + spur_len > max_len:
                continue
            total = spur_c
            for j in range(i):
                total += edge_cost[paths[last, j]]
            full = np.empty(max_len, dtype=np.int64)
            full[:i] = paths[last, :i]
            full[i : i + spur_len] = tmp[:spur_len]
            full_len = i + spur_len
            duplicate = False
            for j in range(found):
                if _same(paths[j], lengths[j], full, full_len):
                    duplicate = True
            for j in range(n_cand):
                if _same(cand[j], cand_len[j], full, full_len):
                    duplicate = True
            if duplicate:
                continue
            if n_cand == cand_cap:  # grow the candidate pool
                cand_cap *= 2
                grown = np.full((cand_cap, max_len), -1, dtype=np.int64)
                grown[:n_cand] = cand[:n_cand]
                cand = grown
                cand_len = np.concatenate((cand_len, np.zeros(cand_cap - n_cand, np.int64)))
                cand_cost = np.concatenate((cand_cost, np.zeros(cand_cap - n_cand)))
            cand[n_cand, :full_len] = full[:full_len]
            cand[n_cand, full_len:] = -1
            cand_len[n_cand], cand_cost[n_cand] = full_len, total
            n_cand += 1
        if n_cand == 0:
            break
        best = 0
        for j in range(1, n_cand):
            if _less(cand_cost[j], cand_len[j], 0, cand_cost[best], cand_len[best], 0) or (
                cand_cost[j] == cand_cost[best]
                and cand_len[j] == cand_len[best]
                and _lexless(cand[j], cand[best], cand_len[j])
            ):
                best = j
        paths[found, :] = cand[best]
        lengths[found], costs[found] = cand_len[best], cand_cost[best]
        found += 1
        n_cand -= 1
        cand[best, :] = cand[n_cand]
        cand_len[best] = cand_len[n_cand]
        cand_cost[best] = cand_cost[n_cand]
    return paths, lengths, found


@njit(cache=True, nogil=True)
def _lexless(a, b, length):
    for i in range(length):
        if a[i] != b[i]:
            return a[i] < b[i]
    return False
