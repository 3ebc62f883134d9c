"""``ppr serve``: the controller on the bench and the web trading terminal, in one asyncio
process (uvicorn). The book clears every market interval; its trades run as the frame's
transfers and their deliveries and settlement come back to the page."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

from bench import Topology, bundled_path, load_with_topology
from router.cli import UsageError, add_password_file_option, mqtt_password_file
from router.controller.outcome import FrameOutcome, RunOptions
from router.controller.session import Session, SessionConfig
from router.journal import MAX_FRAME, Journal

WEB_JOURNAL = "web-journal.sqlite"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", nargs="?", type=Path, help="scenario (default: bench-4)")
    parser.add_argument(
        "--db",
        type=Path,
        default=Path("ppr-web.db"),
        metavar="FILE",
        help="the terminal's SQLite file: accounts, orders (ppr-web.db)",
    )
    parser.add_argument(
        "--listen",
        default="127.0.0.1:8080",
        metavar="HOST:PORT",
        help="where the web terminal listens (127.0.0.1:8080)",
    )
    parser.add_argument("--mqtt", metavar="URL", help="also publish on a broker, as ppr run")
    add_password_file_option(parser)
    parser.add_argument(
        "--hardware",
        action="store_true",
        help="drive the routers at the scenario's addresses, not the twin",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("ppr-out"),
        metavar="DIR",
        help="journals and addresses (ppr-out)",
    )
    parser.add_argument(
        "--keys",
        type=Path,
        default=Path("ppr-keys"),
        metavar="DIR",
        help="key store (ppr-keys; created for the twin if missing)",
    )
    parser.add_argument("--frames", type=int, default=MAX_FRAME, help=argparse.SUPPRESS)
    parser.set_defaults(run=run)


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--listen {text}: give HOST:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def run(args: argparse.Namespace) -> int:
    host, port = parse_listen(args.listen)
    if args.frames < 1:
        raise UsageError(f"--frames must be at least 1, not {args.frames}")
    scenario, topology = load_with_topology(args.scenario or bundled_path())
    config = SessionConfig(
        scenario=scenario, out_dir=args.out, keys_dir=args.keys, hardware=args.hardware,
        mqtt=args.mqtt, mqtt_password_file=mqtt_password_file(args),
        options=RunOptions(frames=args.frames, telemetry=bool(args.mqtt)),
    )  # fmt: skip
    return asyncio.run(_main(config, topology, args.db, host, port))


async def _main(config: SessionConfig, topology: Topology, db: Path, host: str, port: int) -> int:
    import uvicorn

    from router.web.app import create_app
    from router.web.live import gantt_rows, meters
    from router.web.stage import BookStage
    from router.web.store import Store
    from router.web.terminal import WebTerminal

    session = Session(config)

    async def estop(reason: str) -> None:  # every gate opens and the run ends; the page stays
        session.stop(reason)

    key = session.keys().signing_key()
    store = Store(db)
    journal = Journal.open(config.out_dir / WEB_JOURNAL, key, genesis={"web": config.scenario.name})
    terminal = WebTerminal(store, config.scenario, topology, journal, estop=estop)
    session.config.stage = BookStage(terminal)

    def on_frame(outcome: FrameOutcome, alarms: int) -> None:
        view = terminal.bench
        view.frame = outcome.frame + 1  # orders placed now are for the frames to come
        view.meters = meters(outcome)
        view.alarms = session.alarms[-10:]
        view.estopped = session.estopped
        view.gantt = [gantt_rows(session.last_plan(), config.scenario.frame.slots)]
        terminal.touch()

    session.on_frame = on_frame
    session.on_alarm = lambda text: print(f"  alarm: {text}", file=sys.stderr, flush=True)
    app = create_app(terminal, secure_cookies=not is_loopback(host))
    server = _server_class()(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, setattr, server, "should_exit", True)
    print(f"{config.scenario.name}: web terminal on http://{host}:{port}/", flush=True)
    bench = asyncio.create_task(session.run(), name="bench")
    try:
        await server.serve()  # until Ctrl-C
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        session.stop("web terminal stopped: e-stop")
        try:
            result = await bench  # a failed run has ended safely, and says so in one line
        finally:
            journal.close()
            store.close()
    print(f"  journal   {result.verified.one_line()}")
    return 0


def _server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn re-raises the signals it caught when it ends; here Ctrl-C is ours (it
        stops the bench cleanly first), so uvicorn does not touch the signals."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return Server
