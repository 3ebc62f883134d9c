"""Logging for the command line: one handler on stderr at the level asked for (``-v``,
``--log-level``; warnings by default), and pymodbus brought into line.

pymodbus reports every reply lost on a lossy link as an *error*, with a hex dump of the
last frames, while our driver retries it and raises a typed error of its own when a
router is really gone. So its errors and warnings are passed on as ``info`` (``-v``
shows them, hex dumps included), and its per-frame debug lines are produced only at
``debug`` (``-vv``), where they are what was asked for.
"""

from __future__ import annotations

import logging
import sys

LOG_LEVELS = ("debug", "info", "warning", "error")
VERBOSITY = ("warning", "info", "debug")  # by the number of -v
FORMAT = "%(levelname)s %(name)s: %(message)s"
PYMODBUS = "pymodbus"


class _Demote(logging.Filter):
    """pymodbus's errors and warnings, as info records (see the module's docstring)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO:
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def configure_logging(level: str) -> None:
    """Route every logger (ours, pymodbus's) to stderr at ``level``."""
    number = logging.getLevelNamesMapping()[level.upper()]
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "ppr", False)]:
        root.removeHandler(old)  # configured twice in one process (tests): one handler
    handler = logging.StreamHandler(sys.stderr)
    handler.ppr = True  # type: ignore[attr-defined]
    handler.setLevel(number)
    handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(handler)
    root.setLevel(number)
    pymodbus = logging.getLogger(PYMODBUS)
    # its frame dumps cost time even when nobody reads them: below debug, not made at all
    pymodbus.setLevel(logging.DEBUG if number <= logging.DEBUG else logging.WARNING)
    for name in (PYMODBUS, f"{PYMODBUS}.logging"):
        target = logging.getLogger(name)
        if not any(isinstance(f, _Demote) for f in target.filters):
            target.addFilter(_Demote())
