"""``ppr serve``: the controller on the bench and the web trading terminal (uvicorn) in
one process. The book clears every market interval; its trades run as the frame's
transfers and their deliveries and settlement come back to the page (docs/web.md).

The web server runs in a thread of its own (``router.web.server``), so that a busy page
never delays the bench's heartbeats and arming. Ctrl-C (or SIGTERM) stops in this order:
the bench first (every gate opens, the run's journal closes), then the live streams of
open pages, then the server, which waits a few seconds at most for requests in flight.
A second Ctrl-C cuts that wait short.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import getpass
import ipaddress
import signal
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import Topology, bundled_path, load_with_topology
from router.cli import UsageError, add_password_file_option, mqtt_password_file
from router.controller.outcome import FrameOutcome, RunOptions
from router.controller.session import JOURNAL, Session, SessionConfig
from router.journal import FIRST_FRAME, MAX_FRAME, Journal
from router.kernels import PLANNER, ensure_kernels

if TYPE_CHECKING:
    from router.web.store import Store

WEB_JOURNAL = "web-journal.sqlite"
BENCH_STOP_S = 10.0  # the bench's run gets this long to end after its e-stop
LISTEN_BACKLOG = 2048  # uvicorn's default
SWITCH_INTERVAL_S = 0.001
READY_POLL_S = 0.02  # how often the start-up looks whether the bench is set up
BIND_HINTS = {
    errno.EADDRINUSE: "another ppr serve? choose another port",
    errno.EADDRNOTAVAIL: "not an address of this machine: 127.0.0.1 serves this machine "
    "only, 0.0.0.0 every network",
    errno.EACCES: "ports below 1024 need privileges: choose one from 1024",
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", nargs="?", type=Path, help="scenario (default: bench-4)")
    parser.add_argument(
        "--db",
        type=Path,
        default=Path("ppr-web.db"),
        metavar="FILE",
        help="the terminal's SQLite file: accounts, orders, certificates (ppr-web.db)",
    )
    parser.add_argument(
        "--listen",
        default="127.0.0.1:8080",
        metavar="HOST:PORT",
        help="where the web terminal listens (127.0.0.1:8080; port 0: any free port)",
    )
    parser.add_argument(
        "--create-admin",
        metavar="NAME",
        help="create an admin account in --db (password from the terminal or one line of "
        "standard input) and exit",
    )
    parser.add_argument("--mqtt", metavar="URL", help="also publish on a broker, as ppr run")
    add_password_file_option(parser)
    parser.add_argument(
        "--hardware",
        action="store_true",
        help="drive the routers at the scenario's addresses, not the twin",
    )
    parser.add_argument(
        "--clear-estop",
        action="store_true",
        help="clear routers whose e-stop is latched (after an e-stop from the page, once "
        "the bench is checked; they refuse to run otherwise)",
    )
    parser.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        metavar="ADDR",
        help="the IP address of a reverse proxy in front (TLS): its X-Forwarded-For header "
        "names the client; without it the header is ignored (repeatable)",
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
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise UsageError(f"--listen {text}: give HOST:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]"), int(port)


def parse_proxies(given: list[str]) -> tuple[str, ...]:
    """IP addresses (or networks) whose X-Forwarded-For the server believes."""
    for text in given:
        try:
            ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise UsageError(
                f"--trusted-proxy {text}: give the proxy's IP address (e.g. 127.0.0.1) or "
                "network (10.0.0.0/24)"
            ) from None
    return tuple(given)


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def run(args: argparse.Namespace) -> int:
    from router.web.errors import WebError

    host, port = parse_listen(args.listen)
    if args.frames < 1:
        raise UsageError(f"--frames must be at least 1, not {args.frames}")
    proxies = parse_proxies(args.trusted_proxy)
    password_file = mqtt_password_file(args)
    scenario, topology = load_with_topology(args.scenario or bundled_path())
    if args.create_admin is not None:
        try:
            return create_admin(args.db, args.create_admin)
        except WebError as exc:
            raise UsageError(str(exc)) from None
    sock = bind(host, port)  # before the store: a refused start creates no --db
    ensure_kernels(PLANNER)  # a cold cache says so now, not in the first frame's time
    try:
        store = _open_store(args.db)
    except BaseException as exc:
        sock.close()
        if isinstance(exc, WebError):
            raise UsageError(str(exc)) from None
        raise
    config = SessionConfig(
        scenario=scenario, out_dir=args.out, keys_dir=args.keys, hardware=args.hardware,
        mqtt=args.mqtt, mqtt_password_file=password_file, clear_estop=args.clear_estop,
        options=RunOptions(frames=args.frames, telemetry=bool(args.mqtt)),
    )  # fmt: skip
    return asyncio.run(
        _main(config, topology, store, sock, secure=not is_loopback(host), proxies=proxies)
    )


def _open_store(db: Path) -> Store:
    from router.web.store import Store

    return Store(db)


def create_admin(db: Path, name: str) -> int:
    """The bootstrap admin: made here, on the server's own command line, never over HTTP."""
    from router.web.accounts import create_admin as make
    from router.web.errors import AccountError

    if sys.stdin.isatty():
        password = getpass.getpass(f"password for {name}: ")
        if getpass.getpass("again: ") != password:
            raise UsageError(f"--create-admin {name}: the two passwords differ; nothing created")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    store = _open_store(db)
    try:
        user = make(store, name, password)
    except AccountError as exc:
        raise UsageError(f"--create-admin {name}: {exc.field} {exc.message}") from None
    finally:
        store.close()
    print(f"{db}: admin '{user.name}' created; log in on the page")
    return 0


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that a taken port is a one-line error and
    port 0 prints the port it got."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, UnicodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise UsageError(f"--listen {host}:{port}: cannot resolve host '{host}' ({why})") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(LISTEN_BACKLOG)  # from now on a client waits instead of being refused
    except OSError as exc:
        sock.close()
        hint = BIND_HINTS.get(exc.errno or 0, "")
        raise UsageError(
            f"--listen {host}:{port}: {exc.strerror or exc}" + (f" ({hint})" if hint else "")
        ) from None
    return sock


def _say_where(config: SessionConfig, sock: socket.socket, store: Store, *, secure: bool) -> None:
    from router.web.accounts import has_admin

    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"{config.scenario.name}: web terminal on http://{shown}:{port}/", flush=True)
    if secure:
        print(
            "  cookies are Secure: browsers log in over HTTPS only; put a TLS proxy in front "
            "(docs/web.md)",
            flush=True,
        )
    if not has_admin(store):
        print(
            "  no admin yet: create one with ppr serve --db FILE --create-admin NAME",
            flush=True,
        )


def journal_next_frame(path: Path) -> int:
    """The frame a run on this journal starts at (read only; before the run opens it)."""
    from router.journal.verify import connect_read_only

    if not path.exists():
        return FIRST_FRAME
    conn = connect_read_only(path)
    try:
        (last,) = conn.execute("SELECT MAX(frame) FROM records").fetchone()
    except Exception:  # not a journal yet: the run says so when it opens it
        return FIRST_FRAME
    finally:
        conn.close()
    return FIRST_FRAME if last is None else int(last) + 1


async def _main(
    config: SessionConfig,
    topology: Topology,
    store: Store,
    sock: socket.socket,
    *,
    secure: bool,
    proxies: tuple[str, ...] = (),
) -> int:
    from router.web.app import create_app
    from router.web.live import gantt_rows, meters
    from router.web.server import WebServer
    from router.web.stage import BookStage
    from router.web.terminal import WebTerminal

    session = Session(config)
    loop = asyncio.get_running_loop()
    # Three threads share the interpreter: the bench's loop, its planning and the web's
    # loop. A thread that wants it waits for the one that holds it to yield, every
    # switch interval (5 ms by default), and arming a frame takes a few dozen turns of
    # the bench's loop: 1 ms keeps a busy web from adding up to a late frame.
    sys.setswitchinterval(SWITCH_INTERVAL_S)

    async def estop(reason: str) -> None:  # from the web thread: the bench's loop stops it
        loop.call_soon_threadsafe(session.stop, reason)

    try:
        key = session.keys().signing_key()
        journal = Journal.open(
            config.out_dir / WEB_JOURNAL, key, genesis={"web": config.scenario.name}
        )
    except BaseException:
        store.close()
        sock.close()
        raise
    terminal = WebTerminal(
        store, config.scenario, topology, journal, estop=estop,
        next_frame=journal_next_frame(config.out_dir / JOURNAL),
    )  # fmt: skip
    stage = BookStage(terminal, journal_path=config.out_dir / JOURNAL)
    session.config.stage = stage

    def on_frame(outcome: FrameOutcome, alarms: int) -> None:
        gantt = terminal.bench.gantt
        if session.controller is not None and session.controller.last_prepared is not None:
            gantt = [gantt_rows(session.last_plan(), config.scenario.frame.slots)]
        terminal.show(
            frame=outcome.frame, meters=meters(outcome), alarms=session.alarms[-10:],
            estopped=session.estopped, gantt=gantt,
        )  # fmt: skip

    def on_alarm(text: str) -> None:
        print(f"  alarm: {text}", file=sys.stderr, flush=True)
        terminal.show(alarms=session.alarms[-10:], estopped=session.estopped)

    session.on_frame = on_frame
    session.on_alarm = on_alarm
    app = create_app(terminal, secure_cookies=secure)
    web = WebServer(app, sock, terminal, trusted_proxies=proxies)
    stopping = asyncio.Event()

    def on_signal() -> None:
        if stopping.is_set():
            web.cut_short()  # a second Ctrl-C: do not wait for requests
        stopping.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    served: asyncio.Future[None] = loop.create_future()
    bench = asyncio.create_task(session.run(), name="bench")
    signalled = asyncio.create_task(stopping.wait(), name="stop signal")
    ends: list[asyncio.Future[Any]] = [bench, served, signalled]
    try:
        # the page opens once the routers are claimed and the journal open: a bench that
        # cannot start (a latched e-stop, a router missing) says so alone, no address first
        while session.controller is None and not (bench.done() or stopping.is_set()):
            await asyncio.wait([bench, signalled], timeout=READY_POLL_S)
        if session.controller is not None and not stopping.is_set():
            _say_where(config, sock, store, secure=secure)
            web.start(served)
            await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
            if bench.done() and not bench.exception() and not served.done():
                # e-stopped from the page (or --frames ran out): the page stays, read only
                terminal.show(estopped=session.estopped)
                await asyncio.wait(ends[1:], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        signalled.cancel()
        # 1. the bench: every gate opens before anything else stops
        if not bench.done():
            session.stop("web terminal stopped: e-stop")
            await asyncio.wait([bench], timeout=BENCH_STOP_S)
        # 2. the pages' live streams end, 3. the server stops (its wait is bounded)
        await web.stop()
        if not web.started:
            sock.close()
        if not bench.done():
            print("  the bench did not stop in time; its gates were opened", file=sys.stderr)
            bench.cancel()
            await asyncio.gather(bench, return_exceptions=True)
        stage.close()
        journal.close()
        store.close()
    if bench.cancelled():
        return 1
    if web.error is not None:
        raise web.error
    result = bench.result()  # a bench that failed raises its error here
    print(f"  journal   {result.verified.one_line()}")
    return 0
