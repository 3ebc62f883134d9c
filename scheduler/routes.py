"""Candidate routes: the K cheapest simple routes of a transfer (Yen's algorithm).

The graph has routers as nodes and lines/SOPs as edges (parallel edges allowed). An
edge's cost is the energy one packet of the transfer loses on it (the planning model of
DESIGN.md); ties go to fewer hops, then to scenario order, so results are deterministic.
Edges whose current or power limit the packet exceeds are left out.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass

from bench import Topology, Transfer

DEFAULT_K = 3


@dataclass(frozen=True, slots=True)
class _Path:
    nodes: tuple[str, ...]  # routers, source router first
    edges: tuple[str, ...]  # resource ids of lines/SOPs between them
    cost: float


class RouteFinder:
    """Yen's K-shortest simple paths on the router multigraph of one topology."""

    def __init__(self, topology: Topology, tau_s: float) -> None:
        self.topology = topology
        self.tau_s = tau_s
        # router -> [(neighbour router, resource id)] in scenario order
        self.adjacent: dict[str, list[tuple[str, str]]] = {r: [] for r in topology.routers}
        for router, links in topology.links_at.items():
            for rid, _port in links:
                far = topology.resources[rid].other_end(router)
                if far is not None:
                    self.adjacent[router].append((far.router, rid))
        self._cache: dict[tuple[str, str, float, float, int], list[tuple[str, ...]]] = {}

    def routes(self, transfer: Transfer, k: int = DEFAULT_K) -> list[tuple[str, ...]]:
        """Up to ``k`` cheapest simple routes (resource ids), cheapest first."""
        key = (transfer.source, transfer.sink, transfer.voltage_v, transfer.current_a, k)
        if key not in self._cache:
            self._cache[key] = self._routes(transfer, k)
        return self._cache[key]

    def _routes(self, tr: Transfer, k: int) -> list[tuple[str, ...]]:
        topo = self.topology
        start = topo.terminals[tr.source].port.router
        goal = topo.terminals[tr.sink].port.router
        cost = {
            rid: res.packet_loss_j(tr.voltage_v, tr.current_a, self.tau_s)
            for rid, res in topo.resources.items()
            if res.kind != "access" and res.limit_violation(tr.voltage_v, tr.current_a) is None
        }
        found = _yen(self.adjacent, cost, start, goal, k)
        return [(tr.source, *p.edges, tr.sink) for p in found]


def _yen(
    adjacent: dict[str, list[tuple[str, str]]],
    cost: dict[str, float],
    start: str,
    goal: str,
    k: int,
) -> list[_Path]:
    first = _dijkstra(adjacent, cost, start, goal, frozenset(), frozenset())
    if first is None:
        return []
    chosen = [first]
    seen = {first.edges}
    candidates: list[tuple[float, int, tuple[str, ...], _Path]] = []
    while len(chosen) < k:
        last = chosen[-1]
        for i in range(len(last.nodes) - 1):
            root_nodes, root_edges = last.nodes[: i + 1], last.edges[:i]
            banned_edges = frozenset(
                p.edges[i] for p in chosen if p.nodes[: i + 1] == root_nodes and len(p.edges) > i
            )
            banned_nodes = frozenset(root_nodes[:-1])
            spur = _dijkstra(adjacent, cost, root_nodes[-1], goal, banned_nodes, banned_edges)
            if spur is None:
                continue
            edges = root_edges + spur.edges
            if edges in seen:
                continue
            seen.add(edges)
            path = _Path(root_nodes[:-1] + spur.nodes, edges, _total(cost, edges))
            heapq.heappush(candidates, (path.cost, len(edges), edges, path))
        if not candidates:
            break
        chosen.append(heapq.heappop(candidates)[3])
    return chosen


def _total(cost: dict[str, float], edges: Iterable[str]) -> float:
    return sum(cost[e] for e in edges)


def _dijkstra(
    adjacent: dict[str, list[tuple[str, str]]],
    cost: dict[str, float],
    start: str,
    goal: str,
    banned_nodes: frozenset[str],
    banned_edges: frozenset[str],
) -> _Path | None:
    # (cost, hops, order) keys; stops as soon as the goal is settled.
    best: dict[str, tuple[float, int]] = {start: (0.0, 0)}
    back: dict[str, tuple[str, str]] = {}
    heap: list[tuple[float, int, int, str]] = [(0.0, 0, 0, start)]
    order = 0
    done: set[str] = set()
    while heap:
        c, hops, _, node = heapq.heappop(heap)
        if node in done:
            continue
        done.add(node)
        if node == goal:
            break
        for nxt, rid in adjacent[node]:
            if nxt in banned_nodes or rid in banned_edges or rid not in cost or nxt in done:
                continue
            key = (c + cost[rid], hops + 1)
            if nxt not in best or key < best[nxt]:
                best[nxt] = key
                back[nxt] = (node, rid)
                order += 1
                heapq.heappush(heap, (key[0], key[1], order, nxt))
    if goal not in done:
        return None
    nodes, edges = [goal], []
    while nodes[-1] != start:
        prev, rid = back[nodes[-1]]
        nodes.append(prev)
        edges.append(rid)
    nodes.reverse()
    edges.reverse()
    return _Path(tuple(nodes), tuple(edges), best[goal][0])
