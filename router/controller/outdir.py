"""One run per output folder: an exclusive ``flock`` on the folder itself, taken before
anything is written in it (a second run would otherwise overwrite ``addresses.json``
and ``ppr estop --run OUT`` would target the wrong routers)."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from router.journal.errors import JournalLockedError


@contextlib.contextmanager
def lock_out_dir(path: Path) -> Iterator[None]:
    """Hold the folder's lock (no lock file: the folder's own descriptor carries it)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise JournalLockedError(
                path, "another ppr run is writing here; give this run another --out"
            ) from None
        yield
    finally:
        os.close(fd)  # drops the lock
