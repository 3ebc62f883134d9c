"""Progress on stderr for work longer than a second: a one-line bar redrawn in place when
stderr is a terminal, and a plain line every few seconds when it is not (a log file, a
CI job, ``2> run.log``), so that a log shows the work going on too.

``update`` reports counted work (iterations, frames); ``timed`` a phase that reports
nothing of its own while it runs (HiGHS's finish): a thread keeps the elapsed time
moving until the next ``update``/``timed`` or ``close``. Thread-safe.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

AFTER_S = 1.0  # nothing is shown for work that ends sooner
REDRAW_S = 0.1  # on a terminal, the bar is redrawn at most this often
EVERY_S = 2.0  # elsewhere, a plain line at most this often
TICK_S = 0.1  # a timed phase's clock moves this often


class ProgressBar:
    def __init__(
        self,
        label: str,
        stream: TextIO | None = None,
        width: int = 30,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = self.stream.isatty()
        self._clock = clock
        self._began = clock()
        self._last = -1e9  # when something was last shown
        self._drawn = False  # a bar is on the terminal's last line
        self._lock = threading.RLock()
        self._phase: tuple[str, float, float, str] | None = None  # name, budget, start, note
        self._ticker: threading.Thread | None = None
        self._stop_ticking = threading.Event()

    # -- reporting ------------------------------------------------------------------------
    def update(self, done: int, total: int, note: str = "", phase: str | None = None) -> None:
        """Counted work: ``done`` of ``total`` (of ``phase``, when the work has several),
        and what else there is to say."""
        with self._lock:
            self._phase = None
            count = f"{done}/{total}"
            self._show(done, total, count, note, final=done >= total, name=phase)

    def timed(self, phase: str, budget_s: float, note: str = "") -> None:
        """A phase of at most ``budget_s`` seconds that reports little of itself: shown
        with its elapsed time, kept moving by a thread. Called again (a new ``note``),
        the same phase keeps its start."""
        with self._lock:
            start = self._clock()
            if self._phase is not None and self._phase[0] == phase:
                start = self._phase[2]
            self._phase = (phase, budget_s, start, note)
            self._show_phase()
            if self._ticker is None:
                self._stop_ticking.clear()
                self._ticker = threading.Thread(target=self._tick, daemon=True, name="progress")
                self._ticker.start()

    def write(self, line: str, stream: TextIO | None = None) -> None:
        """Print a line above the bar (the bar is redrawn on the next update)."""
        with self._lock:
            self._clear()
            if not self.tty:
                self._last = self._clock()  # a line was just shown: progress enough for now
            print(line, file=stream or sys.stdout, flush=True)

    def close(self) -> None:
        self._stop_ticking.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None
        with self._lock:
            self._phase = None
            self._clear()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- drawing --------------------------------------------------------------------------
    def _tick(self) -> None:
        while not self._stop_ticking.wait(TICK_S):
            with self._lock:
                if self._phase is not None:
                    self._show_phase()

    def _show_phase(self) -> None:
        assert self._phase is not None
        phase, budget, start, note = self._phase
        elapsed = min(self._clock() - start, budget)
        done = round(self.width * elapsed / budget) if budget > 0 else self.width
        count = f"{elapsed:.1f}/{budget:g} s"
        self._show(done, self.width, count, note, name=phase)

    def _show(
        self,
        done: int,
        total: int,
        count: str,
        note: str,
        *,
        final: bool = False,
        name: str | None = None,
    ) -> None:
        now = self._clock()
        if now - self._began < AFTER_S:
            return
        if self.tty:
            if now - self._last < REDRAW_S and not final:
                return
            filled = int(self.width * done / max(total, 1))
            bar = "#" * filled + "-" * (self.width - filled)
            what = f"{self.label}: {name}" if name else self.label
            self.stream.write(f"\r{what} [{bar}] {count} {note}\x1b[K")
            self._drawn = True
        else:
            if now - self._last < EVERY_S:
                return
            what = f"{name} {count}" if name else count
            self.stream.write(f"{self.label}: {what}{', ' + note if note else ''}\n")
        self.stream.flush()
        self._last = now

    def _clear(self) -> None:
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn = False
            self._last = -1e9
