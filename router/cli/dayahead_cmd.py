"""``ppr dayahead``: day-ahead P2P trading among a VPP's prosumers (Lagrangian relaxation
and subgradient; pool or bilateral framework)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.dayahead import load_dayahead
from router.cli import UsageError
from router.progress import ProgressBar
from scheduler.dayahead import build_problem, solve_dayahead
from scheduler.dayahead.document import to_json
from scheduler.dayahead.problem import grid_alone_costs


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="VPP file (TOML) with [dayahead], [[prosumers]]")
    parser.add_argument(
        "--framework",
        choices=("pool", "bilateral"),
        default="pool",
        help="pool: the operator clears one price per period (default); bilateral: "
        "each peer pair keeps its own price",
    )
    parser.add_argument("--iterations", type=int, default=300, help="subgradient iterations")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--plot", type=Path, help="write a PNG of prices, trades and charge")
    parser.add_argument(
        "--realtime",
        action="store_true",
        help="then draw forecast errors per VPP and clear the deviations between VPPs by VCG",
    )
    parser.add_argument("--seed", type=int, default=0, help="--realtime: seed of the errors")
    parser.add_argument(
        "--vpps", type=int, default=3, help="--realtime: VPPs the prosumers form (default 3)"
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=1.0,
        help="--realtime: seconds one period's clearing may take (default 1)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.iterations < 1:
        raise UsageError(f"--iterations {args.iterations}: give at least 1")
    if args.plot is not None and args.plot.suffix.lower() != ".png":
        raise UsageError(f"--plot {args.plot}: the picture is a PNG; name it *.png")
    if args.realtime and args.vpps < 2:
        raise UsageError(f"--vpps {args.vpps}: real-time trading needs at least 2 VPPs")
    if args.realtime and not args.time_limit > 0:
        raise UsageError(f"--time-limit {args.time_limit}: give a number of seconds > 0")
    day = load_dayahead(args.file)
    if args.realtime and args.vpps > len(day.prosumers):
        raise UsageError(
            f"--vpps {args.vpps}: the file has {len(day.prosumers)} prosumers; give at most that"
        )
    if args.framework == "bilateral" and not day.links():
        raise UsageError(f"{args.file}: no prosumer lists peers; bilateral trades need them")
    problem = build_problem(day)
    with ProgressBar(f"dayahead {args.framework}") as bar:

        def progress(it: int, total: int, lb: float, ub: float) -> None:
            gap = (ub - lb) / max(abs(ub), 1e-9)
            bar.update(it, total, f"bound {lb:.4f}, cost {ub:.4f}, gap {gap:.2%}")

        result = solve_dayahead(problem, args.framework, args.iterations, progress=progress)
    doc = to_json(problem, result, grid_alone_costs(problem))
    if args.plot is not None:
        from router.dayahead_plot import draw_day

        m = day.dayahead
        draw_day(doc, list(m.grid_buy_price), list(m.grid_sell_price), args.plot)
    if args.realtime:
        from router.cli.realtime_report import realtime

        doc["realtime"] = realtime(day, args.vpps, args.seed, args.time_limit)
    print(json.dumps(doc, indent=1) if args.json else report(doc))
    return 0


def report(doc: dict) -> str:
    saving = doc["grid_alone_cost"] - doc["total_cost"]
    lines = [
        f"{doc['name']}: {doc['framework']} day-ahead over {len(doc['history'])} iterations",
        f"  {'prosumer':<10} {'alone':>9} {'cost':>9} {'paid':>9} {'saving':>9}",
    ]
    for pid, p in doc["prosumers"].items():
        lines.append(
            f"  {pid:<10} {p['grid_alone']:>9.3f} {p['cost']:>9.3f} {p['paid']:>9.3f} "
            f"{p['grid_alone'] - p['paid']:>9.3f}"
        )
    lines.append(
        f"  VPP cost {doc['total_cost']:.4f} (grid alone {doc['grid_alone_cost']:.4f}, saving "
        f"{saving:.4f})   lower bound {doc['lower_bound']:.4f}   gap {100 * doc['gap']:.3f} %"
    )
    prices = doc["prices"]
    if isinstance(prices, list):
        lines.append("  pool price per period: " + " ".join(f"{v:.3f}" for v in prices))
    else:
        lines.append(f"  {len(prices)} link prices (see --json)")
    lines.append(f"  {len(doc['trades'])} trading pairs")
    step = max(1, len(doc["history"]) // 10)
    lines.append("  iteration   bound      cost      gap")
    for k in [*range(0, len(doc["history"]), step), len(doc["history"]) - 1]:
        lb, ub = doc["history"][k]
        lines.append(
            f"  {k + 1:>9} {lb:>9.4f} {ub:>9.4f} {100 * (ub - lb) / max(abs(ub), 1e-9):>7.3f} %"
        )
    if "realtime" in doc:
        from router.cli.realtime_report import realtime_lines

        lines += realtime_lines(doc["realtime"])
    return "\n".join(lines)
