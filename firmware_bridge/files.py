"""Files that survive a crash or a power cut whole (the key store, the run's addresses
file, the journal's directory entry), and secrets only their owner may read."""

from __future__ import annotations

import os
import stat
from pathlib import Path


class TooOpenError(Exception):
    """A secret's file that group or others may read (``mode``: its permission bits)."""

    def __init__(self, path: Path, mode: int) -> None:
        super().__init__(f"{path}: mode {mode:04o}")
        self.path, self.mode = path, mode


def read_owner_only(path: Path, limit: int = -1) -> bytes:
    """A secret file's bytes, refused (``TooOpenError``) when group or others may read
    it, as ssh refuses a key; not through a symbolic link. ``OSError`` if unreadable."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as fh:
        mode = stat.S_IMODE(os.fstat(fh.fileno()).st_mode)
        if mode & 0o077:
            raise TooOpenError(path, mode)
        return fh.read(limit)


def write_file(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write via a temporary file and rename: a reader sees the old file or the new one."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        os.fchmod(fd, mode)  # O_CREAT's mode is only applied to a new file
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def fsync_dir(path: Path) -> None:
    """Make a directory's new or renamed entries durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
