"""Day-ahead VPP trading: the decomposition (pool and bilateral) against the centralised
HiGHS LP of the same model, time and gap side by side, at each size.

    python benchmarks/dayahead.py                      # the sizes of docs/benchmarks.md
    python benchmarks/dayahead.py --sizes 100x96,1000x96 --central-up-to 1000
    python benchmarks/dayahead.py --quick              # one small size (the test suite)

Instances come from the seeded generator (``bench/vpp_generate.py``, seed 1, 5 peers
each). The centralised LP runs up to ``--central-up-to`` prosumers (above that it does not
fit this machine's time or memory, and the table says so); the decomposition's cost and
bound are then shown against its own bound. "to 0.5 %" is the first iteration whose
repaired cost is within 0.5 % of the optimum.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from importlib.metadata import version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import highspy
import numba
import numpy as np

from bench.dayahead import parse_dayahead
from bench.vpp_generate import generate_vpp
from scheduler.dayahead import (
    Prosumer,
    ProsumerData,
    build_problem,
    joint_lp,
    solve_dayahead,
    solver,
)
from scheduler.dayahead.lp import INF, LpBuilder
from scheduler.dayahead.warmup import tiny_day

SIZES = [(100, 96), (300, 96), (1000, 96), (3000, 96), (10000, 96)]
QUICK = [(10, 12)]


def first_within(history: list, optimum: float, share: float = 0.005) -> str:
    for it in history:
        if it.upper_bound <= optimum + share * abs(optimum):
            return str(it.iteration)
    return "-"


def pct(value: float, ref: float) -> str:
    return f"{100 * (value - ref) / abs(ref):+.3f} %"


class HighsProsumer:
    """The same pool subproblem as an LP in HiGHS, kept between solves: only the prices
    (the costs of the trade columns) change, so each solve starts from the last basis."""

    def __init__(self, own: ProsumerData) -> None:
        m, T, h = own.market, own.market.periods, own.market.period_h
        lp = LpBuilder()
        gi = lp.cols(h * m.buy, 0.0, own.grid_kw)
        go = lp.cols(-h * m.sell, 0.0, own.grid_kw)
        c = lp.cols(np.zeros(T), 0.0, own.charge_kw)
        d = lp.cols(np.zeros(T), 0.0, own.charge_kw)
        lo, hi = np.zeros(T + 1), np.full(T + 1, own.battery_kwh)
        lo[0] = lo[T] = hi[0] = own.e0
        e = lp.cols(np.zeros(T + 1), lo, hi)
        self.s = lp.cols(np.zeros(T), 0.0, own.sell_cap())
        self.b = lp.cols(np.zeros(T), 0.0, own.buy_cap())
        bal = lp.rows(own.load - own.pv, INF, T)
        for col, sign in (
            (gi, 1.0),
            (d, 1.0),
            (self.b, 1.0),
            (go, -1.0),
            (c, -1.0),
            (self.s, -1.0),
        ):
            lp.entries(bal, col, sign)
        dyn = lp.rows(0.0, 0.0, T)
        lp.entries(dyn, e[1:], 1.0)
        lp.entries(dyn, e[:T], -1.0)
        lp.entries(dyn, c, -own.efficiency * h)
        lp.entries(dyn, d, h / own.efficiency)
        self.h, self.fee = h, m.fee
        self.highs = lp.highs(solver="simplex")

    def respond(self, price: np.ndarray) -> float:
        cols = np.concatenate([self.s, self.b]).astype(np.int32)
        cost = np.concatenate([-self.h * price, self.h * (price + self.fee)])
        self.highs.changeColsCost(len(cols), cols, cost)
        self.highs.run()
        assert self.highs.getModelStatus() == highspy.HighsModelStatus.kOptimal
        return float(self.highs.getInfo().objective_function_value)


def subproblem_table(n: int, periods: int, prices: int) -> None:
    """Microseconds per prosumer response: the dynamic programme against HiGHS."""
    problem = build_problem(parse_dayahead(generate_vpp(n, periods, seed=1, peers=0)))
    m = problem.market
    rng = np.random.default_rng(0)
    draws = [(m.buy + m.sell) / 2 + rng.normal(0, 0.03, periods) for _ in range(prices)]
    print(f"\n| subproblem, {periods} periods | prosumers | dynamic programme us | HiGHS us "
          "(warm) | HiGHS / DP |")  # fmt: skip
    print("|---|---|---|---|---|")
    for battery in (True, False):
        own = [p for p in problem.prosumers if (p.charge_kw > 0 and p.battery_kwh > 0) == battery]
        agents = [Prosumer(p, p.sell_cap()[None, :], p.buy_cap()[None, :]) for p in own]
        lps = [HighsProsumer(p) for p in own]
        for a, lp in zip(agents, lps, strict=True):  # compile, build, first basis
            assert (
                abs(a.respond(draws[0][None], draws[0][None]).value - lp.respond(draws[0])) < 1e-6
            )
        t0 = time.perf_counter()
        for price in draws:
            for a in agents:
                a.respond(price[None], price[None])
        t_dp = (time.perf_counter() - t0) / (len(agents) * prices)
        t0 = time.perf_counter()
        for price in draws:
            for lp in lps:
                lp.respond(price)
        t_lp = (time.perf_counter() - t0) / (len(lps) * prices)
        kind = "with a battery" if battery else "without"
        print(f"| {kind} | {len(own)} | {1e6 * t_dp:.0f} | {1e6 * t_lp:.0f} | {t_lp / t_dp:.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sizes", help="prosumers x periods, comma-separated: 100x96,1000x96")
    ap.add_argument("--frameworks", default="pool,bilateral")
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--peers", type=int, default=5)
    ap.add_argument("--central-up-to", type=int, default=1000)
    ap.add_argument(
        "--repair-every", type=int, default=solver.REPAIR_EVERY, help="iterations between repairs"
    )
    ap.add_argument(
        "--final-rounds",
        type=int,
        default=solver.FINAL_ROUNDS,
        help="rounds of quotes at the master's prices in the last repair",
    )
    args = ap.parse_args()
    solver.FINAL_ROUNDS = args.final_rounds
    sizes: list[tuple[int, int]]
    if args.sizes:
        sizes = []
        for size in args.sizes.split(","):
            n, periods = size.split("x")
            sizes.append((int(n), int(periods)))
    else:
        sizes = QUICK if args.quick else SIZES
    tiny_day()  # the kernels compiled (or loaded) first: no row pays for it
    print(
        "| prosumers x periods | framework | central LP s | decomposed s | time ratio | "
        "cost vs optimum | bound vs optimum | iterations | to 0.5 % | s / iteration |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n, periods in sizes:
        day = parse_dayahead(generate_vpp(n, periods, seed=1, peers=args.peers))
        problem = build_problem(day)
        for framework in args.frameworks.split(","):
            central, t_central = None, None
            if n <= args.central_up_to:
                t0 = time.perf_counter()
                central = joint_lp(problem, framework == "bilateral").cost
                t_central = time.perf_counter() - t0
            t0 = time.perf_counter()
            r = solve_dayahead(
                problem, framework, iterations=args.iterations, repair_every=args.repair_every
            )
            t_dec = time.perf_counter() - t0
            if central is None:
                row = (
                    f"| {n} x {periods} | {framework} | not run | {t_dec:.1f} | - | "
                    f"gap {100 * r.gap:.3f} % | - | {len(r.history)} | - | "
                )
            else:
                assert t_central is not None
                row = (
                    f"| {n} x {periods} | {framework} | {t_central:.1f} | {t_dec:.1f} | "
                    f"{t_dec / t_central:.2f} | {pct(r.total_cost, central)} | "
                    f"{pct(r.lower_bound, central)} | {len(r.history)} | "
                    f"{first_within(r.history, central)} | "
                )
            print(row + f"{t_dec / len(r.history):.3f} |", flush=True)
    if args.quick:
        subproblem_table(20, 24, 3)
    else:
        subproblem_table(200, 96, 10)
    print(
        f"\nMachine: {os.cpu_count()} CPUs ({_cpu()}), Python {platform.python_version()}, "
        f"numpy {np.__version__}, numba {numba.__version__}, highspy {version('highspy')}; "
        f"load average {os.getloadavg()[0]:.1f} at the end; one HiGHS thread each side; "
        f"{args.iterations} iterations at most, a repair every {args.repair_every}, "
        f"{args.final_rounds} rounds of quotes in the last."
    )


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


if __name__ == "__main__":
    main()
