"""Planning benchmark: lr, milp and greedy on the same instances, in one run.

    .venv/bin/python benchmarks/planning.py            # everything (several minutes)
    .venv/bin/python benchmarks/planning.py --quick    # small instances only

Prints Markdown tables: objective, certified bound, gap, gap to the MILP optimum where
HiGHS proves one, solve time and ratios; lr as the controller runs it (no finishing)
and as ``ppr plan`` runs it (2 s finishing budget); ring-16 once more with a minute of
finishing, which lifts the bound to the LP relaxation's, the best any Lagrangian bound
can reach; the Numba subproblem kernel against its pure-NumPy twin at the prices of an
actual lr run; the 500-router feeder in a child process so that its peak memory is its
own. Times drift on a shared machine; compare the ratios within one run. Compile time
is reported apart from solve time.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from machine import describe  # benchmarks/machine.py, beside this script

from bench import bundled_path, load_with_topology, parse_dict
from bench.generate import GeneratorSpec, generate
from scheduler import (
    LrOptions,
    MilpOptions,
    PlanningProblem,
    build_problem,
    ensure_compiled,
    solve_greedy,
    solve_milp,
    verify_plan,
)
from scheduler.lagrangian import dual
from scheduler.lagrangian.reference import lagrangian_subproblems_numpy
from scheduler.lagrangian.solver import LagrangianSolver, solve_lr
from scheduler.plan import Assignment

SMALL = {  # bench-sized instances HiGHS solves to proven optimality
    "bench-4": None,
    "ring-6 s1": GeneratorSpec("ring", 6, 12, 100, 1, 150),
    "ring-6 s2": GeneratorSpec("ring", 6, 12, 100, 2, 150),
    "ring-8 s1": GeneratorSpec("ring", 8, 20, 150, 1, 300),
    "ring-8 s2": GeneratorSpec("ring", 8, 20, 150, 2, 300),
    "ring-8 s3": GeneratorSpec("ring", 8, 20, 150, 3, 300),
    "hotspot-6": GeneratorSpec("hotspot", 6, 20, 100, 1),
    "hotspot-8": GeneratorSpec("hotspot", 8, 40, 200, 1),
}
RING16 = GeneratorSpec("ring", 16, 100, 1000, 1, 2000)
HOTSPOTS = [GeneratorSpec("hotspot", 12, 60, 400, s) for s in range(3)]
FEEDER = GeneratorSpec("feeder", 500, 1000, 1000, 1, 20000)


FINISH_S = 2.0  # ppr plan's default finishing budget
LONG_FINISH_S = 60.0


@dataclass
class Row:
    name: str
    packets: int
    lr_obj: float
    lr_bound: float
    lr_ms: float
    greedy_obj: float
    fin_obj: float = 0.0  # lr with FINISH_S of finishing
    fin_bound: float = 0.0
    fin_ms: float = 0.0
    milp_obj: float | None = None
    milp_bound: float | None = None
    milp_ms: float | None = None
    milp_status: str = ""

    @property
    def gap(self) -> float:
        return gap(self.lr_obj, self.lr_bound)

    @property
    def fin_gap(self) -> float:
        return gap(self.fin_obj, self.fin_bound)


def gap(objective: float, bound: float) -> float:
    return (objective - bound) / objective if objective else 0.0


def load(spec: GeneratorSpec | None):
    return load_with_topology(bundled_path()) if spec is None else parse_dict(generate(spec))


def timed_lr(
    problem: PlanningProblem, runs: int, finish_s: float = 0.0
) -> tuple[float, float, float]:
    """(objective, bound, median solve ms) over ``runs`` compiled runs."""
    times, plan = [], None
    for _ in range(runs):
        plan = solve_lr(problem, LrOptions(finish_s=finish_s))
        times.append(plan.solve_ms)
    assert plan is not None and plan.lower_bound is not None
    return plan.objective, plan.lower_bound, statistics.median(times)


def run_case(name: str, spec: GeneratorSpec | None, milp: bool, runs: int) -> Row:
    scenario, topology = load(spec)
    problem = build_problem(scenario, topology)
    obj, bound, ms = timed_lr(problem, runs)
    greedy = solve_greedy(problem)
    row = Row(name, problem.n_packets, obj, bound, ms, greedy.objective)
    row.fin_obj, row.fin_bound, row.fin_ms = timed_lr(problem, 1 if milp else runs, FINISH_S)
    if milp:
        m = solve_milp(problem, MilpOptions(time_limit_s=300))
        verify_plan(scenario, m.to_json())
        row.milp_obj, row.milp_bound, row.milp_ms = m.objective, m.lower_bound, m.solve_ms
        row.milp_status = m.status
    return row


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f} %"


def print_small(rows: list[Row]) -> None:
    print("\n### Bench instances against the MILP optimum\n")
    print("| instance | packets | lr objective | lr gap | lr vs optimum | lr ms | milp/lr time "
          f"| lr+{FINISH_S:g} s objective | gap | vs optimum | ms | milp/lr time "
          "| milp objective | milp status | milp ms | greedy vs lr |")  # fmt: skip
    print("|" + " --- |" * 16)
    for r in rows:
        assert r.milp_obj is not None and r.milp_ms is not None
        vs_opt = (r.lr_obj - r.milp_obj) / r.milp_obj
        fin_vs_opt = (r.fin_obj - r.milp_obj) / r.milp_obj
        better = pct((r.greedy_obj - r.lr_obj) / r.greedy_obj)
        print(f"| {r.name} | {r.packets} | {r.lr_obj:.5f} | {pct(r.gap)} | {pct(vs_opt)} "
              f"| {r.lr_ms:.1f} | {r.milp_ms / r.lr_ms:.0f}x | {r.fin_obj:.5f} "
              f"| {pct(r.fin_gap)} | {pct(fin_vs_opt)} | {r.fin_ms:.0f} "
              f"| {r.milp_ms / r.fin_ms:.0f}x | {r.milp_obj:.5f} | {r.milp_status} "
              f"| {r.milp_ms:.0f} | {better} |")  # fmt: skip


def kernel_ratio(problem: PlanningProblem, reps: int) -> tuple[float, float]:
    """Median ms of the Numba and the NumPy subproblem kernel at the final lr prices."""
    solver = LagrangianSolver(problem, LrOptions())
    solver.run()
    p = problem
    prices = solver.prices()
    a, b = Assignment.empty(p), Assignment.empty(p)
    fast, slow = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        v1 = dual.lagrangian_subproblems(
            p.arrays, prices, a.packets, np.zeros(p.n_transfers, dtype=np.int64)
        )
        t1 = time.perf_counter()
        v2 = lagrangian_subproblems_numpy(p.arrays, prices, b.packets)
        t2 = time.perf_counter()
        assert abs(v1 - v2) <= 1e-9 * max(1.0, abs(v1)) and np.array_equal(a.route, b.route)
        fast.append(t1 - t0)
        slow.append(t2 - t1)
    return statistics.median(fast) * 1e3, statistics.median(slow) * 1e3


def print_long_finish() -> None:
    """ring-16 with a minute of finishing: the bound reaches the LP relaxation's (no
    Lagrangian bound can pass it), and what gap is left is the relaxation's own."""
    scenario, topology = load(RING16)
    plan = solve_lr(build_problem(scenario, topology), LrOptions(finish_s=LONG_FINISH_S))
    verify_plan(scenario, plan.to_json())
    finish = plan.stats["finish"]
    assert plan.lower_bound is not None and plan.gap is not None
    reached = "the LP relaxation's" if finish.get("converged") else "LP relaxation not reached"
    print(f"\nring-16 with {LONG_FINISH_S:g} s of finishing: objective {plan.objective:.5f}, "
          f"bound {plan.lower_bound:.5f} ({reached}), certified gap {pct(plan.gap)}, "
          f"{plan.solve_ms / 1000:.1f} s")  # fmt: skip


def feeder_child() -> None:
    """Run in a child process: the feeder alone, its peak memory its own."""
    compile_ms = ensure_compiled()
    start = time.perf_counter()
    scenario, topology = load(FEEDER)
    problem = build_problem(scenario, topology)
    build_ms = (time.perf_counter() - start) * 1e3
    plan = solve_lr(problem)
    greedy = solve_greedy(problem)
    verify_plan(scenario, plan.to_json())
    fast, slow = kernel_ratio(problem, 3)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({
        "packets": problem.n_packets, "transfers": problem.n_transfers,
        "build_ms": build_ms, "solve_ms": plan.solve_ms, "objective": plan.objective,
        "bound": plan.lower_bound, "gap": plan.gap, "greedy": greedy.objective,
        "compile_ms": compile_ms, "peak_mb": peak_mb, "numba_ms": fast, "numpy_ms": slow,
        "iterations": plan.stats["iterations"],
    }))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small instances only")
    parser.add_argument("--feeder-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.feeder_child:
        feeder_child()
        return
    print(f"compile/cache load of the Numba kernels: {ensure_compiled():.0f} ms (once)")
    small = dict(list(SMALL.items())[:3]) if args.quick else SMALL
    rows = [run_case(name, spec, milp=True, runs=3) for name, spec in small.items()]
    print_small(rows)
    if args.quick:
        return

    print("\n### Larger instances: lr against greedy\n")
    print("| instance | packets | lr objective | lr bound | certified gap | lr ms (median of 5) "
          f"| lr+{FINISH_S:g} s objective | bound | gap | ms "
          "| greedy objective | lr better than greedy by |")  # fmt: skip
    print("|" + " --- |" * 12)
    for name, spec in [("ring-16, 1000 slots", RING16)] + [
        (f"hotspot-12 s{s.seed}", s) for s in HOTSPOTS
    ]:
        r = run_case(name, spec, milp=False, runs=5)
        better = pct((r.greedy_obj - r.lr_obj) / r.greedy_obj)
        print(f"| {name} | {r.packets} | {r.lr_obj:.5f} | {r.lr_bound:.5f} | {pct(r.gap)} "
              f"| {r.lr_ms:.1f} | {r.fin_obj:.5f} | {r.fin_bound:.5f} | {pct(r.fin_gap)} "
              f"| {r.fin_ms:.0f} | {r.greedy_obj:.5f} | {better} |")  # fmt: skip
    print_long_finish()

    child = subprocess.run(
        [sys.executable, __file__, "--feeder-child"], capture_output=True, text=True, check=True
    )
    f = json.loads(child.stdout.strip().splitlines()[-1])
    print("\n### 500-router feeder, 1000 slots\n")
    print("| packets | transfers | routes + arrays ms | lr solve ms | iterations | objective "
          "| bound | certified gap | greedy vs lr | peak memory |")  # fmt: skip
    print("|" + " --- |" * 10)
    better = pct((f["greedy"] - f["objective"]) / f["greedy"])
    print(f"| {f['packets']} | {f['transfers']} | {f['build_ms']:.0f} | {f['solve_ms']:.0f} "
          f"| {f['iterations']} | {f['objective']:.4f} | {f['bound']:.4f} | {pct(f['gap'])} "
          f"| {better} | {f['peak_mb']:.0f} MB |")  # fmt: skip

    scenario, topology = load(RING16)
    r16 = kernel_ratio(build_problem(scenario, topology), 5)
    print("\n### Subproblem kernel: Numba against pure NumPy (same algorithm, final lr prices)\n")
    print("| instance | numba ms | numpy ms | ratio |")
    print("| --- | --- | --- | --- |")
    print(f"| ring-16 | {r16[0]:.3f} | {r16[1]:.2f} | {r16[1] / r16[0]:.0f}x |")
    print(f"| feeder-500 | {f['numba_ms']:.2f} | {f['numpy_ms']:.1f} "
          f"| {f['numpy_ms'] / f['numba_ms']:.0f}x |")  # fmt: skip
    print(f"\nMachine: {describe('numpy', 'numba', 'highspy')}")


if __name__ == "__main__":
    main()
