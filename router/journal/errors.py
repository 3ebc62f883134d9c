"""Errors of the journal.

Raised, never returned, when a journal cannot be opened or appended to. A journal that
fails verification is a *value* (``verify_journal`` returns a ``VerifyReport`` naming the
first bad record), because finding one is the point of verifying; the journal refuses to
*append* after a bad tail, and that refusal is raised (``JournalCorruptError``).
"""

from __future__ import annotations

from pathlib import Path


class JournalError(Exception):
    """Root of every error of ``router.journal``."""

    def __init__(self, path: Path | str | None, message: str) -> None:
        self.path = None if path is None else Path(path)
        self.message = message
        super().__init__(f"{path}: {message}" if path is not None else message)


class JournalKeyError(JournalError):
    """The journal is signed by another key than the one the controller holds."""


class JournalLockedError(JournalError):
    """Another process has the journal open for writing."""


class JournalCorruptError(JournalError):
    """The journal's stored records do not verify (``seq``: the first bad one, or None
    when the file is not readable as a journal at all)."""

    def __init__(self, path: Path | str | None, message: str, *, seq: int | None) -> None:
        self.seq = seq
        super().__init__(path, message)


class RecordError(JournalError):
    """A record cannot be appended as given: unknown kind, frame number out of range, a
    payload that is not JSON (NaN, infinities, non-string keys)."""
