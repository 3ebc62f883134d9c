"""The terminal's shared state: the bench it trades on, the operator's settings, the live
bench view, and the signed journal every operator and admin action goes into.

One object per ``ppr serve``; the HTTP routes read and change it, the book stage reads
the settings (in the planning thread) and the controller's frame callback updates the
bench view.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bench import Scenario, Topology
from bench.models import MAX_INTERVAL_FRAMES
from router.journal import FIRST_FRAME, Journal
from router.web.clearing import mechanism_names
from router.web.errors import OrderError
from router.web.store import Store

DEFAULT_MECHANISM = "vcg"
NOTE_FRAMES = 10  # the book stage's last word stays on the page this many frames at most


@dataclass
class BenchView:
    """What the page's live panel shows; ``version`` grows with every change."""

    frame: int = 0  # the last frame that ran
    estopped: bool = False
    alarms: list[str] = field(default_factory=list)
    meters: dict[str, Any] = field(default_factory=dict)
    gantt: list[dict[str, Any]] = field(default_factory=list)
    version: int = 0

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    def text(self) -> str:
        """As JSON text, made once per version (every open page's stream sends it)."""
        cached = self.__dict__.get("_text")
        if cached is None or cached[0] != self.version:
            cached = self.__dict__["_text"] = (self.version, json.dumps(self.to_json()))
        return str(cached[1])


class WebTerminal:
    def __init__(
        self,
        store: Store,
        scenario: Scenario,
        topology: Topology,
        journal: Journal,
        *,
        estop: Callable[[str], Awaitable[None]] | None = None,
        next_frame: int = FIRST_FRAME,
    ) -> None:
        self.store = store
        self.scenario = scenario
        self.topology = topology
        self.journal = journal
        self._estop = estop
        self.bench = BenchView()
        self.closing = False  # the server is shutting down: live streams end
        self.streams = 0  # live streams open (pages), counted by the web loop
        # the next frame the book stage clears for: orders placed now start there
        self.next_frame = next_frame
        self.note = ""  # the book stage's last word when a clearing did not happen
        self._note_since = (0, 0)  # (next_frame, book_version) when it was said
        self.book_version = 0  # grows with every order placed or cancelled
        self._clear_requested = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed = asyncio.Event()
        self._lock = threading.Lock()  # settings are read by the planning thread
        self.mechanism = store.setting("mechanism", DEFAULT_MECHANISM)
        if self.mechanism not in mechanism_names():
            self.mechanism = DEFAULT_MECHANISM  # stored by a ppr that knew more rules
        override = store.rows("SELECT value FROM settings WHERE name = 'interval'")
        self.interval_override = int(override[0]["value"]) if override else None

    # --- operator settings (journaled) ---------------------------------------------------
    @property
    def interval(self) -> int:
        """Frames between clearings: the operator's override, else the scenario's."""
        if self.interval_override is not None:
            return self.interval_override
        return self.scenario.market.interval_frames

    def settings(self) -> dict[str, Any]:
        with self._lock:
            return {
                "mechanism": self.mechanism,
                "interval": self.interval,
                "scenario_interval": self.scenario.market.interval_frames,
            }

    async def configure(
        self, by: str, mechanism: str | None, interval: str | None
    ) -> dict[str, Any]:
        """Change the mechanism and the interval (``"scenario"`` returns to the
        scenario's interval)."""
        names = mechanism_names()
        if mechanism is not None and mechanism not in names:
            raise OrderError("mechanism", f"unknown '{mechanism}' (choose {', '.join(names)})")
        if interval is not None and interval != "scenario":
            interval = str(interval).strip()
            if not (interval.isdigit() and 1 <= int(interval) <= MAX_INTERVAL_FRAMES):
                raise OrderError(
                    "interval",
                    f"must be a whole number of frames, 1 to {MAX_INTERVAL_FRAMES} (or 'scenario')",
                )
        with self._lock, self.store.transaction() as conn:
            if mechanism is not None:
                self.mechanism = mechanism
                conn.execute(
                    "INSERT OR REPLACE INTO settings VALUES ('mechanism', ?)", (mechanism,)
                )
            if interval == "scenario":
                self.interval_override = None
                conn.execute("DELETE FROM settings WHERE name = 'interval'")
            elif interval is not None:
                self.interval_override = int(interval)
                conn.execute("INSERT OR REPLACE INTO settings VALUES ('interval', ?)", (interval,))
        out = self.settings()
        await self.audit(by, "settings", out)
        return out

    def say(self, note: str) -> None:
        """The book stage's word on a clearing that did not happen ("" once one did)."""
        self.note = note
        self._note_since = (self.next_frame, self.book_version)
        self.touch()

    def current_note(self) -> str:
        """The note while it is news: until the book changes or NOTE_FRAMES frames pass."""
        frame, book = self._note_since
        if self.book_version != book or self.next_frame > frame + NOTE_FRAMES:
            return ""
        return self.note

    def request_clearing(self) -> int:
        """Clear whatever the interval: when the stage plans the next frame it clears for
        the one after (a frame ahead, as always); that frame."""
        self._clear_requested = True
        return self.next_frame + 1

    def take_clear_request(self) -> bool:
        asked, self._clear_requested = self._clear_requested, False
        return asked

    async def estop(self, by: str) -> None:
        await self.audit(by, "estop", {})
        self.show(estopped=True)
        if self._estop is not None:
            await self._estop(f"e-stop from the web terminal by {by}")

    async def audit(self, by: str, action: str, detail: dict[str, Any]) -> None:
        """An operator or admin action, signed into the journal before it is answered."""
        await self.journal.append_async(
            "command", {"source": "web", "by": by, "action": action} | detail
        )

    # --- the live view -------------------------------------------------------------------
    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop the live streams wait on (the web server's); changes made in other
        threads (the controller's loop, the planning thread) wake them through it."""
        self._loop = loop

    def show(self, **changes: Any) -> None:
        """Replace fields of the bench view (from the controller's thread) and wake the
        streams: a new view object, so a stream never reads one half-changed."""
        self.bench = dataclasses.replace(self.bench, **changes)
        self.touch()

    def touch(self) -> None:
        """Something the page shows changed: wake the live streams (any thread)."""
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if self._loop is None or running is self._loop:
            self._wake()
            return
        with contextlib.suppress(RuntimeError):  # the web loop closed: nobody listens
            self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        self.bench.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def changed(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    def close(self) -> None:
        """End the live streams (the server is stopping)."""
        self.closing = True
        self.touch()
