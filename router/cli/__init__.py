"""The ``ppr`` command line.

Each subcommand lives in its own module and is imported only when used, so that
``ppr --help`` does not pay for Numba or pymodbus. User mistakes (bad scenario, bad
option, unreachable router) print one ``error:`` line and exit with status 2; anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

# subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "plan": ("router.cli.plan_cmd", "plan every packet of a scenario into routes and slots"),
    "scenario": ("router.cli.scenario_cmd", "generate benchmark scenarios"),
    "market": ("router.cli.market_cmd", "match offers and bids by a market rule, show payments"),
    "dayahead": (
        "router.cli.dayahead_cmd",
        "day-ahead P2P trading among a VPP's prosumers (pool or bilateral)",
    ),
    "allocate": (
        "router.cli.allocate_cmd",
        "allocate energy to MEC servers: matching, NSGA-II and exact fronts",
    ),
    "keys": ("router.cli.keys_cmd", "create, rotate and show the keys that seal headers"),
    # issue 5: the wire contract and the twin
    "registers": ("router.cli.registers_cmd", "print the router register map (the wire contract)"),
    "twin": (
        "router.cli.twin_cmd",
        "serve the scenario's routers as emulated devices (Ctrl-C stops)",
    ),
    # issue 6: the controller
    "run": ("router.cli.run_cmd", "run frames on the bench (default: bench-4 on the twin)"),
    "estop": ("router.cli.estop_cmd", "open every gate of a bench now"),
    "journal": ("router.cli.journal_cmd", "verify the signed, hash-chained journal of a run"),
    # issue 11: the web trading terminal
    "serve": ("router.cli.serve_cmd", "run the bench with the web trading terminal"),
}

EXIT_USAGE = 2


class UsageError(Exception):
    """A command-line mistake: printed as one line, exit status 2."""


def check_line_baud(transport: str, line_baud: int | None) -> None:
    """``--line-baud`` (ppr run, ppr twin) paces a serial line: not TCP, not below 300."""
    if line_baud is not None and (transport == "tcp" or line_baud < 300):
        raise UsageError(
            f"--line-baud {line_baud}: paces a serial line; give --transport rtu or "
            f"serial and a rate of at least 300"
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ppr",
        description="Controller for power-packet router benches.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).configure(cmd)
    return parser


def user_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean 'the user asked for something wrong'."""
    from bench.errors import BenchError
    from firmware_bridge.errors import BridgeError  # issue 5: drivers
    from firmware_bridge.headers.errors import HeaderError  # issue 4: headers and key store
    from router.journal.errors import JournalError  # issue 6: controller services
    from router.mqtt.errors import MqttFeedError
    from router.settlement import SettlementError
    from router.timesync import TimeSyncError
    from scheduler.errors import SchedulerError
    from sim_hw.errors import TwinError  # issue 5: the twin

    return (
        BenchError,
        BridgeError,
        HeaderError,
        JournalError,
        MqttFeedError,
        SchedulerError,
        SettlementError,
        TimeSyncError,
        TwinError,
        UsageError,
    )


def main(argv: Sequence[str] | None = None) -> int:
    # pymodbus logs every lost reply with a hex dump; the driver retries and raises typed
    # errors of its own, which is what a lab engineer should read
    logging.getLogger("pymodbus").setLevel(logging.ERROR)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except user_errors() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (ppr ... | head): stop quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
