"""Verify a journal file: the chain, the signatures, and the key it is signed with.

A bad journal is a value (``VerifyReport.bad`` names the first bad record and why), not
an exception: finding one is what verifying is for. What the chain alone cannot see:
records cut off the *end* of the file (the chain up to the new last record is intact).
That is what the journal's witness is for (``router.journal.witness``: its signed head,
kept outside the file with the key store's frame reservation). Frame numbers do not
depend on the tail either: a run reserves each one in the key store before sealing it,
and refuses a reservation behind the frames the routers or the journal report.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from router.journal.records import GENESIS_PREV, Record, genesis_key, problem, row_to_record

APPLICATION_ID = 0x50505231  # "PPR1" in the SQLite header: this file is a ppr journal
COLUMNS = "seq, time_ns, kind, frame, payload, prev_hash, hash, signature"


@dataclass(frozen=True, slots=True)
class BadRecord:
    seq: int | None  # None: the file as a whole is not a readable journal
    reason: str
    kind: str | None = None
    frame: int | None = None

    def describe(self) -> str:
        if self.seq is None:
            return self.reason
        detail = ", ".join(
            x for x in (self.kind, None if self.frame is None else f"frame {self.frame}") if x
        )
        return f"record {self.seq}{f' ({detail})' if detail else ''}: {self.reason}"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    path: Path
    records: int  # records that verified, in order from the first
    public_key: bytes | None  # the key the genesis record names
    first_frame: int | None
    last_frame: int | None
    bad: BadRecord | None
    genesis_hash: bytes | None = None  # names the journal (its witness is kept by it)

    @property
    def ok(self) -> bool:
        return self.bad is None

    def one_line(self) -> str:
        if self.bad is not None:
            return f"{self.path}: {self.bad.describe()}"
        frames = (
            "no frames"
            if self.last_frame is None
            else f"frames {self.first_frame}-{self.last_frame}"
        )
        key = self.public_key.hex() if self.public_key else "?"
        return f"{self.path}: ok, {self.records} records, {frames}, signed by {key}"


def connect_read_only(path: Path) -> sqlite3.Connection:
    """A reader that never writes the file (``mode=ro``), so verifying cannot repair or
    alter what it checks."""
    return sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)


def stored_rows(
    conn: sqlite3.Connection, after_seq: int | None = None
) -> Iterator[tuple[object, ...]]:
    """Rows in ``seq`` order; all of them (a tampered file may hold seq 0 or below)."""
    where = "" if after_seq is None else f"WHERE seq > {int(after_seq)}"
    yield from conn.execute(f"SELECT {COLUMNS} FROM records {where} ORDER BY seq")


def journal_last_frame(path: Path) -> int | None:
    """The highest frame a journal file's records carry (None: no file, no frame, or not
    readable; opening it for writing then says what is wrong). Not verified."""
    if not path.is_file():
        return None
    try:
        conn = connect_read_only(path)
        try:
            value = conn.execute("SELECT MAX(frame) FROM records").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return value if isinstance(value, int) else None


def read_records(path: Path, after_seq: int = 0) -> Iterator[Record]:
    """Stored records in order, decoded but not verified."""
    conn = connect_read_only(path)
    try:
        for row in stored_rows(conn, after_seq):
            rec = row_to_record(row)
            if isinstance(rec, Record):
                yield rec
    finally:
        conn.close()


def verify_journal(path: Path, trusted_key: bytes | None = None) -> VerifyReport:
    """Check every record from the first: sequence, chain, hash, signature. With
    ``trusted_key``, the genesis record must name that key (otherwise whoever rewrote the
    whole journal under a key of their own would pass)."""
    state = _Walk(path, trusted_key)
    try:
        conn = connect_read_only(path)
    except sqlite3.Error as exc:
        return state.report(BadRecord(None, f"not a readable SQLite file ({exc})"))
    try:
        return state.run(conn)
    finally:
        conn.close()


class _Walk:
    def __init__(self, path: Path, trusted_key: bytes | None) -> None:
        self.path, self.trusted = path, trusted_key
        self.count = 0
        self.key: bytes | None = None
        self.first_frame: int | None = None
        self.last_frame: int | None = None
        self.genesis: bytes | None = None

    def report(self, bad: BadRecord | None) -> VerifyReport:
        return VerifyReport(
            self.path, self.count, self.key, self.first_frame, self.last_frame, bad, self.genesis
        )

    def run(self, conn: sqlite3.Connection) -> VerifyReport:
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            if app_id != APPLICATION_ID:
                return self.report(BadRecord(None, "not a ppr journal (no journal header)"))
            return self.report(self._walk(conn))
        except sqlite3.Error as exc:
            where = None if self.count == 0 else self.count + 1
            return self.report(BadRecord(where, f"unreadable ({exc})"))

    def _walk(self, conn: sqlite3.Connection) -> BadRecord | None:
        prev_hash, verifier = GENESIS_PREV, None
        for row in stored_rows(conn):
            expected = self.count + 1
            rec = row_to_record(row)
            if isinstance(rec, str):
                seq = row[0] if isinstance(row[0], int) else expected
                return BadRecord(seq, rec)
            if rec.seq != expected:
                gap = f"missing (the next stored record is {rec.seq})"
                return BadRecord(expected, gap) if rec.seq > expected else _bad(rec, "out of order")
            if verifier is None:
                try:
                    self.key = genesis_key(rec)
                except ValueError as exc:
                    return _bad(rec, f"not a genesis record ({exc})")
                if self.trusted is not None and self.key != self.trusted:
                    return _bad(
                        rec,
                        f"the journal is signed by key {self.key.hex()}, "
                        f"not the trusted key {self.trusted.hex()}",
                    )
                verifier = Ed25519PublicKey.from_public_bytes(self.key)
            why = problem(rec, prev_hash, verifier)
            if why is not None:
                return _bad(rec, why)
            if self.genesis is None:
                self.genesis = rec.hash
            prev_hash = rec.hash
            self.count += 1
            if rec.frame is not None:
                low, high = self.first_frame, self.last_frame
                self.first_frame = rec.frame if low is None else min(low, rec.frame)
                self.last_frame = rec.frame if high is None else max(high, rec.frame)
        return BadRecord(None, "empty: no genesis record") if self.count == 0 else None


def _bad(rec: Record, reason: str) -> BadRecord:
    return BadRecord(rec.seq, reason, rec.kind, rec.frame)
