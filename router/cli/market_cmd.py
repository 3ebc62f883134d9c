"""``ppr market``: match a scenario's offers and bids, price the match, show who pays what."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from bench import bundled_path, load_with_topology
from router.cli import UsageError
from router.kernels import ROUTES, ensure_kernels
from scheduler.market import (
    MECHANISMS,
    RULES,
    MarketResult,
    Mechanism,
    clear_market,
    market_transfers,
)

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
        default="vcg",
        metavar="NAME",
        help="the matching rule (docs/market.md): "
        + "; ".join(f"{r.name}: {r.summary}" for r in RULES.values())
        + " (default vcg)",
    )
    parser.add_argument(
        "--no-green",
        dest="green",
        action="store_false",
        help="skip the green pass (green offers first to bids with a green premium or "
        "green_only): no premium is paid and green_only bids do not trade",
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


def mechanism_named(name: str) -> Mechanism:
    """``--mechanism NAME`` checked against the registry: one line when unknown."""
    if name not in RULES:
        raise UsageError(f"--mechanism {name}: unknown rule; choose {', '.join(MECHANISMS)}")
    return RULES[name].name


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
    mechanism = mechanism_named(args.mechanism)
    weights = parse_weights(args.weight) or None
    if weights and mechanism != "nash":
        raise UsageError("--weight: bargaining weights apply to --mechanism nash only")
    path = args.scenario if args.scenario is not None else bundled_path(DEFAULT_SCENARIO)
    scenario, topology = load_with_topology(path)
    if not scenario.offers and not scenario.bids:
        raise UsageError(f"{path}: no [[offers]] or [[bids]] to match")
    ensure_kernels(ROUTES)
    result = clear_market(scenario, topology, mechanism, weights=weights, green=args.green)
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
    green = "" if r.green else ", no green pass"
    lines = [
        f"{r.scenario}: {r.mechanism} market over {r.slots} slots, packets of "
        f"{p.voltage_v:g} V x {p.current_a:g} A ({p.energy_j:.4g} J){green}",
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
    lines.append("  trades (per packet: buyer pays/seller gets, priced loss; green J at the buyer)")
    for t in r.trades:
        green = f", green {t.green_j:.4g} J" if t.green else ""
        lines.append(
            f"    {t.seller} -> {t.buyer}: {t.packets} packets over {' '.join(t.route)} "
            f"at {t.buyer_price:.4f}/{t.seller_price:.4f}, loss {t.loss_cost:.4g}{green}"
        )
    if not r.trades:
        lines.append("    none: no bid meets an offer over the network")
    lines.append(
        f"  welfare {r.welfare:.4f} (optimum {r.optimum_welfare:.4f}, "
        f"gap {_clean(r.welfare_gap):.4f})   volume {r.volume} packets   "
        f"losses {r.loss_cost:.4f} ({r.loss_j:.4g} J)"
    )
    budget = _clean(r.budget)
    balance = "deficit" if budget < 0 else "surplus" if budget > 0 else "balanced"
    green_j = f"   green {r.green_j:.4g} J to buyers" if r.green_j else ""
    lines.append(f"  operator budget {budget:+.4f} ({balance}){green_j}")
    return "\n".join(lines)


def _clean(x: float) -> float:
    """Float dust is neither a deficit nor a gap."""
    return x if abs(x) > 1e-9 else 0.0
