"""A one-line progress bar on stderr for long work (only when stderr is a terminal)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    def __init__(self, label: str, stream: TextIO | None = None, width: int = 30) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.enabled = self.stream.isatty()
        self._last = 0.0

    def update(self, done: int, total: int, note: str = "") -> None:
        now = time.monotonic()
        if not self.enabled or (now - self._last < 0.1 and done < total):
            return
        self._last = now
        filled = int(self.width * done / max(total, 1))
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {done}/{total} {note}\x1b[K")
        self.stream.flush()

    def write(self, line: str, stream: TextIO | None = None) -> None:
        """Print a line above the bar (the bar is redrawn on the next update)."""
        if self.enabled:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._last = 0.0
        print(line, file=stream or sys.stdout, flush=True)

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[K")
            self.stream.flush()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
