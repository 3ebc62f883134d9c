"""Market benchmark: every rule on the bundled benches, and every rule's clearing time on a
large generated market against one welfare solve.

1. The rules compared on each bundled bench that quotes offers and bids (welfare, the
   gap to the optimum, volume, operator budget, green energy), and with the green pass
   off where the bench has green quotes. Deterministic: docs/market.md shows this table
   and tests/test_market_docs.py checks it is what this script prints.
2. 1,000 participants (500 offers, 500 bids) quote on a generated 100-router feeder
   (``ppr scenario generate --family feeder``); quotes are drawn from a seeded generator,
   so every run sees the same market. Record this table in docs/benchmarks.md.

    .venv/bin/python benchmarks/market.py [--participants 1000] [--routers 100] [--repeat 5]
    .venv/bin/python benchmarks/market.py --bundled     # the first table only
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import time
from importlib.metadata import version
from typing import Any

import numpy as np

from bench import Scenario, Topology, bundled_path, load_with_topology, parse_dict
from bench.generate import GeneratorSpec, generate
from bench.loader import BUNDLED
from scheduler.market import MECHANISMS, MarketResult, build_network, clear_market
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


def bundled_table() -> list[str]:
    """The rules side by side on every bundled bench with quotes."""
    lines = [
        "| bench | rule | welfare | gap to optimum | volume (packets) | operator budget "
        "| green J at buyers |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in BUNDLED:
        scenario, topology = load_with_topology(bundled_path(name))
        if not (scenario.offers and scenario.bids):
            continue
        has_green = any(q.green for q in scenario.offers)
        for green in (True, False) if has_green else (True,):
            for mechanism in MECHANISMS:
                r = clear_market(scenario, topology, mechanism, green=green)
                rule = mechanism if green or not has_green else f"{mechanism}, no green pass"
                lines.append(f"| {name} | {rule} | {_row(r)} |")
    return lines


def _row(r: MarketResult) -> str:
    gap = _clean(r.welfare_gap)
    share = f" ({100 * gap / r.optimum_welfare:.1f} %)" if r.optimum_welfare else ""
    return (
        f"{r.welfare:.4f} | {gap:.4f}{share} | {r.volume} | {_clean(r.budget):+.4f} "
        f"| {r.green_j:.1f}"
    )


def _clean(x: float) -> float:
    return x if abs(x) > 1e-9 else 0.0


def welfare_solve(scenario: Scenario, topology: Topology) -> None:
    FlowSolver(build_network(scenario, topology)).solve()


def best_ms(fn: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    return min(times)


def feeder_table(args: argparse.Namespace) -> list[str]:
    scenario, topology = parse_dict(
        feeder_market(args.routers, args.participants, args.slots, args.seed)
    )
    net = build_network(scenario, topology)
    for mechanism in MECHANISMS:  # warms imports, HiGHS and the Numba route search up
        clear_market(scenario, topology, mechanism)
    one = best_ms(lambda: welfare_solve(scenario, topology), args.repeat)
    lines = [
        f"{net.n_participants} participants on {len(scenario.routers)} routers, {net.n_arcs} "
        f"arcs, {scenario.frame.slots} slots; times are the best of {args.repeat} runs",
        "",
        "| rule | clearing (ms) | / one welfare solve | welfare | gap to optimum | volume "
        "| trading | operator budget |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| (one welfare solve) | {one:.1f} | 1.0 | | | | | |",
    ]
    vcg: MarketResult | None = None
    for mechanism in MECHANISMS:
        ms = best_ms(lambda m=mechanism: clear_market(scenario, topology, m), args.repeat)
        r = clear_market(scenario, topology, mechanism)
        vcg = vcg or r
        trading = sum(1 for s in r.participants if s.packets)
        lines.append(
            f"| {mechanism} | {ms:.1f} | {ms / one:.1f} | {r.welfare:.4f} "
            f"| {_clean(r.welfare_gap):.4f} | {r.volume} | {trading} | {_clean(r.budget):+.4f} |"
        )
    assert vcg is not None
    lines += [
        "",
        f"VCG: {vcg.resolves} warm re-solves. Machine: {_machine()}",
    ]
    return lines


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (
        f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, numpy "
        f"{np.__version__}, highspy {version('highspy')}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--participants", type=int, default=1000)
    parser.add_argument("--routers", type=int, default=100)
    parser.add_argument("--slots", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=5, help="runs per timing; the best counts")
    parser.add_argument("--bundled", action="store_true", help="only the bundled benches' table")
    args = parser.parse_args()
    print("\n".join(bundled_table()))
    if not args.bundled:
        print()
        print("\n".join(feeder_table(args)))


if __name__ == "__main__":
    main()
