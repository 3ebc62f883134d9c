"""MEC benches for benchmarks and tests: a radial feeder (``bench.generate``'s tree) with
edge-computing servers and renewable sources spread along it, and a ``[mec]`` section.

Reproducible from (routers, servers, sources, seed). Servers draw Poisson requests
(means 20 to 60 a frame, 0.5 J each, 6 A packets); the sources hold about 80% of the
mean demand plus its losses, so the allocation has to choose; every tenth router caps
what it passes in a frame. Each source may take its share of the servers and two more.
"""

from __future__ import annotations

import math
from typing import Any

from bench.errors import ScenarioError
from bench.generate import GeneratorSpec, _Builder, feeder_tree

ROUTERS = (4, 1000)
ENERGY_PER_REQUEST_J = 0.5
CURRENT_A = 6.0


def generate_mec(
    routers: int, servers: int, sources: int, seed: int = 0, slots: int = 200
) -> dict[str, Any]:
    """A scenario dict (validate it with ``bench.parse_dict``)."""
    lo, hi = ROUTERS
    if not lo <= routers <= hi:
        raise ScenarioError("--routers", f"the mec family takes {lo} to {hi} routers")
    if not 1 <= sources <= routers:
        raise ScenarioError("--sources", f"give 1 to {routers} (one per router at most)")
    if not 1 <= servers <= 4 * routers:
        raise ScenarioError("--servers", f"give 1 to {4 * routers} (four per router at most)")
    spec = GeneratorSpec("feeder", max(routers, 100), 1, slots=slots, seed=seed)
    b = _Builder(spec)  # the feeder's tree, grown to any size (the spec's range is not ours)
    names = feeder_tree(b, routers)
    rng = b.rng
    server_ids = []
    for k in range(servers):  # evenly along the feeder
        tid = f"MEC{k + 1}"
        b.terminal(tid, "load", names[(k * routers) // servers])
        server_ids.append(tid)
    source_ids = []
    for k in range(sources):
        tid = f"PV{k + 1}"
        b.terminal(tid, "source", names[(k * routers + routers // 2) // sources % routers])
        source_ids.append(tid)
    means = [round(rng.uniform(20.0, 60.0), 1) for _ in server_ids]
    demand = ENERGY_PER_REQUEST_J * sum(means)
    available = round(0.8 * 1.05 * demand / sources, 1)
    data = b.finish([])
    data["name"] = f"mec-{routers}r-{servers}s-{sources}k-s{seed}"
    for i, r in enumerate(data["routers"]):
        if i % 10 == 9:
            r["max_transfer_j"] = round(0.5 * demand / 10, 1)
    data["mec"] = {
        "quota": math.ceil(servers / sources) + 2,
        "seed": seed,
        "servers": [
            {
                "terminal": t,
                "energy_per_request_j": ENERGY_PER_REQUEST_J,
                "requests_mean": m,
                "current_a": CURRENT_A,
            }
            for t, m in zip(server_ids, means, strict=True)
        ],
        "sources": [{"terminal": t, "available_j": available} for t in source_ids],
    }
    return data
