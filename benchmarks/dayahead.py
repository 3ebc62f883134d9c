"""Day-ahead VPP trading: the decomposition (pool and bilateral) against the centralised
HiGHS LP of the same model, time and gap side by side, at several sizes.

    python benchmarks/dayahead.py            # the sizes of docs/benchmarks.md
    python benchmarks/dayahead.py --quick    # a small size (the test suite runs this)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.dayahead import parse_dayahead
from bench.vpp_generate import generate_vpp
from scheduler.dayahead import build_problem, joint_lp, solve_dayahead

SIZES = [(100, 24), (300, 24), (1000, 24), (300, 96)]
QUICK = [(10, 12)]


def first_within(history: list, optimum: float, share: float = 0.005) -> str:
    for it in history:
        if it.upper_bound <= optimum * (1 + share):
            return str(it.iteration)
    return "-"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--peers", type=int, default=5)
    args = ap.parse_args()
    sizes = QUICK if args.quick else SIZES
    print(
        "| prosumers x periods | framework | central LP s | decomposed s | time ratio | "
        "cost vs optimum | bound vs optimum | iterations | to 0.5 % |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for n, periods in sizes:
        problem = build_problem(parse_dayahead(generate_vpp(n, periods, seed=1, peers=args.peers)))
        for framework in ("pool", "bilateral"):
            t0 = time.perf_counter()
            central = joint_lp(problem, framework == "bilateral")
            t_central = time.perf_counter() - t0
            t0 = time.perf_counter()
            r = solve_dayahead(problem, framework, iterations=args.iterations)
            t_dec = time.perf_counter() - t0
            opt = central.cost
            print(
                f"| {n} x {periods} | {framework} | {t_central:.2f} | {t_dec:.2f} | "
                f"{t_dec / t_central:.1f} | {100 * (r.total_cost - opt) / opt:+.3f} % | "
                f"{100 * (r.lower_bound - opt) / opt:+.3f} % | {len(r.history)} | "
                f"{first_within(r.history, opt)} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
