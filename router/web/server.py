"""The web server in a thread of its own, with an event loop of its own.

On the controller's event loop, a hundred pages' requests queue with the bench's own
work (heartbeats, arming, meters): under load the loop fell seconds behind, the routers'
watchdogs opened their gates and frames were skipped (docs/benchmarks.md). In a thread
of its own the web loop only shares the interpreter: the controller's loop waits at most
one interpreter switch (5 ms) for its turn, whatever the web's backlog.

Everything the two sides share is thread-safe: the store (one lock), the journals (one
lock each), the terminal's view (replaced, never edited in place, and ``touch`` hands the
wake-up to the web loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn

from router.web.terminal import WebTerminal

GRACE_S = 3  # requests in flight get this long to finish once the server stops


class _Server(uvicorn.Server):
    """uvicorn re-raises the signals it caught when it ends; here signals belong to the
    controller's thread (it stops the bench first), so uvicorn does not touch them."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class WebServer:
    def __init__(
        self,
        app: Any,
        sock: socket.socket,
        terminal: WebTerminal,
        *,
        trusted_proxies: tuple[str, ...] = (),
    ) -> None:
        """``trusted_proxies``: the addresses whose X-Forwarded-For names the client (a TLS
        proxy in front). None by default: uvicorn would otherwise believe the header from
        loopback, and every guess from a local program would come from a new "address",
        past the failed-login limits."""
        self.sock, self.terminal = sock, terminal
        self.server = _Server(
            uvicorn.Config(
                app,
                log_level="warning",
                timeout_graceful_shutdown=GRACE_S,
                proxy_headers=bool(trusted_proxies),
                forwarded_allow_ips=list(trusted_proxies) or None,
            )
        )
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = threading.Event()
        self._on_end: Callable[[], object] = lambda: None
        self._thread = threading.Thread(target=self._run, name="ppr-web", daemon=True)

    def start(self, done: asyncio.Future[None]) -> None:
        """Serve in the thread; ``done`` (of the caller's loop) completes when it ends."""
        caller = asyncio.get_running_loop()

        def finished() -> None:
            if not done.done():
                done.set_result(None)

        self._on_end = lambda: caller.call_soon_threadsafe(finished)
        self._thread.start()
        self._started.wait()

    @property
    def started(self) -> bool:
        return self._started.is_set()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self.terminal.bind_loop(loop)
        self._started.set()
        try:
            loop.run_until_complete(self.server.serve(sockets=[self.sock]))
        except BaseException as exc:  # reported by stop()
            self.error = exc
        finally:
            loop.close()
            self._on_end()

    async def stop(self, *, force: bool = False) -> None:
        """End the pages' live streams, stop serving (in-flight requests get GRACE_S, none
        with ``force``), wait for the thread."""
        if not self.started:
            return  # never started (the bench failed first)
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed meanwhile
                loop.call_soon_threadsafe(self.terminal.close)
        self.server.force_exit = self.server.force_exit or force
        self.server.should_exit = True
        await asyncio.to_thread(self._thread.join)

    def cut_short(self) -> None:
        """A second Ctrl-C: do not wait for requests in flight."""
        self.server.force_exit = True
