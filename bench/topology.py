"""The bench as a graph: resources attached to router ports, and routes through them.

A *resource* is anything that carries one packet per slot: a line, an SOP, or a
terminal's access to its router port (named by the terminal's id). A *route* is the list
of resource ids a packet crosses, source terminal first and sink terminal last; between
two consecutive resources sits the router they share.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from bench.errors import RouteError
from bench.models import PortRef, Scenario

ResourceKind = Literal["access", "line", "sop"]


@dataclass(frozen=True, slots=True)
class Resource:
    id: str
    kind: ResourceKind
    ends: tuple[PortRef, ...]  # one end for an access, two for a line or SOP
    resistance_ohm: float = 0.0
    max_current_a: float = math.inf
    max_power_w: float = math.inf
    loss_coeff: float = 0.0

    def other_end(self, router: str) -> PortRef | None:
        for i, end in enumerate(self.ends):
            if end.router == router and len(self.ends) == 2:
                return self.ends[1 - i]
        return None

    def port_at(self, router: str) -> int | None:
        for end in self.ends:
            if end.router == router:
                return end.port
        return None

    def packet_loss_j(self, voltage_v: float, current_a: float, tau_s: float) -> float:
        """Energy one packet loses crossing this resource (the planning model)."""
        if self.kind == "sop":
            return self.loss_coeff * voltage_v * current_a * tau_s
        return current_a * current_a * self.resistance_ohm * tau_s

    def limit_violation(self, voltage_v: float, current_a: float) -> str | None:
        if current_a > self.max_current_a:
            return (
                f"{self.id} carries at most {self.max_current_a:g} A, "
                f"the packet needs {current_a:g} A"
            )
        if voltage_v * current_a > self.max_power_w:
            return (
                f"{self.id} carries at most {self.max_power_w:g} W, "
                f"the packet needs {voltage_v * current_a:g} W"
            )
        return None


@dataclass(frozen=True, slots=True)
class Hop:
    """One router a route crosses: which gates it closes."""

    router: str
    in_resource: str
    in_port: int
    out_resource: str
    out_port: int


class Topology:
    """Resources and routers of a (cross-checked) scenario."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.resources: dict[str, Resource] = {}
        for t in scenario.terminals:
            self.resources[t.id] = Resource(
                t.id, "access", (t.port,), t.resistance_ohm, t.max_current_a
            )
        for line in scenario.lines:
            self.resources[line.id] = Resource(
                line.id, "line", line.ends, line.resistance_ohm, line.max_current_a
            )
        for sop in scenario.sops:
            self.resources[sop.id] = Resource(
                sop.id, "sop", sop.ends, max_power_w=sop.max_power_w, loss_coeff=sop.loss_coeff
            )
        self.routers = {r.id: r for r in scenario.routers}
        self.terminals = {t.id: t for t in scenario.terminals}
        # router -> [(resource id, port)] for every line and SOP end at that router
        self.links_at: dict[str, list[tuple[str, int]]] = {r: [] for r in self.routers}
        for res in self.resources.values():
            if res.kind != "access":
                for end in res.ends:
                    if end.router in self.links_at:
                        self.links_at[end.router].append((res.id, end.port))

    def storage_of(self, router_id: str) -> int:
        return self.routers[router_id].storage_packets

    def hops(self, route: Sequence[str]) -> list[Hop]:
        """Walk a route through its routers; raise ``RouteError`` if it is not a
        connected simple path from a terminal to a terminal."""
        if len(route) < 2:
            raise RouteError("a route needs at least a source and a sink terminal")
        first, last = route[0], route[-1]
        for rid in route:
            if rid not in self.resources:
                raise RouteError(f"unknown resource '{rid}'")
        if self.resources[first].kind != "access":
            raise RouteError(f"a route must start at a terminal, not at '{first}'")
        if self.resources[last].kind != "access":
            raise RouteError(f"a route must end at a terminal, not at '{last}'")
        router = self.resources[first].ends[0].router
        visited = {router}
        hops: list[Hop] = []
        for prev_id, next_id in itertools.pairwise(route):
            prev, nxt = self.resources[prev_id], self.resources[next_id]
            in_port = prev.ends[0].port if prev.kind == "access" else prev.port_at(router)
            out_port = nxt.port_at(router)
            if out_port is None:
                raise RouteError(f"'{prev_id}' and '{next_id}' do not meet at router {router}")
            if nxt.kind == "access" and next_id != last:
                raise RouteError(f"terminal '{next_id}' can only end a route")
            assert in_port is not None
            hops.append(Hop(router, prev_id, in_port, next_id, out_port))
            if nxt.kind != "access":
                far = nxt.other_end(router)
                assert far is not None
                router = far.router
                if router in visited:
                    raise RouteError(f"route visits router {router} twice")
                visited.add(router)
        return hops

    def routers_on(self, route: Sequence[str]) -> list[str]:
        return [h.router for h in self.hops(route)]

    def limit_violation(
        self, route: Sequence[str], voltage_v: float, current_a: float
    ) -> str | None:
        for rid in route:
            problem = self.resources[rid].limit_violation(voltage_v, current_a)
            if problem:
                return problem
        return None

    def packet_loss_j(
        self, route: Sequence[str], voltage_v: float, current_a: float, tau_s: float
    ) -> float:
        return sum(self.resources[rid].packet_loss_j(voltage_v, current_a, tau_s) for rid in route)
