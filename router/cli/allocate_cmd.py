"""``ppr allocate``: one frame's MEC energy allocation, studied in full (docs/mec.md).

The matching, each server's demand, delivered energy and satisfaction at the pick rule's
point, the NSGA-II front against the epsilon-constraint grid's exact points
(hypervolume), the unrestricted LP (the price of matching); ``--json`` for programs,
``--front`` for a picture. Progress on stderr: the routes, NSGA-II's generations, the
grid's levels (a 200-server feeder takes ~15 s).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bench import bundled_path, load_with_topology
from router.cli import UsageError
from router.cli.outputs import check_output
from router.kernels import ROUTES, ensure_kernels
from router.progress import ProgressBar
from scheduler.mec.allocation import Objectives, delivered, objectives, satisfaction
from scheduler.mec.instance import FIRST_FRAME, build_instance

if TYPE_CHECKING:  # pymoo takes 0.2 s to import: only ppr allocate pays for it
    from scheduler.mec.study import Study

DEFAULT_SCENARIO = "bench-4-mec"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "scenario",
        nargs="?",
        type=Path,
        help=f"scenario file (TOML) with a [mec] section; default: the bundled {DEFAULT_SCENARIO}",
    )
    parser.add_argument(
        "--frame",
        type=int,
        default=FIRST_FRAME,
        metavar="N",
        help="frame number N as ppr run's journal, console and MQTT number it: its request "
        f"volumes, drawn as ppr run draws them ({FIRST_FRAME}, a fresh run's first)",
    )
    parser.add_argument(
        "--proposer",
        choices=("servers", "sources"),
        default="servers",
        help="who proposes in deferred acceptance (servers: the server-optimal stable "
        "matching, the default)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--front",
        type=Path,
        metavar="PNG",
        help="draw the fronts (NSGA-II's and the epsilon-constraint grid's) with the chosen "
        "point marked",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.frame < FIRST_FRAME:
        raise UsageError(
            f"--frame {args.frame}: frames are numbered from {FIRST_FRAME}, as the journal "
            "numbers them"
        )
    if args.front is not None:
        check_output("--front", args.front, png=True)
    path = args.scenario if args.scenario is not None else bundled_path(DEFAULT_SCENARIO)
    scenario, topology = load_with_topology(path)
    if scenario.mec is None:
        raise UsageError(f"{path}: no [mec] section to allocate; add one (docs/mec.md)")
    ensure_kernels(ROUTES)
    with ProgressBar(f"allocating {scenario.name} frame {args.frame}") as bar:
        inst = build_instance(
            scenario,
            topology,
            args.frame,
            progress=lambda done, total: bar.update(done, total, phase="routes of servers"),
        )
        from scheduler.mec.study import study

        result = study(
            inst,
            args.proposer,
            progress=lambda phase, done, total: bar.update(done, total, phase=phase),
        )
    if args.front is not None:
        from router.mec_plot import draw_fronts

        tmp = args.front.with_name(f".{args.front.stem}.{os.getpid()}.tmp.png")
        draw_fronts(result, f"{scenario.name} frame {args.frame}", tmp)
        tmp.replace(args.front)  # a reader never sees half a picture
    if args.json:
        doc = document(result)
        doc["scenario"], doc["frame"] = scenario.name, args.frame
        print(json.dumps(doc, indent=1))
    else:
        print(report(result, scenario.name, args.frame, args.front))
    return 0


def _key(s: Study, k: int, j: int) -> str:
    return f"{s.inst.sources[k]}/{s.inst.servers[j]}"


def _point(s: Study, pairs: list[tuple[int, int]], x: np.ndarray) -> dict[str, Any]:
    o = objectives(s.inst, pairs, x)
    return {
        "sent_j": {_key(s, k, j): float(v) for (k, j), v in zip(pairs, x, strict=True)},
        "mean_satisfaction": o.mean_satisfaction,
        "min_satisfaction": o.min_satisfaction,
        "loss_j": o.loss_j,
    }


def _objectives(o: Objectives) -> dict[str, float]:
    return {
        "mean_satisfaction": o.mean_satisfaction,
        "min_satisfaction": o.min_satisfaction,
        "loss_j": o.loss_j,
    }


def document(s: Study) -> dict[str, Any]:
    """The JSON of docs/mec.md: servers, matching, pairs (routes as the planner writes
    them), the NSGA-II front with the chosen index, and more."""
    inst = s.inst
    x = s.front[s.chosen]
    got = delivered(inst, s.pairs, x)
    sat = satisfaction(inst, s.pairs, x)
    sent = {j: float(v) for (_, j), v in zip(s.pairs, x, strict=True)}
    source_of = {j: inst.sources[k] for k, j in s.pairs}
    servers = {
        name: {
            "demand_j": float(inst.demand_j[j]),
            "source": source_of.get(j),
            "sent_j": sent.get(j, 0.0),
            "delivered_j": float(got[j]),
            "satisfaction": float(sat[j]),
        }
        for j, name in enumerate(inst.servers)
    }
    matched = set(s.pairs)
    ref = s.reference
    return {
        "proposer": s.proposer,
        "servers": servers,
        "sources": {
            name: {
                "available_j": float(inst.available_j[k]),
                "quota": int(inst.quota[k]),
                "sent_j": float(sum(v for (kk, _), v in zip(s.pairs, x, strict=True) if kk == k)),
            }
            for k, name in enumerate(inst.sources)
        },
        "routers": {
            name: {"max_transfer_j": cap, "passed_j": passed}
            for name, cap, passed in _router_loads(s, x)
        },
        "matching": {
            name: None if k is None else inst.sources[k]
            for name, k in zip(inst.servers, s.matching, strict=True)
        },
        "stable": not s.blocking,
        "pairs": [
            {
                "source": inst.sources[k],
                "server": inst.servers[j],
                "route": list(inst.routes[(k, j)]),
                "loss_fraction": float(inst.loss[k, j]),
                "matched": (k, j) in matched,
            }
            for k, j in s.free_pairs
        ],
        "front": [_point(s, s.pairs, p) for p in s.front],
        "chosen": s.chosen,
        "exact_front": [_objectives(objectives(inst, s.pairs, p)) for p in s.exact],
        "hypervolume": {
            "nsga": s.hv_nsga,
            "exact": s.hv_exact,
            "ratio": s.hv_ratio,
            "reference": {
                "mean_satisfaction": -float(ref[0]),
                "min_satisfaction": -float(ref[1]),
                "loss_j": float(ref[2]),
            },
        },
        "nsga": {
            "variant": "improved",
            "evaluations": s.nsga.evaluations,
            "lp_solves": s.nsga.lp_solves,
            "seconds": s.nsga.seconds,
        },
        "exact_grid": s.grid,
        "unrestricted": _point(s, s.free_pairs, s.unrestricted),
    }


def report(s: Study, name: str, frame: int, png: Path | None) -> str:
    inst = s.inst
    x = s.front[s.chosen]
    got = delivered(inst, s.pairs, x)
    sat = satisfaction(inst, s.pairs, x)
    sent = {j: (k, float(v)) for (k, j), v in zip(s.pairs, x, strict=True)}
    stable = "stable" if not s.blocking else f"NOT stable: {len(s.blocking)} blocking pairs"
    lines = [
        f"{name} frame {frame}: {len(inst.servers)} MEC servers, {len(inst.sources)} sources; "
        f"{s.proposer} propose, {len(s.pairs)} matched ({stable})",
        f"  {'server':<10} {'demand J':>9}  {'source':<10} {'loss':>7} {'sent J':>9} "
        f"{'delivered J':>11} {'satisfaction':>12}  route",
    ]
    for j, server in enumerate(inst.servers):
        if j in sent:
            k, v = sent[j]
            lines.append(
                f"  {server:<10} {inst.demand_j[j]:>9.2f}  {inst.sources[k]:<10} "
                f"{100 * inst.loss[k, j]:>6.3f}% {v:>9.2f} {got[j]:>11.2f} {sat[j]:>12.3f}  "
                f"{' '.join(inst.routes[(k, j)])}"
            )
        else:
            lines.append(
                f"  {server:<10} {inst.demand_j[j]:>9.2f}  {'-':<10} {'':>7} {0.0:>9.2f} "
                f"{0.0:>11.2f} {sat[j]:>12.3f}  unmatched"
            )
    for k, source in enumerate(inst.sources):
        used = sum(v for kk, v in sent.values() if kk == k)
        taken = sum(1 for kk, _ in sent.values() if kk == k)
        lines.append(
            f"  source {source:<10} sends {used:8.2f} of {inst.available_j[k]:8.2f} J to "
            f"{taken} of {inst.quota[k]} servers (quota)"
        )
    for name, cap, passed in _router_loads(s, x):
        lines.append(f"  router {name:<10} passes {passed:8.2f} of {cap:8.2f} J (its cap)")
    o = objectives(inst, s.pairs, x)
    free = objectives(inst, s.free_pairs, s.unrestricted)
    lines += [
        f"  chosen      point {s.chosen} of {len(s.front)}: mean satisfaction "
        f"{o.mean_satisfaction:.4f}, min {o.min_satisfaction:.4f}, loss {o.loss_j:.4f} J "
        "(rule: highest min, then mean, then least loss)",
        f"  unrestricted LP (several sources per server): mean {free.mean_satisfaction:.4f}, "
        f"min {free.min_satisfaction:.4f}, loss {free.loss_j:.4f} J; price of matching: "
        f"mean {_gain(free.mean_satisfaction, o.mean_satisfaction)}, "
        f"min {_gain(free.min_satisfaction, o.min_satisfaction)}",
        f"  fronts      NSGA-II improved {len(s.front)} points ({s.nsga.evaluations} "
        f"evaluations, {s.nsga.lp_solves} LP solves for seeds and polish, "
        f"{s.nsga.seconds:.2f} s); epsilon-constraint grid {s.grid} x {s.grid}: "
        f"{len(s.exact)} exact points, a sample of the exact front",
        f"  hypervolume NSGA-II {s.hv_nsga:.5f}, {100 * s.hv_ratio:.1f}% of the epsilon "
        f"grid's front's {s.hv_exact:.5f} (reference point: satisfaction "
        f"{-s.reference[0]:g}, loss {s.reference[2]:.4f} J)",
    ]
    if png is not None:
        lines.append(f"  wrote       {png}")
    return "\n".join(lines)


def _router_loads(s: Study, x: np.ndarray) -> list[tuple[str, float, float]]:
    """Each capped router: its name, its cap and the energy the matched pairs' routes
    through it carry at ``x`` (J per frame)."""
    sent = dict(zip(s.pairs, x, strict=True))
    return [
        (name, float(cap), float(sum(sent.get(p, 0.0) for p in uses)))
        for name, cap, uses in zip(s.inst.routers, s.inst.capacity_j, s.inst.uses, strict=True)
    ]


def _gain(free: float, matched: float) -> str:
    gain = free - matched
    return f"{gain if abs(gain) >= 5e-5 else 0.0:+.4f}"  # no "-0.0000" from round-off
