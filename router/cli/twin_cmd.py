"""``ppr twin``: serve the routers of a scenario as emulated devices until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import signal
from pathlib import Path

from bench import bundled_path, load_scenario
from firmware_bridge.keystore import DEFAULT_STORE
from router.cli import UsageError, check_line_baud
from sim_hw.faults import KINDS
from sim_hw.nv import NV_FOLDER
from sim_hw.twin import TRANSPORTS, Twin

WATCH_S = 0.5  # how often state changes are looked for (wall clock)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", nargs="?", type=Path, help="scenario (default: bench-4)")
    parser.add_argument(
        "--transport", choices=TRANSPORTS, default="tcp",
        help="tcp: one loopback Modbus TCP port per router; rtu: Modbus RTU on one "
        "pseudo-terminal shared by all routers; serial: the framed protocol, likewise on "
        "one shared pseudo-terminal",
    )  # fmt: skip
    parser.add_argument("--accel", type=float, default=1.0, help="run time N times faster")
    parser.add_argument(
        "--fault", action="append", default=[], metavar="SPEC",
        help=f"inject a fault, KIND[=VALUE][@ROUTER]; kinds: {', '.join(KINDS)} "
        "(e.g. drop=0.05, corrupt=0.01@R2, offline@R4, stuck-open=R2:1, trip=L23, skew=300@R2, "
        "bank-flip@R2)",
    )  # fmt: skip
    parser.add_argument(
        "--keys", type=Path, default=DEFAULT_STORE,
        help=f"key store holding the routers' and meters' keys (default: ./{DEFAULT_STORE}); "
        f"the routers keep what survives a power-up next to them, in {NV_FOLDER}/",
    )  # fmt: skip
    parser.add_argument("--baud", type=int, default=115200, help="baud rate put in addresses")
    parser.add_argument(
        "--line-baud", type=int, default=None,
        help="pace the pseudo-terminal like a real line at this baud rate",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="seed of the injected faults")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not args.baud >= 300:
        raise UsageError(f"--baud must be at least 300, not {args.baud}")
    check_line_baud(args.transport, args.line_baud)
    if not (math.isfinite(args.accel) and args.accel > 0):
        raise UsageError(f"--accel must be a number above 0, not {args.accel:g}")
    if args.duration is not None and not args.duration > 0:
        raise UsageError(f"--duration must be above 0 seconds, not {args.duration:g}")
    scenario = load_scenario(args.scenario or bundled_path())
    twin = Twin(
        scenario, args.keys, transport=args.transport, accel=args.accel, faults=args.fault,
        baud=args.baud, line_baud=args.line_baud, seed=args.seed, nv_dir=args.keys / NV_FOLDER,
    )  # fmt: skip
    asyncio.run(_serve(twin, args.duration))
    return 0


async def _serve(twin: Twin, duration: float | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with twin:
        sc = twin.scenario
        print(
            f"twin {sc.name}: {len(twin.routers)} routers over {twin.transport}, "
            f"time x{twin.accel:g}; Ctrl-C stops",
            flush=True,
        )
        if twin.device_path:
            print(f"  serial line   {twin.device_path} (all routers, by unit id)")
        for rid, address in twin.addresses.items():
            print(f"  {rid:<12}  {address}")
        for f in twin.faults:
            print(f"  fault         {f}")
        print(flush=True)
        seen: dict[str, tuple[str, tuple[str, ...]]] = {}
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(duration):
                while not stop.is_set():
                    _report(twin, seen)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), WATCH_S)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(sig)
    print("twin stopped", flush=True)


def _report(twin: Twin, seen: dict[str, tuple[str, tuple[str, ...]]]) -> None:
    t = twin.advance()
    for rid, r in twin.routers.items():
        state, frame, _ = r.state(t)
        now = (state, tuple(sorted(r.alarms)))
        if seen.get(rid) != now:
            seen[rid] = now
            alarms = f" alarms: {', '.join(now[1])}" if now[1] else ""
            print(f"  {t / 1e6:9.3f} s  {rid}: {state}, frame {frame}{alarms}", flush=True)
