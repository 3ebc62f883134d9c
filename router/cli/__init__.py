"""The ``ppr`` command line.

Each subcommand lives in its own module and is imported only when used, so that
``ppr --help`` does not pay for Numba or pymodbus. User mistakes (bad scenario, bad
option, unreachable router) print one ``error:`` line and exit with status 2; anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from router.cli.logs import LOG_LEVELS, VERBOSITY, configure_logging
from router.errors import RunFailedError

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
        "allocate energy to MEC servers: matching, NSGA-II front against an epsilon grid's",
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

# --all-errors (every problem of a bad file) goes to every command that takes a scenario
# (a ``scenario`` argument or ``--scenario``) and to these, which read files like one
READS_SCENARIO_LIKE = ("dayahead",)

EXIT_USAGE = 2
EXIT_FAILED = 1  # a run failed after it started (a bug): it ended safely, see the journal


class UsageError(Exception):
    """A command-line mistake: printed as one line, exit status 2."""


def check_line_baud(transport: str, line_baud: int | None) -> None:
    """``--line-baud`` (ppr run, ppr twin) paces a serial line: not TCP, not below 300."""
    if line_baud is not None and (transport == "tcp" or line_baud < 300):
        raise UsageError(
            f"--line-baud {line_baud}: paces a serial line; give --transport rtu or "
            f"serial and a rate of at least 300"
        )


def add_password_file_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mqtt-password-file",
        type=Path,
        metavar="FILE",
        help="--mqtt: the password of the URL's user, on the first line of FILE (mode 600; "
        "or set PPR_MQTT_PASSWORD)",
    )


def mqtt_password_file(args: argparse.Namespace) -> Path | None:
    if args.mqtt_password_file is not None and not args.mqtt:
        raise UsageError("--mqtt-password-file goes with --mqtt URL")
    path: Path | None = args.mqtt_password_file
    return path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ppr",
        description="Controller for power-packet router benches.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).configure(cmd)
        for leaf in _leaves(cmd):
            add_log_options(leaf)
            if name in READS_SCENARIO_LIKE or _takes_scenario(leaf):
                leaf.add_argument(
                    "--all-errors",
                    action="store_true",
                    help="list every problem of a bad scenario file, not just the first",
                )
    _name_parsers(parser)
    return parser


def _takes_scenario(parser: argparse.ArgumentParser) -> bool:
    return any(action.dest == "scenario" for action in parser._actions)


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found: dict[int, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found |= {id(p): p for p in action.choices.values()}
    return list(found.values())


def _leaves(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    children = _subparsers(parser)
    return [leaf for child in children for leaf in _leaves(child)] if children else [parser]


def _name_parsers(parser: argparse.ArgumentParser) -> None:
    """Let every (sub)command's namespace carry its own parser: an argument it does not
    know is then refused with its usage, not the top level's."""
    parser.set_defaults(parser_=parser)
    for child in _subparsers(parser):
        _name_parsers(child)


def add_log_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("logging")
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="say more on stderr: -v what the controller and the links do (lost replies "
        "with their hex dumps), -vv every Modbus frame",
    )
    group.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        metavar="LEVEL",
        help=f"log level on stderr, one of {', '.join(LOG_LEVELS)} (warning; overrides -v)",
    )


def user_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean 'the user asked for something wrong'."""
    from router.errors import project_errors

    return (*project_errors(), UsageError)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # refused by the (sub)command that was given them, with its usage
        args.parser_.error(f"unrecognized arguments: {' '.join(unknown)}")
    verbosity = VERBOSITY[min(args.verbose, len(VERBOSITY) - 1)]
    configure_logging(args.log_level or verbosity)
    try:
        return int(args.run(args) or 0)
    except RunFailedError as exc:
        # the run had started and ended safely (gates, journal); a typed cause is the
        # user's business (exit 2), anything else a bug whose traceback is journaled
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE if exc.expected else EXIT_FAILED
    except user_errors() as exc:
        for line in _error_lines(exc, getattr(args, "all_errors", False)):
            print(f"error: {line}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (ppr ... | head): stop quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _error_lines(exc: BaseException, every: bool) -> list[str]:
    """The error's line; with ``--all-errors``, one line per problem of a bad file."""
    from bench.errors import ScenarioError

    if every and isinstance(exc, ScenarioError):
        return [p.one_line() for p in exc.problems]
    return [str(exc)]
