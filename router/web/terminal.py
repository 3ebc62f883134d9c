"""The terminal's shared state: the bench it trades on, the operator's settings, the live
bench view, and the signed journal every operator and admin action goes into.

One object per ``ppr serve``; the HTTP routes read and change it, the frame stage reads the
settings and the controller's frame callback updates the bench view.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bench import Scenario, Topology
from router.journal import Journal
from router.web.clearing import mechanism_names
from router.web.errors import OrderError
from router.web.store import Store

MAX_INTERVAL = 10_000


@dataclass
class BenchView:
    """What the page's live panel shows; ``version`` grows with every change."""

    frame: int = 0
    estopped: bool = False
    alarms: list[str] = field(default_factory=list)
    meters: dict[str, Any] = field(default_factory=dict)
    gantt: list[dict[str, Any]] = field(default_factory=list)
    version: int = 0

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class WebTerminal:
    def __init__(
        self,
        store: Store,
        scenario: Scenario,
        topology: Topology,
        journal: Journal,
        *,
        estop: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.store = store
        self.scenario = scenario
        self.topology = topology
        self.journal = journal
        self._estop = estop
        self.bench = BenchView()
        self._changed = asyncio.Event()
        self._lock = threading.Lock()  # settings are read by the planning thread
        self.mechanism = store.setting("mechanism", "vcg")
        self.interval = int(store.setting("interval", "1"))

    # --- operator settings (journaled) ---------------------------------------------------
    def settings(self) -> dict[str, Any]:
        with self._lock:
            return {"mechanism": self.mechanism, "interval": self.interval}

    async def configure(
        self, by: str, mechanism: str | None, interval: str | None
    ) -> dict[str, Any]:
        names = mechanism_names()
        if mechanism is not None and mechanism not in names:
            raise OrderError("mechanism", f"unknown '{mechanism}' (choose {', '.join(names)})")
        if interval is not None and not (interval.isdigit() and 1 <= int(interval) <= MAX_INTERVAL):
            raise OrderError("interval", f"must be a whole number of frames, 1 to {MAX_INTERVAL}")
        with self._lock, self.store.transaction() as conn:
            if mechanism is not None:
                self.mechanism = mechanism
                conn.execute("UPDATE settings SET value = ? WHERE name = 'mechanism'", (mechanism,))
            if interval is not None:
                self.interval = int(interval)
                conn.execute("UPDATE settings SET value = ? WHERE name = 'interval'", (interval,))
        out = self.settings()
        await self.audit(by, "settings", out)
        return out

    async def estop(self, by: str) -> None:
        await self.audit(by, "estop", {})
        self.bench.estopped = True
        self.touch()
        if self._estop is not None:
            await self._estop(f"e-stop from the web terminal by {by}")

    async def audit(self, by: str, action: str, detail: dict[str, Any]) -> None:
        """An operator or admin action, signed into the journal before it is answered."""
        await self.journal.append_async(
            "command", {"source": "web", "by": by, "action": action} | detail
        )

    # --- the live view -------------------------------------------------------------------
    def touch(self) -> None:
        self.bench.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def changed(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)
