"""One frame's MEC instance: demands, source energy, and each (source, server) pair's
least-loss route and loss fraction on the bench (the planner's route machinery)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from bench import Scenario, Topology, Transfer
from bench.errors import ScenarioError
from scheduler.routes import RouteFinder


@dataclass(frozen=True)
class MecInstance:
    servers: tuple[str, ...]
    sources: tuple[str, ...]
    demand_j: np.ndarray  # per server
    available_j: np.ndarray  # per source
    quota: np.ndarray  # per source
    # loss fraction l[k, j]; inf where no route within the limits joins k to j
    loss: np.ndarray
    routes: dict[tuple[int, int], tuple[str, ...]]
    # router capacities: capacity_j[r], and uses[r] the pairs (k, j) whose route crosses r
    routers: tuple[str, ...]
    capacity_j: np.ndarray
    uses: tuple[tuple[tuple[int, int], ...], ...]

    def reachable(self, k: int, j: int) -> bool:
        return math.isfinite(self.loss[k, j])


# frames are numbered as the journal, the console and MQTT number them: from 1 in a fresh
# output folder and key store, continued by a later run (router.journal.store.FIRST_FRAME)
FIRST_FRAME = 1


def demands_of(scenario: Scenario, frame: int) -> np.ndarray:
    """D_j = requests_j x energy_per_request_j in frame number ``frame`` (as the journal
    numbers it, from FIRST_FRAME); Poisson volumes are drawn from a generator seeded by
    (seed, frame), so a frame's draw is reproducible from its number alone; a trace (read
    when the scenario was loaded) gives frame N its N-th count, wrapping around."""
    assert scenario.mec is not None
    rng = np.random.default_rng([scenario.mec.seed, frame])
    out = []
    for j, server in enumerate(scenario.mec.servers):
        if server.requests is not None:
            count = float(server.requests)
        elif server.requests_mean is not None:
            count = float(rng.poisson(server.requests_mean))
        else:
            trace = server.trace_counts
            if trace is None:
                raise ScenarioError(
                    f"mec.servers[{j}].requests_trace",
                    "the trace was not read; load the scenario from its file "
                    "(bench.load_scenario reads traces relative to it)",
                )
            count = float(trace[(frame - FIRST_FRAME) % len(trace)])
        out.append(count * server.energy_per_request_j)
    return np.asarray(out)


def build_instance(
    scenario: Scenario,
    topology: Topology,
    frame: int = FIRST_FRAME,
    finder: RouteFinder | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> MecInstance:
    """The MEC instance of frame number ``frame``: the network (``network_of``) and the
    frame's demands."""
    return replace(
        network_of(scenario, topology, finder, progress), demand_j=demands_of(scenario, frame)
    )


def network_of(
    scenario: Scenario,
    topology: Topology,
    finder: RouteFinder | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> MecInstance:
    """What does not change from frame to frame (routes, losses, limits), with zero
    demands. Raise ``ScenarioError`` (located by ``where``) when no source reaches a
    server (the scenario checker refuses such a scenario first). ``progress(done,
    total)``: servers routed so far."""
    mec = scenario.mec
    if mec is None:
        raise ScenarioError("mec", "the scenario has no [mec] section; add one (docs/mec.md)")
    finder = finder or RouteFinder(topology, scenario.frame.tau_s)
    terms = topology.terminals
    loss = np.full((len(mec.sources), len(mec.servers)), math.inf)
    routes: dict[tuple[int, int], tuple[str, ...]] = {}
    for j, server in enumerate(mec.servers):
        volts = terms[server.terminal].voltage_v
        for k, source in enumerate(mec.sources):
            if terms[source.terminal].voltage_v < volts:
                continue  # its packets would exceed the source terminal's voltage
            probe = Transfer(
                id="mec", source=source.terminal, sink=server.terminal, packets=1,
                voltage_v=volts, current_a=server.current_a, value=0.0,
            )  # fmt: skip
            # the K cheapest by packet loss (links within their limits); the accesses
            # are the same on every route: the first that fits is the least-loss one
            for route in finder.routes(probe, k=3):
                if topology.limit_violation(route, volts, server.current_a) is None:
                    per_packet = volts * server.current_a * scenario.frame.tau_s
                    lost = topology.packet_loss_j(
                        route, volts, server.current_a, scenario.frame.tau_s
                    )
                    loss[k, j] = lost / per_packet
                    routes[(k, j)] = route
                    break
        if not np.isfinite(loss[:, j]).any():
            raise ScenarioError(
                f"mec.servers[{j}].terminal",
                f"no source reaches server '{server.terminal}' within the route limits; "
                "add a line or a source near it",
            )
        if progress is not None:
            progress(j + 1, len(mec.servers))
    routers = tuple(r.id for r in scenario.routers if r.max_transfer_j is not None)
    capacity = np.asarray([scenario.router(r).max_transfer_j for r in routers], dtype=float)
    on_route = {kj: set(topology.routers_on(route)) for kj, route in routes.items()}
    uses = tuple(tuple(kj for kj in sorted(routes) if r in on_route[kj]) for r in routers)
    return MecInstance(
        servers=tuple(s.terminal for s in mec.servers),
        sources=tuple(s.terminal for s in mec.sources),
        demand_j=np.zeros(len(mec.servers)),
        available_j=np.asarray([s.available_j for s in mec.sources]),
        quota=np.asarray([mec.quota_of(s) for s in mec.sources], dtype=np.int64),
        loss=loss,
        routes=routes,
        routers=routers,
        capacity_j=capacity,
        uses=uses,
    )
