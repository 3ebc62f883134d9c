"""Candidate routes: the K cheapest simple routes of a transfer (Yen's algorithm).

The graph has routers as nodes and lines/SOPs as edges (parallel edges allowed). An
edge's cost is the energy one packet of the transfer loses on it (the planning model of
docs/design.md); ties go to fewer hops, then to scenario order, so results are deterministic.
Edges whose current or power limit the packet exceeds are left out. The search itself
runs in Numba (``scheduler.yen``).
"""

from __future__ import annotations

import math

import numpy as np

from bench import Topology, Transfer
from scheduler.yen import k_shortest

DEFAULT_K = 3


class RouteFinder:
    """K cheapest simple routes on the router multigraph of one topology."""

    def __init__(self, topology: Topology, tau_s: float) -> None:
        self.topology = topology
        self.tau_s = tau_s
        self.router_ids = list(topology.routers)
        index = {r: i for i, r in enumerate(self.router_ids)}
        self.links = [rid for rid, res in topology.resources.items() if res.kind != "access"]
        link_index = {rid: i for i, rid in enumerate(self.links)}
        ends = [topology.resources[rid].ends for rid in self.links]
        self.edge_a = np.asarray([index[a.router] for a, _ in ends], dtype=np.int64)
        self.edge_b = np.asarray([index[b.router] for _, b in ends], dtype=np.int64)
        ptr, nodes, edges = [0], [], []
        for router in self.router_ids:  # neighbours in scenario order
            for rid, _port in topology.links_at[router]:
                far = topology.resources[rid].other_end(router)
                if far is not None:
                    nodes.append(index[far.router])
                    edges.append(link_index[rid])
            ptr.append(len(nodes))
        self.adj_ptr = np.asarray(ptr, dtype=np.int64)
        self.adj_node = np.asarray(nodes, dtype=np.int64)
        self.adj_edge = np.asarray(edges, dtype=np.int64)
        self.router_index = index
        self._costs: dict[tuple[float, float], np.ndarray] = {}
        self._cache: dict[tuple[str, str, float, float, int], list[tuple[str, ...]]] = {}

    def edge_costs(self, voltage_v: float, current_a: float) -> np.ndarray:
        """Loss of one packet on every line/SOP, ``inf`` where a limit forbids it."""
        key = (voltage_v, current_a)
        if key not in self._costs:
            res = self.topology.resources
            self._costs[key] = np.asarray(
                [
                    math.inf
                    if res[rid].limit_violation(voltage_v, current_a)
                    else res[rid].packet_loss_j(voltage_v, current_a, self.tau_s)
                    for rid in self.links
                ]
            )
        return self._costs[key]

    def routes(self, transfer: Transfer, k: int = DEFAULT_K) -> list[tuple[str, ...]]:
        """Up to ``k`` cheapest simple routes (resource ids), cheapest first."""
        tr = transfer
        key = (tr.source, tr.sink, tr.voltage_v, tr.current_a, k)
        if key not in self._cache:
            terminals = self.topology.terminals
            start = self.router_index[terminals[tr.source].port.router]
            goal = self.router_index[terminals[tr.sink].port.router]
            paths, lengths, found = k_shortest(
                self.adj_ptr,
                self.adj_node,
                self.adj_edge,
                self.edge_a,
                self.edge_b,
                self.edge_costs(tr.voltage_v, tr.current_a),
                start,
                goal,
                k,
                max(1, len(self.router_ids) - 1),
            )
            self._cache[key] = [
                (tr.source, *(self.links[e] for e in paths[i, : lengths[i]]), tr.sink)
                for i in range(found)
            ]
        return self._cache[key]
