"""``ppr market``: match a scenario's offers and bids, price the match, show who pays what."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from bench import bundled_path, load_with_topology
from router.cli import UsageError
from scheduler.market import MECHANISMS, MarketResult, clear_market, market_transfers

DEFAULT_SCENARIO = "bench-4-market"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "scenario",
        nargs="?",
        type=Path,
        help=f"scenario file (TOML) with [[offers]] and [[bids]]; default: the bundled "
        f"{DEFAULT_SCENARIO}",
    )
    parser.add_argument(
        "--mechanism",
        choices=MECHANISMS,
        default="vcg",
        help="vcg: truthful, each gains what it adds to welfare (default); nash: the gain "
        "split by Nash bargaining, budget balanced",
    )
    parser.add_argument(
        "--weight",
        action="append",
        default=[],
        metavar="ID=W",
        help="nash: bargaining weight of a participant (default 1); repeat for more",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(run=run)


def parse_weights(items: list[str]) -> dict[str, float]:
    weights: dict[str, float] = {}
    for item in items:
        pid, sep, text = item.partition("=")
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not sep or not pid or not math.isfinite(value) or value <= 0:
            raise UsageError(f"--weight {item}: expected ID=W with W a finite number > 0")
        weights[pid] = value
    return weights


def run(args: argparse.Namespace) -> int:
    path = args.scenario if args.scenario is not None else bundled_path(DEFAULT_SCENARIO)
    scenario, topology = load_with_topology(path)
    if not scenario.offers and not scenario.bids:
        raise UsageError(f"{path}: no [[offers]] or [[bids]] to match")
    result = clear_market(
        scenario, topology, args.mechanism, weights=parse_weights(args.weight) or None
    )
    if args.json:
        doc = result.to_json()
        # what ppr plan would plan: one transfer per trade, as in a scenario file
        doc["transfers"] = [
            t.model_dump(exclude_none=True) for t in market_transfers(scenario, result)
        ]
        print(json.dumps(doc, indent=1))
    else:
        print(report(result))
    return 0


def report(r: MarketResult) -> str:
    p = r.packet
    lines = [
        f"{r.scenario}: {r.mechanism} market over {r.slots} slots, packets of "
        f"{p.voltage_v:g} V x {p.current_a:g} A ({p.energy_j:.4g} J)",
        f"  {'id':<10} {'side':<5} {'terminal':<10} {'quoted':>14} {'traded':>7} "
        f"{'paid':>10} {'received':>10} {'per packet':>10} {'utility':>10}",
    ]
    for s in r.participants:
        # payment > 0: the participant pays; < 0: it is paid (a Nash buyer can be)
        money = f"{abs(s.payment):>10.4f}"
        pays = s.payment > 0 or (s.payment == 0 and s.side == "bid")
        paid, received = (money, "-") if pays else ("-", money)
        each = f"{abs(s.payment) / s.packets:.4f}" if s.packets else "-"
        lines.append(
            f"  {s.id:<10} {s.side:<5} {s.terminal:<10} {f'{s.quoted} @ {s.price:.4g}':>14} "
            f"{s.packets:>7} {paid:>10} {received:>10} {each:>10} {s.utility:>10.4f}"
        )
    lines.append("  trades")
    for t in r.trades:
        lines.append(
            f"    {t.seller} -> {t.buyer}: {t.packets} packets over {' '.join(t.route)}, "
            f"loss {t.loss_cost:.4g} per packet"
        )
    if not r.trades:
        lines.append("    none: no bid meets an offer over the network")
    budget = r.budget if abs(r.budget) > 1e-9 else 0.0  # float dust is not a deficit
    balance = "deficit" if budget < 0 else "surplus" if budget > 0 else "balanced"
    lines.append(
        f"  welfare {r.welfare:.4f}   traded {r.traded} packets   losses {r.loss_cost:.4f} "
        f"({r.loss_j:.4g} J)   operator budget {budget:+.4f} ({balance})"
    )
    return "\n".join(lines)
