"""``ppr dayahead``: day-ahead P2P trading among a VPP's prosumers (Lagrangian relaxation
and subgradient; pool or bilateral framework)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from bench.dayahead import load_dayahead
from router.cli import UsageError
from router.cli.outputs import check_output
from router.kernels import DAYAHEAD, ensure_kernels
from router.progress import ProgressBar
from scheduler.dayahead import ITERATIONS, RepairError
from scheduler.dayahead.document import to_json
from scheduler.dayahead.problem import grid_alone_costs

EXIT_NO_SCHEDULE = 1  # the file is fine but no schedule was found (not a usage error)
REALTIME_DEFAULTS = {"seed": 0, "vpps": 3, "time_limit": 1.0}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="VPP file (TOML) with [dayahead], [[prosumers]]")
    parser.add_argument(
        "--framework",
        choices=("pool", "bilateral"),
        default="pool",
        help="pool: the operator clears one price per period (default); bilateral: "
        "each peer pair keeps its own price",
    )
    parser.add_argument(
        "--iterations",
        type=int,
        default=ITERATIONS,
        help=f"subgradient iterations (default {ITERATIONS}; ppr run --dayahead uses the same)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--plot", type=Path, help="write a PNG of prices, trades and charge")
    parser.add_argument(
        "--realtime",
        action="store_true",
        help="then draw forecast errors per VPP and clear the deviations between VPPs by VCG",
    )
    parser.add_argument("--seed", type=int, help="--realtime: seed of the errors (default 0)")
    parser.add_argument("--vpps", type=int, help="--realtime: VPPs the prosumers form (default 3)")
    parser.add_argument(
        "--time-limit",
        type=float,
        help="--realtime: seconds one period's clearing may take (default 1); a period "
        "over it is settled with the grid",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.iterations < 1:
        raise UsageError(f"--iterations {args.iterations}: give at least 1")
    if args.plot is not None:
        check_output("--plot", args.plot, png=True)
    for key, default in REALTIME_DEFAULTS.items():
        given = getattr(args, key)
        if given is not None and not args.realtime:
            flag = "--" + key.replace("_", "-")
            raise UsageError(f"{flag} {given}: applies to --realtime only; add --realtime")
        if given is None:
            setattr(args, key, default)
    if args.realtime and args.vpps < 2:
        raise UsageError(f"--vpps {args.vpps}: real-time trading needs at least 2 VPPs")
    if args.realtime and not args.time_limit > 0:
        raise UsageError(f"--time-limit {args.time_limit:g}: give a number of seconds > 0")
    day = load_dayahead(args.file)
    if args.realtime and args.vpps > len(day.prosumers):
        raise UsageError(
            f"--vpps {args.vpps}: the file has {len(day.prosumers)} prosumers; give at most that"
        )
    if args.framework == "bilateral" and not day.links():
        raise UsageError(f"{args.file}: no prosumer lists peers; bilateral trades need them")
    from router.cli.dayahead_solve import solve_file

    ensure_kernels(DAYAHEAD)  # a cold cache says so before the bar, not in iteration 1
    with ProgressBar(f"dayahead {args.framework}") as bar:

        def progress(it: int, total: int, lb: float, ub: float) -> None:
            if not math.isfinite(ub):
                bar.update(it, total, f"bound {lb:.4f}, no feasible schedule yet")
                return
            gap = (ub - lb) / max(abs(ub), 1e-9)
            bar.update(it, total, f"bound {lb:.4f}, cost {ub:.4f}, gap {gap:.2%}")

        try:
            problem, result = solve_file(
                day, args.file, args.framework, args.iterations, progress=progress
            )
        except RepairError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_NO_SCHEDULE
    doc = to_json(problem, result, grid_alone_costs(problem))
    if args.plot is not None:
        from router.dayahead_plot import draw_day

        m = day.dayahead
        draw_day(doc, list(m.grid_buy_price), list(m.grid_sell_price), args.plot)
    if args.realtime:
        from router.cli.realtime_report import realtime

        doc["realtime"] = realtime(day, doc, args.vpps, args.seed, args.time_limit)
    print(json.dumps(doc, indent=1) if args.json else report(doc))
    return 0


def _money(v: float | None) -> str:
    return f"{v:>9.3f}" if v is not None else f"{'n/a':>9}"


def report(doc: dict) -> str:
    alone = doc["grid_alone_cost"]
    saving = f"{alone - doc['total_cost']:.4f}" if alone is not None else "n/a"
    lines = [
        f"{doc['name']}: {doc['framework']} day-ahead over {len(doc['history'])} iterations",
        f"  {'prosumer':<10} {'alone':>9} {'cost':>9} {'paid':>9} {'saving':>9}",
    ]
    for pid, p in doc["prosumers"].items():
        own = p["grid_alone"] - p["paid"] if p["grid_alone"] is not None else None
        lines.append(
            f"  {pid:<10} {_money(p['grid_alone'])} {p['cost']:>9.3f} {p['paid']:>9.3f} "
            f"{_money(own)}"
        )
    if any(p["grid_alone"] is None for p in doc["prosumers"].values()):
        lines.append("  (n/a: the prosumer cannot cover its load with the grid alone)")
    shown_alone = f"{alone:.4f}" if alone is not None else "n/a"
    lines.append(
        f"  VPP cost {doc['total_cost']:.4f} (grid alone {shown_alone}, saving {saving})   "
        f"lower bound {doc['lower_bound']:.4f}   gap {100 * doc['gap']:.3f} %"
    )
    prices = doc["prices"]
    if isinstance(prices, list):
        lines.append("  pool price per period: " + " ".join(f"{v:.3f}" for v in prices))
    else:
        lines.append(f"  {len(prices)} link prices (see --json)")
    lines.append(f"  {len(doc['trades'])} trading pairs")
    step = max(1, len(doc["history"]) // 10)
    lines.append("  iteration   bound      cost      gap")
    for k in sorted({*range(0, len(doc["history"]), step), len(doc["history"]) - 1}):
        lb, ub = doc["history"][k]
        if ub is None:
            lines.append(f"  {k + 1:>9} {lb:>9.4f}         -        -")
            continue
        lines.append(
            f"  {k + 1:>9} {lb:>9.4f} {ub:>9.4f} {100 * (ub - lb) / max(abs(ub), 1e-9):>7.3f} %"
        )
    if "realtime" in doc:
        from router.cli.realtime_report import realtime_lines

        lines += realtime_lines(doc["realtime"])
    return "\n".join(lines)
