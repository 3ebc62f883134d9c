"""MEC energy allocation (issue 9): matching time, the epsilon-constraint grid's front,
NSGA-II from plain to improved at the same evaluations (time and hypervolume against the
grid's front, and against a grid three times as fine), and the frame stage's allocation
warm, as a share of the frame. Bench size (bench-4-mec, its
frames and a tight variant) and a generated feeder (100 routers, 200 servers, 20 sources).

    python benchmarks/mec.py            # the sizes of docs/benchmarks.md
    python benchmarks/mec.py --quick    # small (the test suite runs this)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from machine import describe  # benchmarks/machine.py, beside this script

from bench import Scenario, Topology, bundled_path, load_with_topology, parse_dict
from bench.mec_generate import generate_mec
from router.controller.mec_stage import MecStage
from scheduler.mec import (
    FIRST_FRAME,
    MecInstance,
    build_instance,
    deferred_acceptance,
    preferences,
)
from scheduler.mec.allocation import DEFAULT_GRID, exact_front, objective_vector
from scheduler.mec.front import hypervolume, reference_point
from scheduler.mec.matching import pairs_of
from scheduler.mec.nsga import STEPS, run_nsga


def matrix(inst: MecInstance, pairs, xs) -> np.ndarray:
    return np.array([objective_vector(inst, pairs, x) for x in xs])


def median_ms(fn, repeat: int) -> float:
    took = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        took.append((time.perf_counter() - began) * 1e3)
    return statistics.median(took)


def fronts(
    name: str, inst: MecInstance, pop: int, generations: int, seed: int, fine: int
) -> list[str]:
    """One instance: matching, the grid's front (and a ``fine`` x ``fine`` grid's),
    every NSGA-II step; markdown rows."""
    match_ms = median_ms(lambda: deferred_acceptance(preferences(inst)), 20)
    pairs = pairs_of(deferred_acceptance(preferences(inst)))
    began = time.perf_counter()
    exact = exact_front(inst, pairs, DEFAULT_GRID)
    exact_s = time.perf_counter() - began
    finer = matrix(inst, pairs, exact_front(inst, pairs, fine))
    runs = [run_nsga(inst, pairs, v, pop=pop, generations=generations, seed=seed) for v in STEPS]
    mats = [matrix(inst, pairs, r.front) for r in runs]
    ex = matrix(inst, pairs, exact)
    ref = reference_point(ex, finer, *mats)
    base, fine_hv = hypervolume(ex, ref), hypervolume(finer, ref)
    plain = hypervolume(mats[0], ref)
    rows = []
    for v, r, m in zip(STEPS, runs, mats, strict=True):
        hv = hypervolume(m, ref)
        rows.append(
            f"| {name} | {len(pairs)} | {match_ms:.2f} | {len(exact)} in {exact_s:.2f} s "
            f"| {v.name} | {r.evaluations} | {r.lp_solves} | {r.seconds:.2f} | {len(r.front)} "
            f"| {100 * hv / base:.1f}% | {100 * hv / fine_hv:.1f}% | {hv / plain:.2f} |"
        )
    return rows


def stage_share(name: str, scenario: Scenario, topology: Topology, frames: int) -> str:
    """The frame stage's allocation, warm: every frame after the first (cold: routes,
    imports, the first LP) as the loop runs it."""
    stage = MecStage()
    took, total = [], []
    for i in range(frames + 1):
        began = time.perf_counter()
        out = stage.prepare(i, FIRST_FRAME + i, scenario, topology)
        if i:
            took.append(out.record["allocation_ms"])
            total.append((time.perf_counter() - began) * 1e3)
    frame_ms = scenario.frame.length_s * 1e3
    med, p95 = statistics.median(took), float(np.percentile(took, 95))
    return (
        f"| {name} | {frames} | {med:.2f} | {p95:.2f} | {max(took):.2f} "
        f"| {100 * med / frame_ms:.2f}% | {statistics.median(total):.2f} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    quick = args.quick
    pop, generations = (20, 5) if quick else (100, 30)
    fine = 2 * DEFAULT_GRID if quick else 3 * DEFAULT_GRID
    bench, topo = load_with_topology(bundled_path("bench-4-mec"))
    routers, servers, sources = (8, 12, 3) if quick else (100, 200, 20)
    feeder, feeder_topo = parse_dict(generate_mec(routers, servers, sources, seed=1))
    instances: list[tuple[str, MecInstance]] = []
    for frame in range(FIRST_FRAME, FIRST_FRAME + (1 if quick else 3)):
        inst = build_instance(bench, topo, frame)
        instances.append((f"bench-4-mec frame {frame}", inst))
        tight = replace(inst, available_j=np.array([30.0, 20.0]))
        instances.append((f"bench-4-mec frame {frame}, 30/20 J", tight))
    began = time.perf_counter()
    feeder_inst = build_instance(feeder, feeder_topo, FIRST_FRAME)
    build_s = time.perf_counter() - began
    instances.append((f"feeder {routers}r {servers}s {sources}k", feeder_inst))
    print(
        f"NSGA-II: {pop} x {generations} = {pop * generations} evaluations each; "
        f"hypervolume against the epsilon-constraint grid's front ({DEFAULT_GRID} x "
        f"{DEFAULT_GRID}) and a finer grid's ({fine} x {fine}), common reference point"
    )
    print(
        "| instance | matched pairs | matching ms | grid front | NSGA-II | evaluations "
        f"| LP solves | s | points | HV / grid | HV / grid {fine} | HV / plain |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, inst in instances:
        for row in fronts(name, inst, pop, generations, args.seed, fine):
            print(row, flush=True)
    print(f"\nfeeder instance (routes and losses of {servers * sources} pairs): {build_s:.2f} s")
    print("\nThe frame stage's allocation, warm (draw, matching, pick rule by LP, packets):")
    print(
        "| scenario | frames | median ms | p95 ms | max ms | share of the frame "
        "| whole stage ms (with the transfers) |"
    )
    print("|---|---|---|---|---|---|---|")
    print(stage_share("bench-4-mec", bench, topo, 20 if quick else 200))
    print(
        stage_share(
            f"feeder {routers}r {servers}s {sources}k", feeder, feeder_topo, 5 if quick else 50
        )
    )
    print(f"\nMachine: {describe('numpy', 'highspy', 'pymoo')}")


if __name__ == "__main__":
    main()
