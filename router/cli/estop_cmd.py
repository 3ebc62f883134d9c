"""``ppr estop``: open every gate of a bench now."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from bench import bundled_path, load_scenario
from firmware_bridge.driver import open_driver
from router.cli import UsageError
from router.controller.fleet import ESTOP_TIMEOUT_S
from router.controller.session import ADDRESSES


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "scenario",
        nargs="?",
        type=Path,
        help="scenario whose routers' addresses to use (default: bench-4)",
    )
    parser.add_argument(
        "--run",
        dest="run_out",  # args.run is the command itself
        type=Path,
        metavar="OUT",
        help=f"use the addresses a ppr run wrote to OUT/{ADDRESSES} (its twin)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.run_out is not None:
        path = args.run_out / ADDRESSES
        try:
            addresses = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UsageError(
                f"{path}: no addresses here; is a ppr run writing to {args.run_out}?"
            ) from None
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise UsageError(f"{path}: not the addresses a ppr run writes ({exc})") from None
        if not isinstance(addresses, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in addresses.items()
        ):
            raise UsageError(
                f"{path}: not the addresses a ppr run writes (an object of router: address)"
            )
    else:
        scenario = load_scenario(args.scenario or bundled_path())
        addresses = {r.id: r.address for r in scenario.routers if r.address}
        if not addresses:
            raise UsageError(
                f"scenario {scenario.name} gives no router addresses; use --run OUT for a "
                f"ppr run on the twin"
            )
    results = asyncio.run(_estop(addresses))
    failed = {r: e for r, e in results.items() if e is not None}
    for rid in addresses:
        print(
            f"  {rid:<10} {'e-stopped' if rid not in failed else 'NOT CONFIRMED: ' + failed[rid]}"
        )
    return 1 if failed else 0


async def _estop(addresses: dict[str, str]) -> dict[str, str | None]:
    async def one(rid: str, address: str) -> str | None:
        try:
            async with open_driver(address, rid) as d:
                await asyncio.wait_for(d.estop(), ESTOP_TIMEOUT_S)
            return None
        except Exception as exc:  # every router is tried; each failure is reported
            return str(exc) or type(exc).__name__

    got = await asyncio.gather(*(one(r, a) for r, a in addresses.items()))
    return dict(zip(addresses, got, strict=True))
