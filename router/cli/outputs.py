"""Files a command will write, checked before its work starts: a missing folder found
after a minute of solving would lose the minute (and end in a traceback)."""

from __future__ import annotations

from pathlib import Path

from router.cli import UsageError


def check_output(option: str, path: Path, *, png: bool = False) -> None:
    """``path`` (given as ``option``) can be written: its folder exists, it is not a
    folder, and it is named *.png if it is to be a picture."""
    if png and path.suffix.lower() != ".png":
        raise UsageError(f"{option} {path}: the picture is a PNG; name it *.png")
    if path.is_dir():
        raise UsageError(f"{option} {path}: is a folder; give a file name")
    if not path.parent.is_dir():
        raise UsageError(f"{option} {path}: no folder {path.parent}; create it first")
