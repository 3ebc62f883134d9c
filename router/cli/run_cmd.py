"""``ppr run``: the main job. Plan, seal, upload and run frames on the bench (by default
the bundled bench-4 on the in-process twin over real loopback Modbus TCP)."""

from __future__ import annotations

import argparse
import asyncio
import math
import signal
import sys
from pathlib import Path

from bench import Scenario, ScenarioError, bundled_path, load_scenario
from bench.loader import locate_in
from bench.text import plural
from router.cli import UsageError, add_password_file_option, check_line_baud, mqtt_password_file
from router.cli.market_cmd import mechanism_named
from router.controller.outcome import FrameOutcome, RunOptions
from router.controller.report import frame_line, summary, twin_timing_line
from router.controller.session import Session, SessionConfig
from router.controller.stages import FrameStage, MarketStage
from router.kernels import PLANNER, ensure_kernels
from router.progress import ProgressBar
from router.settlement import SettlementConfig
from scheduler import LrOptions

EXIT_ESTOP = 130


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "Each frame's transfers: the scenario's own, plus its market's trades when it "
        "quotes [[offers]] and [[bids]] (--mechanism); or, with a [mec] section, the "
        "energy its MEC servers are allocated that frame (docs/mec.md, ppr allocate); or "
        "an hour of a day-ahead file (--dayahead)."
    )
    parser.add_argument(
        "--scenario",
        type=Path,
        help="scenario file (default: bundled bench-4; bench-4-mec has MEC servers "
        "allocated every frame by its [mec] section)",
    )
    parser.add_argument("--frames", type=int, default=10, help="frames to run (10)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("ppr-out"),
        metavar="DIR",
        help="output folder: journal, Gantt of the last frame, addresses (ppr-out)",
    )
    parser.add_argument(
        "--keys",
        type=Path,
        default=Path("ppr-keys"),
        metavar="DIR",
        help="key store (ppr-keys; created for the twin if missing)",
    )
    parser.add_argument(
        "--transport",
        choices=("tcp", "rtu", "serial"),
        default="tcp",
        help="the twin's: Modbus TCP on loopback, or Modbus RTU / the framed "
        "protocol on a pseudo-terminal",
    )
    parser.add_argument(
        "--line-baud",
        type=int,
        metavar="BAUD",
        help="pace the twin's pseudo-terminal like a real RS-485 line at this baud rate",
    )
    parser.add_argument(
        "--hardware",
        action="store_true",
        help="drive the routers at the scenario's addresses, not the twin",
    )
    parser.add_argument(
        "--mqtt",
        metavar="URL",
        help="publish on a broker: mqtt://[user@]host[:port] or mqtts:// (docs/mqtt.md)",
    )
    add_password_file_option(parser)
    parser.add_argument(
        "--watchdog-ms",
        type=int,
        default=1000,
        metavar="MS",
        help="routers open every gate if no heartbeat comes for this long (1000)",
    )
    parser.add_argument(
        "--plan-ms",
        type=float,
        metavar="MS",
        help="stop the lr planner's iterations after this long, with its best plan and "
        "bound (default: 4%% of the frame)",
    )
    parser.add_argument(
        "--timeout-ms",
        type=int,
        default=100,
        metavar="MS",
        help="a request without a reply for this long is sent again (100; raise it for "
        "slow links, e.g. RS-485 below 38400 baud)",
    )
    parser.add_argument(
        "--retail-price",
        type=float,
        default=0.0,
        metavar="PRICE",
        help="grid retail price per joule a short seller compensates (0)",
    )
    parser.add_argument(
        "--clear-estop",
        action="store_true",
        help="clear routers whose e-stop is latched (they refuse to run otherwise)",
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="twin fault, as ppr twin --fault (repeatable)",
    )
    parser.add_argument(
        "--mechanism",
        metavar="NAME",
        help="the market's matching rule each frame, as ppr market --mechanism (default vcg)",
    )
    parser.add_argument(
        "--dayahead",
        type=Path,
        metavar="FILE",
        help="carry hour --hour of this VPP file's day-ahead trades (ppr dayahead) as the "
        "frames' transfers",
    )
    parser.add_argument("--hour", type=int, help="--dayahead: the hour of the day (0-23)")
    parser.add_argument(
        "--framework",
        choices=("pool", "bilateral"),
        help="--dayahead: the market (default pool), solved as ppr dayahead solves it",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.frames < 1:
        raise UsageError(f"--frames must be at least 1, not {args.frames}")
    check_line_baud(args.transport, args.line_baud)
    if args.hardware and args.fault:
        raise UsageError(f"--fault {args.fault[0]}: faults are the twin's; not with --hardware")
    if not (math.isfinite(args.retail_price) and args.retail_price >= 0):
        raise UsageError(f"--retail-price must be a number >= 0, not {args.retail_price:g}")
    if args.plan_ms is not None and not args.plan_ms > 0:
        raise UsageError(f"--plan-ms must be above 0, not {args.plan_ms:g}")
    if not 1 <= args.timeout_ms < args.watchdog_ms:
        raise UsageError(
            f"--timeout-ms {args.timeout_ms} must be at least 1 and below --watchdog-ms "
            f"{args.watchdog_ms}: a heartbeat must be able to get through in time"
        )
    scenario = load_scenario(args.scenario or bundled_path())
    check_guard(scenario, Path(args.scenario or bundled_path()))
    stage: FrameStage | None = None
    dayahead = args.dayahead is not None or args.hour is not None or args.framework is not None
    if (dayahead or scenario.mec is not None) and args.mechanism is not None:
        raise UsageError(
            "--mechanism clears the scenario's offers and bids; --dayahead and [mec] "
            "decide the frames' transfers themselves: give one of them"
        )
    if scenario.mec is not None:  # its servers' energy, allocated every frame (docs/mec.md)
        if dayahead:
            given = next(
                f"--{name} {value}" if name == "framework" else f"--{name}"
                for name, value in (
                    ("dayahead", args.dayahead), ("hour", args.hour), ("framework", args.framework)
                )
                if value is not None
            )  # fmt: skip
            raise UsageError(f"{given}: the scenario's [mec] section decides its frames")
        from router.controller.mec_stage import MecStage

        stage = MecStage()
    elif dayahead:
        from router.cli.dayahead_run import dayahead_stage

        stage = dayahead_stage(args.dayahead, args.hour, args.framework)
    elif args.mechanism is not None:
        stage = MarketStage(mechanism_named(args.mechanism))
        if not (scenario.offers and scenario.bids):
            raise UsageError(
                f"--mechanism {args.mechanism}: {scenario.name} quotes no [[offers]] and "
                f"[[bids]] to match; give a market scenario (e.g. bench-4-market)"
            )
    config = SessionConfig(
        stage=stage,
        scenario=scenario,
        out_dir=args.out,
        keys_dir=args.keys,
        transport=args.transport,
        line_baud=args.line_baud,
        hardware=args.hardware,
        mqtt=args.mqtt,
        mqtt_password_file=mqtt_password_file(args),
        watchdog_ms=args.watchdog_ms,
        timeout_s=args.timeout_ms / 1000,
        faults=tuple(args.fault),
        clear_estop=args.clear_estop,
        options=RunOptions(
            frames=args.frames,
            lr=LrOptions(time_limit_s=None if args.plan_ms is None else args.plan_ms / 1000),
            settlement=SettlementConfig(grid_retail_price_per_j=args.retail_price),
            telemetry=bool(args.mqtt),
        ),
    )
    ensure_kernels(PLANNER)  # before any router is claimed: the first frame plans warm
    return asyncio.run(_main(config))


def check_guard(scenario: Scenario, path: Path) -> None:
    """A run needs a switching guard: routers start their slots only as close together
    as their clocks agree, and with none (guard_us 0, the planning default) no skew is
    small enough: the run would wait 10 s for the clocks and fail."""
    if not scenario.frame.guard_us:
        error = ScenarioError(
            "frame.guard_us",
            "0 us: a run needs a switching guard at the start of each slot longer than "
            "the routers' clocks disagree (tens of us on the twin); set guard_us = 100",
        )
        raise locate_in(error, path.read_text(encoding="utf-8"), str(path))


async def _main(config: SessionConfig) -> int:
    where = "hardware" if config.hardware else f"the twin over {config.transport}"
    frames = plural(config.options.frames, "frame")
    print(f"{config.scenario.name}: {frames} on {where}", flush=True)
    with ProgressBar("frames") as bar:
        done = 0

        def on_frame(outcome: FrameOutcome, alarms: int) -> None:
            nonlocal done
            done += 1
            bar.write(frame_line(outcome, alarms))
            bar.update(done, config.options.frames)

        session = Session(
            config,
            on_frame=on_frame,
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
    if session.twin_timing:
        print(twin_timing_line(session.twin_timing, result.outcomes))
    if session.controller is not None:
        for line in session.controller.stage.summary(result.outcomes):
            print(line)
    written = [str(result.journal)]
    if result.last_frame is not None:  # the last frame that ran, in slots
        from router.gantt import draw_gantt

        png = config.out_dir / "last-frame.png"
        draw_gantt(session.last_scenario(), session.last_plan(), png, result.last_frame.frame)
        written.insert(0, str(png))
    print(f"  journal   {result.verified.one_line()}")
    if result.witness is not None:  # compare with ppr journal verify: a cut tail shows
        print(f"  witness   {result.witness.short()} (kept in {config.keys_dir})")
    print(f"  wrote     {', '.join(written)}")
    if result.estopped:
        print(f"  stopped   {result.stop_reason}: every gate opened")
        return EXIT_ESTOP
    return 0
