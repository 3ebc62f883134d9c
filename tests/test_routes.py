"""Yen's K cheapest simple routes against enumerating every simple route."""

from __future__ import annotations

import pytest

from bench import bundled_path, load_with_topology, parse_dict
from bench.generate import GeneratorSpec, generate
from scheduler.routes import RouteFinder


def all_simple_routes(topology, tr, tau):
    """Every simple route by depth-first search, with its loss, cheapest first."""
    start = topology.terminals[tr.source].port.router
    goal = topology.terminals[tr.sink].port.router
    found = []

    def walk(router, visited, edges):
        if router == goal:
            route = (tr.source, *edges, tr.sink)
            if topology.limit_violation(route, tr.voltage_v, tr.current_a) is None:
                found.append(route)
        for rid, _port in topology.links_at[router]:
            far = topology.resources[rid].other_end(router).router
            if far not in visited:
                walk(far, visited | {far}, [*edges, rid])

    walk(start, {start}, [])
    return sorted(
        found,
        key=lambda r: (topology.packet_loss_j(r, tr.voltage_v, tr.current_a, tau), len(r)),
    )


def cases():
    yield "bench-4", load_with_topology(bundled_path())
    for seed in range(3):
        yield f"ring-{seed}", parse_dict(generate(GeneratorSpec("ring", 8, 10, 20, seed)))


@pytest.mark.parametrize(
    ("name", "loaded"), list(cases()), ids=lambda c: c if isinstance(c, str) else ""
)
@pytest.mark.parametrize("k", [1, 3, 5])
def test_yen_finds_the_k_cheapest(name, loaded, k):
    scenario, topology = loaded
    tau = scenario.frame.tau_s
    finder = RouteFinder(topology, tau)
    for tr in scenario.transfers:
        expected = all_simple_routes(topology, tr, tau)
        got = finder.routes(tr, k)
        assert len(got) == min(k, len(expected))
        assert len(set(got)) == len(got)
        losses = [topology.packet_loss_j(r, tr.voltage_v, tr.current_a, tau) for r in got]
        cheapest = [
            topology.packet_loss_j(r, tr.voltage_v, tr.current_a, tau) for r in expected[:k]
        ]
        assert losses == pytest.approx(cheapest, rel=1e-12)
        for route in got:
            topology.hops(route)  # connected and simple, or raises


def test_limits_remove_routes():
    scenario, topology = load_with_topology(bundled_path())
    tr = scenario.transfer("T2")  # PV1 -> MEC2 at 8 A
    heavy = tr.model_copy(update={"current_a": 10.0, "voltage_v": 90.0})  # 900 W > SOP24
    routes = RouteFinder(topology, scenario.frame.tau_s).routes(heavy, 5)
    assert routes and all("SOP24" not in r for r in routes)
