"""Market benchmark: VCG with every payment against one welfare solve.

1,000 participants (500 offers, 500 bids) quote on a generated 100-router feeder
(``ppr scenario generate --family feeder``); quotes are drawn from a seeded generator, so
every run sees the same market. Prints one table; record it in docs/benchmarks.md.

    .venv/bin/python benchmarks/market.py [--participants 1000] [--routers 100] [--repeat 5]
"""

from __future__ import annotations

import argparse
import random
import time
from typing import Any

from bench import Scenario, Topology, parse_dict
from bench.generate import GeneratorSpec, generate
from scheduler.market import build_network, clear_market
from scheduler.market.flow import FlowSolver


def feeder_market(routers: int, participants: int, slots: int, seed: int) -> dict[str, Any]:
    """A generated feeder with its transfers replaced by offers and bids: sources and
    batteries sell, loads buy, in turn, so every terminal gets about the same number."""
    data = generate(GeneratorSpec("feeder", routers, transfers=1, slots=slots, seed=seed))
    rng = random.Random(f"market:{seed}")
    sellers = [t["id"] for t in data["terminals"] if t["kind"] != "load"]
    buyers = [t["id"] for t in data["terminals"] if t["kind"] == "load"]
    n_offers = participants // 2
    data["transfers"] = []
    data["offers"] = [
        {
            "id": f"S{i}",
            "terminal": sellers[i % len(sellers)],
            "packets": rng.randint(5, 40),
            "price": round(rng.uniform(0.04, 0.20), 4),
        }
        for i in range(n_offers)
    ]
    data["bids"] = [
        {
            "id": f"B{i}",
            "terminal": buyers[i % len(buyers)],
            "packets": rng.randint(5, 40),
            "price": round(rng.uniform(0.08, 0.30), 4),
        }
        for i in range(participants - n_offers)
    ]
    return data


def welfare_solve(scenario: Scenario, topology: Topology) -> None:
    FlowSolver(build_network(scenario, topology)).solve()


def best_ms(fn: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--participants", type=int, default=1000)
    parser.add_argument("--routers", type=int, default=100)
    parser.add_argument("--slots", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=5, help="runs per timing; the best counts")
    args = parser.parse_args()
    scenario, topology = parse_dict(
        feeder_market(args.routers, args.participants, args.slots, args.seed)
    )
    net = build_network(scenario, topology)
    result = clear_market(scenario, topology, "vcg")  # warms imports and HiGHS up too
    one = best_ms(lambda: welfare_solve(scenario, topology), args.repeat)
    vcg = best_ms(lambda: clear_market(scenario, topology, "vcg"), args.repeat)
    nash = best_ms(lambda: clear_market(scenario, topology, "nash"), args.repeat)
    trading = sum(1 for s in result.participants if s.packets)
    header = (
        "| participants | routers | arcs | trading | packets traded | welfare solve (ms) "
        "| VCG, all payments (ms) | VCG / one solve | Nash, all payments (ms) |"
    )
    print(header)
    print("|" + " --- |" * (header.count("|") - 1))
    print(
        f"| {net.n_participants} | {len(scenario.routers)} | {net.n_arcs} | {trading} "
        f"| {result.traded} | {one:.1f} | {vcg:.1f} | {vcg / one:.1f} | {nash:.1f} |"
    )
    print(
        f"\nwelfare {result.welfare:.4f}, operator budget {result.budget:.4f}; "
        f"{result.resolves} warm re-solves, {(vcg - one) / max(result.resolves, 1):.2f} ms each; "
        f"times are the best of {args.repeat} runs"
    )


if __name__ == "__main__":
    main()
