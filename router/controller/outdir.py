"""One run per output folder: an exclusive ``flock`` on the folder itself, taken before
anything touches the bench or is written in the folder (a second run would otherwise
reach the first run's routers, overwrite ``addresses.json``, and ``ppr estop --run OUT``
would target the wrong routers)."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from router.journal.errors import JournalError, JournalLockedError


@contextlib.contextmanager
def lock_out_dir(path: Path) -> Iterator[None]:
    """Hold the folder's lock (no lock file: the folder's own descriptor carries it). The
    folder is made if missing, and removed again if the run wrote nothing in it."""
    made = not path.exists()
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise JournalError(path, f"cannot use it as the output folder: {exc.strerror}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise JournalLockedError(
                path, "another ppr run is writing here; give this run another --out"
            ) from None
        yield
    finally:
        if made:
            with contextlib.suppress(OSError):  # not empty: the run wrote something
                path.rmdir()
        os.close(fd)  # drops the lock
