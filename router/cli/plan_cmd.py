"""``ppr plan``: plan a scenario's transfers into routes and slots."""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

from bench import Scenario, Topology, bundled_path, load_with_topology
from router.cli import UsageError
from router.cli.outputs import check_output
from router.kernels import PLANNER, ROUTES, ensure_kernels
from router.progress import ProgressBar
from scheduler import (
    SOLVERS,
    LrOptions,
    MilpOptions,
    Plan,
    plan_transfers,
    verify_plan,
)
from scheduler.plan import relative_gap


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "scenario", nargs="?", type=Path, help="scenario file (TOML); default: the bundled bench-4"
    )
    parser.add_argument("--solver", choices=SOLVERS, default="lr")
    parser.add_argument("--out", type=Path, help="write the plan as JSON")
    parser.add_argument("--gantt", type=Path, help="draw the plan as a PNG (resources x slots)")
    parser.add_argument("--k-routes", type=int, default=3, help="candidate routes per transfer")
    parser.add_argument(
        "--time-limit",
        type=float,
        default=None,
        help="seconds: milp stops there (default 60); lr stops iterating there, then polishes",
    )
    parser.add_argument(
        "--finish",
        type=float,
        default=2.0,
        metavar="S",
        help="lr: seconds HiGHS may spend lifting the bound to the LP relaxation's and "
        "improving the plan from the packets met on the way (2; 0: off)",
    )
    parser.add_argument(
        "--iterations",
        type=int,
        default=LrOptions.max_iterations,
        help="lr: most subgradient iterations",
    )
    parser.set_defaults(run=run)


def load(path: Path | None) -> tuple[Scenario, Topology]:
    return load_with_topology(path if path is not None else bundled_path())


def run(args: argparse.Namespace) -> int:
    if not (math.isfinite(args.finish) and args.finish >= 0):
        raise UsageError(f"--finish must be a number of seconds >= 0, not {args.finish:g}")
    if args.out is not None:
        check_output("--out", args.out)
    if args.gantt is not None:
        check_output("--gantt", args.gantt, png=True)
    scenario, topology = load(args.scenario)
    ensure_kernels(PLANNER if args.solver == "lr" else ROUTES)
    # --- market (issue 3): offers and bids become transfers before planning ---
    if scenario.offers and scenario.bids:
        from scheduler.market import clear_market, with_market_transfers

        market = clear_market(scenario, topology)
        scenario = with_market_transfers(scenario, market)
        topology = Topology(scenario)
        print(
            f"market: {len(market.trades)} trades, {market.traded} packets, "
            f"welfare {market.welfare:.6g} (ppr market shows the payments)"
        )
    # --- end market ---
    with ProgressBar(f"planning {scenario.name}") as bar:
        plan = plan_transfers(
            scenario,
            topology,
            args.solver,
            k_routes=args.k_routes,
            lr_options=LrOptions(
                max_iterations=args.iterations,
                time_limit_s=args.time_limit,
                finish_s=args.finish,
            ),
            milp_options=MilpOptions(time_limit_s=args.time_limit or 60.0),
            progress=lambda i, n, lb, ub: bar.update(i, n, bound_note(lb, ub)),
            finishing=lambda budget, lb, ub: bar.timed(
                "finishing (HiGHS)", budget, bound_note(lb, ub)
            ),
        )
    document = plan.to_json()
    verify_plan(scenario, document)  # the independent checker: never hand out a bad plan
    written = []
    if args.out:
        write_atomic(args.out, json.dumps(document, indent=1) + "\n")
        written.append(str(args.out))
    if args.gantt:
        from router.gantt import draw_gantt

        draw_gantt(scenario, plan, args.gantt)
        written.append(str(args.gantt))
    print(summary(scenario, plan, written))
    return 0


def bound_note(bound: float, plan: float) -> str:
    """The planner's state as its progress shows it: the bound, the plan, the gap."""
    gap = relative_gap(plan, bound)
    return f"bound {bound:.5g}, plan {plan:.5g}" + ("" if gap is None else f", gap {gap:.2%}")


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def summary(scenario: Scenario, plan: Plan, written: list[str]) -> str:
    f = scenario.frame
    bound = (
        "none (greedy certifies nothing)" if plan.lower_bound is None else f"{plan.lower_bound:.6g}"
    )
    gap = "" if plan.gap is None else f"   gap {100 * plan.gap:.2f} %"
    missing = {k: v for k, v in plan.undelivered.items() if v}
    lines = [
        f"{scenario.name}: {plan.solver} plan, {f.slots} slots of {f.slot_ms:g} ms ({plan.status})",
        f"  objective   {plan.objective:.6g}   lower bound {bound}{gap}",
        f"  packets     {plan.delivered} delivered, {sum(missing.values())} undelivered"
        + (" (" + ", ".join(f"{k}: {v}" for k, v in missing.items()) + ")" if missing else ""),
        f"  time        solve {plan.solve_ms:.1f} ms",
    ]
    finish = plan.stats.get("finish") or {}
    if finish.get("rounds"):
        reached = " to the LP relaxation's" if finish.get("converged") else ""
        lines.append(
            f"  finishing   bound raised by {finish['bound_gain']:.4g}{reached}, plan "
            f"improved by {finish['plan_gain']:.4g} (HiGHS, {finish['ms']:.0f} ms of the solve)"
        )
    if written:
        lines.append(f"  wrote       {', '.join(written)}")
    return "\n".join(lines)
