"""The planning problem as flat arrays, shared by every solver.

A route is cut into *segments*: maximal runs of resources joined by cut-through routers
(no storage). All resources of one segment carry the packet in the same slot; at a
storage router between two segments the packet may wait, using one buffer place per
slot waited. Arrays are CSR-style so that the Numba kernels take them as they are:

    transfer k  -> routes  tr_route_ptr[k] : tr_route_ptr[k+1]
    route r     -> segments route_seg_ptr[r] : route_seg_ptr[r+1]
    segment s   -> resources route_res[seg_res_ptr[s] : seg_res_ptr[s+1]]
    segment s   -> storage router seg_store[s] it waits at afterwards (-1: last segment)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from bench import Scenario, Topology
from scheduler.bundles import Arrays
from scheduler.errors import NoRouteError
from scheduler.routes import DEFAULT_K, RouteFinder

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class PlanningProblem:
    scenario: str
    n_slots: int
    delay_price: float
    hold_price: float
    resource_ids: tuple[str, ...]
    store_ids: tuple[str, ...]  # routers with storage, indexed by seg_store
    store_cap: IntArray
    transfer_ids: tuple[str, ...]
    tr_packets: IntArray
    tr_value: FloatArray
    tr_release: IntArray
    tr_deadline: IntArray
    tr_route_ptr: IntArray
    route_cost: FloatArray  # loss price of one packet on the route
    route_res_ptr: IntArray
    route_res: IntArray
    route_seg_ptr: IntArray
    seg_res_ptr: IntArray
    seg_store: IntArray

    @property
    def n_transfers(self) -> int:
        return len(self.transfer_ids)

    @property
    def n_resources(self) -> int:
        return len(self.resource_ids)

    @property
    def n_packets(self) -> int:
        return int(self.tr_packets.sum())

    @property
    def max_segments(self) -> int:
        counts = np.diff(self.route_seg_ptr)
        return int(counts.max()) if counts.size else 1

    @property
    def packet_ptr(self) -> IntArray:
        """Packet slots of transfer k in per-packet arrays: ptr[k] : ptr[k+1]."""
        return np.concatenate(([0], np.cumsum(self.tr_packets))).astype(np.int64)

    def route(self, r: int) -> tuple[str, ...]:
        ids = self.route_res[self.route_res_ptr[r] : self.route_res_ptr[r + 1]]
        return tuple(self.resource_ids[i] for i in ids)

    def expand_slots(self, r: int, seg_slots: NDArray[np.int64]) -> list[int]:
        """Per-resource slots of route ``r`` from its per-segment slots."""
        out: list[int] = []
        for j, s in enumerate(range(self.route_seg_ptr[r], self.route_seg_ptr[r + 1])):
            out.extend([int(seg_slots[j])] * int(self.seg_res_ptr[s + 1] - self.seg_res_ptr[s]))
        return out

    @cached_property
    def fingerprint(self) -> str:
        """Digest of everything the solvers read: two problems with the same fingerprint
        are the same problem (a frame loop plans the same transfers frame after frame)."""
        h = hashlib.sha256()
        h.update(repr((self.n_slots, self.delay_price, self.hold_price)).encode())
        for name in (
            "store_cap", "tr_packets", "tr_value", "tr_release", "tr_deadline", "tr_route_ptr",
            "route_cost", "route_res_ptr", "route_res", "route_seg_ptr", "seg_res_ptr",
            "seg_store",
        ):  # fmt: skip
            h.update(np.ascontiguousarray(getattr(self, name)).tobytes())
        h.update(repr((self.resource_ids, self.store_ids)).encode())
        return h.hexdigest()

    @cached_property
    def arrays(self) -> Arrays:
        """The problem as the Numba kernels take it (one bundle)."""
        return Arrays(
            self.tr_packets,
            self.tr_value,
            self.tr_release,
            self.tr_deadline,
            self.tr_route_ptr,
            self.route_cost,
            self.route_seg_ptr,
            self.seg_res_ptr,
            self.route_res,
            self.seg_store,
            self.packet_ptr,
            self.store_cap,
            float(self.delay_price),
            float(self.hold_price),
        )


def build_problem(
    scenario: Scenario,
    topology: Topology,
    *,
    k_routes: int = DEFAULT_K,
    unroutable: Literal["error", "undelivered"] = "error",
    down_routers: frozenset[str] = frozenset(),
) -> PlanningProblem:
    """Compile a checked scenario. ``down_routers`` are left out of every route (the
    controller drops routers that stopped answering)."""
    frame, costs = scenario.frame, scenario.costs
    tau = frame.tau_s
    resource_ids = tuple(topology.resources)
    res_index = {rid: i for i, rid in enumerate(resource_ids)}
    store_ids = tuple(r.id for r in scenario.routers if r.storage_packets > 0)
    store_index = {rid: i for i, rid in enumerate(store_ids)}
    finder = RouteFinder(topology, tau)

    route_ptr, route_cost, route_res_ptr, route_res = [0], [], [0], []
    route_seg_ptr, seg_res_ptr, seg_store = [0], [0], []
    for tr in scenario.transfers:
        candidates = list(tr.paths) if tr.paths else finder.routes(tr, k_routes)
        if down_routers:
            candidates = [c for c in candidates if not set(topology.routers_on(c)) & down_routers]
        if not candidates and unroutable == "error":
            raise NoRouteError(tr.id, tr.source, tr.sink)
        for route in candidates:
            hops = topology.hops(route)
            loss_j = topology.packet_loss_j(route, tr.voltage_v, tr.current_a, tau)
            route_cost.append(costs.loss_price_per_j * loss_j)
            for i, rid in enumerate(route):
                route_res.append(res_index[rid])
                # a segment ends after resource i when the router after it can store
                if i < len(hops) and hops[i].router in store_index:
                    seg_res_ptr.append(len(route_res))
                    seg_store.append(store_index[hops[i].router])
            seg_res_ptr.append(len(route_res))
            seg_store.append(-1)
            route_res_ptr.append(len(route_res))
            route_seg_ptr.append(len(seg_store))
        route_ptr.append(len(route_cost))

    def ints(values: list[int]) -> IntArray:
        return np.asarray(values, dtype=np.int64)

    return PlanningProblem(
        scenario=scenario.name,
        n_slots=frame.slots,
        delay_price=costs.delay_price_per_slot,
        hold_price=costs.hold_price_per_slot,
        resource_ids=resource_ids,
        store_ids=store_ids,
        store_cap=ints([topology.storage_of(r) for r in store_ids]),
        transfer_ids=tuple(t.id for t in scenario.transfers),
        tr_packets=ints([t.packets for t in scenario.transfers]),
        tr_value=np.asarray([t.value for t in scenario.transfers], dtype=np.float64),
        tr_release=ints([t.release_slot for t in scenario.transfers]),
        tr_deadline=ints([t.deadline(frame) for t in scenario.transfers]),
        tr_route_ptr=ints(route_ptr),
        route_cost=np.asarray(route_cost, dtype=np.float64),
        route_res_ptr=ints(route_res_ptr),
        route_res=ints(route_res),
        route_seg_ptr=ints(route_seg_ptr),
        seg_res_ptr=ints(seg_res_ptr),
        seg_store=ints(seg_store),
    )
