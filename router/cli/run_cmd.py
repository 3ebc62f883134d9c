"""``ppr run``: the main job. Plan, seal, upload and run frames on the bench (by default
the bundled bench-4 on the in-process twin over real loopback Modbus TCP)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from bench import bundled_path, load_scenario
from router.controller.outcome import RunOptions
from router.controller.report import frame_line, summary
from router.controller.session import Session, SessionConfig
from router.progress import ProgressBar
from router.settlement import SettlementConfig

EXIT_ESTOP = 130


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenario", type=Path, help="scenario file (default: bundled bench-4)")
    parser.add_argument("--frames", type=int, default=10, help="frames to run (10)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("ppr-out"),
        help="output folder: journal, Gantt of the last frame, addresses",
    )
    parser.add_argument(
        "--keys",
        type=Path,
        default=Path("ppr-keys"),
        help="key store (created for the twin if missing)",
    )
    parser.add_argument(
        "--transport",
        choices=("tcp", "rtu", "serial"),
        default="tcp",
        help="the twin's: Modbus TCP on loopback, or Modbus RTU / the framed "
        "protocol on a pseudo-terminal",
    )
    parser.add_argument(
        "--hardware",
        action="store_true",
        help="drive the routers at the scenario's addresses, not the twin",
    )
    parser.add_argument(
        "--mqtt",
        metavar="URL",
        help="publish on a broker: mqtt://[user:pass@]host[:port] or mqtts://",
    )
    parser.add_argument(
        "--watchdog-ms",
        type=int,
        default=1000,
        help="routers open every gate if no heartbeat comes for this long",
    )
    parser.add_argument(
        "--retail-price",
        type=float,
        default=0.0,
        help="grid retail price per joule a short seller compensates",
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="twin fault, as ppr twin --fault (repeatable)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.frames < 1:
        from router.cli import UsageError

        raise UsageError(f"--frames must be at least 1, not {args.frames}")
    scenario = load_scenario(args.scenario or bundled_path())
    config = SessionConfig(
        scenario=scenario,
        out_dir=args.out,
        keys_dir=args.keys,
        transport=args.transport,
        hardware=args.hardware,
        mqtt=args.mqtt,
        watchdog_ms=args.watchdog_ms,
        faults=tuple(args.fault),
        options=RunOptions(
            frames=args.frames,
            settlement=SettlementConfig(grid_retail_price_per_j=args.retail_price),
            telemetry=bool(args.mqtt),
        ),
    )
    return asyncio.run(_main(config))


async def _main(config: SessionConfig) -> int:
    where = "hardware" if config.hardware else f"the twin over {config.transport}"
    print(f"{config.scenario.name}: {config.options.frames} frames on {where}", flush=True)
    with ProgressBar("frames") as bar:
        session = Session(
            config,
            on_frame=lambda o, alarms: (
                bar.write(frame_line(o, alarms)),
                bar.update(len(session.controller.outcomes), config.options.frames),
            ),
            on_alarm=lambda text: bar.write(f"  alarm: {text}", sys.stderr),
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, session.stop, f"{signal.Signals(sig).name}: e-stop")
        try:
            result = await session.run()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
    print(summary(result.outcomes, len(result.alarms)))
    written = [str(result.journal)]
    if result.last_frame is not None and result.last_frame.settlement is not None:
        from router.gantt import draw_gantt

        last = session.controller.outcomes[-1] if session.controller else None
        if last is not None:
            png = config.out_dir / "last-frame.png"
            draw_gantt(session.last_scenario(), session.last_plan(), png)
            written.insert(0, str(png))
    print(f"  journal   {result.verified.one_line()}")
    print(f"  wrote     {', '.join(written)}")
    if result.estopped:
        print(f"  stopped   {result.stop_reason}: every gate opened")
        return EXIT_ESTOP
    return 0
