"""The journal writer: one SQLite table of hash-chained, signed records.

Durability: WAL mode with ``synchronous=FULL``, one transaction per ``append`` (or per
``append_many`` batch), so every record is on disk (the WAL fsynced) before the call
returns, and a crash leaves whole records or none: SQLite drops a torn WAL frame on
recovery (its frames carry checksums). The directory is fsynced after the file and its
WAL are created, so the files themselves survive a power cut too.

One writer at a time: ``open`` takes an exclusive ``flock`` on the database file and
holds it until ``close`` (two controllers on one journal would reuse frame numbers).
Readers (``ppr journal verify``) may run alongside.

Frame numbers: ``next_frame()`` is one above the highest frame any record carries. The
frame loop journals a frame's ``plan`` record *before* it seals that frame, so once a
number is used on the wire it is in the journal, and a restart never uses it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from firmware_bridge.files import fsync_dir
from router.journal.errors import (
    JournalCorruptError,
    JournalError,
    JournalKeyError,
    JournalLockedError,
)
from router.journal.records import (
    FORMAT,
    GENESIS_PREV,
    Kind,
    Payload,
    Record,
    canonical_payload,
    check_fields,
    digest,
    genesis_key,
    problem,
    row_to_record,
)
from router.journal.verify import APPLICATION_ID, COLUMNS, read_records, verify_journal

FIRST_FRAME = 1
DEFAULT_JOURNAL = Path("ppr-out/journal.sqlite")

SCHEMA = """
CREATE TABLE records (
    seq       INTEGER PRIMARY KEY,   -- 1, 2, 3 ... without gaps
    time_ns   INTEGER NOT NULL,      -- wall clock, ns since the Unix epoch
    kind      TEXT    NOT NULL,
    frame     INTEGER,               -- NULL for records of no frame
    payload   TEXT    NOT NULL,      -- canonical JSON, exactly as hashed
    prev_hash BLOB    NOT NULL,
    hash      BLOB    NOT NULL,
    signature BLOB    NOT NULL
);
CREATE INDEX records_frame ON records(frame) WHERE frame IS NOT NULL;
"""


@dataclass(frozen=True, slots=True)
class Entry:
    """One record to append: what ``append_many`` takes."""

    kind: Kind
    payload: Payload
    frame: int | None = None


class Journal:
    """An open journal, appending under the controller's signing key.

    Thread-safe: appends are serialised by a lock; ``append_async`` runs the (fsyncing)
    append in a worker thread so the event loop keeps turning.
    """

    def __init__(
        self,
        path: Path,
        conn: sqlite3.Connection,
        lock_fd: int,
        key: Ed25519PrivateKey,
        tail: Record,
        last_frame: int | None,
        genesis_hash: bytes,
    ) -> None:
        self.path = path
        self.genesis_hash = genesis_hash  # names this journal (its witness, for one)
        self._conn: sqlite3.Connection | None = conn
        self._lock_fd = lock_fd
        self._key = key
        self._tail = tail
        self._last_frame = last_frame
        self._lock = threading.Lock()

    # --- opening ----------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: Path | str,
        signing_key: Ed25519PrivateKey,
        *,
        genesis: Mapping[str, Any] | None = None,
        check: Literal["tail", "full"] = "tail",
    ) -> Journal:
        """Open (or create, with ``genesis`` fields in its first record) a journal.

        ``check="tail"`` verifies the genesis record and the last one (against the one
        before it); ``"full"`` verifies every record (about 10,000 a second). Either refuses a
        journal that does not verify with ``JournalCorruptError`` naming the record."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            lock_fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise JournalError(path, f"cannot open the journal: {exc.strerror}") from exc
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            raise JournalLockedError(
                path, "another process has this journal open for writing"
            ) from None
        conn = None
        try:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            journal = cls._attach(path, conn, lock_fd, signing_key, genesis, check)
        except BaseException as exc:
            if conn is not None:
                conn.close()
            os.close(lock_fd)
            if isinstance(exc, sqlite3.Error):
                raise JournalError(path, f"not a usable journal ({exc})") from exc
            raise
        return journal

    @classmethod
    def _attach(
        cls,
        path: Path,
        conn: sqlite3.Connection,
        lock_fd: int,
        key: Ed25519PrivateKey,
        genesis: Mapping[str, Any] | None,
        check: Literal["tail", "full"],
    ) -> Journal:
        if conn.execute("PRAGMA journal_mode=WAL").fetchone()[0] != "wal":
            raise JournalError(path, "SQLite refused WAL mode on this file system")
        conn.execute("PRAGMA synchronous=FULL")
        public = key.public_key().public_bytes_raw()
        has_table = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='records'"
        ).fetchone()
        if not has_table:
            if conn.execute("PRAGMA application_id").fetchone()[0] not in (0, APPLICATION_ID):
                raise JournalError(path, "not a ppr journal (another SQLite database)")
            tail = cls._create(path, conn, key, genesis or {})
            return cls(path, conn, lock_fd, key, tail, None, tail.hash)
        if conn.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
            raise JournalError(path, "not a ppr journal (another SQLite database)")
        first = _fetch(conn, "ORDER BY seq LIMIT 1")
        if isinstance(first, Record):
            try:
                owner = genesis_key(first)
            except ValueError:
                owner = None
            if owner is not None and owner != public:
                raise JournalKeyError(
                    path,
                    f"the journal is signed by key {owner.hex()}, not by this controller's "
                    f"key {public.hex()}; start a new journal for a new key",
                )
        genesis_ok = (
            isinstance(first, Record)
            and first.seq == 1
            and problem(first, GENESIS_PREV, Ed25519PublicKey.from_public_bytes(public)) is None
        )
        if check == "full" or not genesis_ok:  # the key's record and the tail, or everything
            _raise_if_bad(path, public)
        tail = _checked_tail(path, conn, public)
        last = conn.execute("SELECT MAX(frame) FROM records").fetchone()[0]
        assert isinstance(first, Record)  # the genesis verified above
        return cls(path, conn, lock_fd, key, tail, last, first.hash)

    @staticmethod
    def _create(
        path: Path, conn: sqlite3.Connection, key: Ed25519PrivateKey, fields: Mapping[str, Any]
    ) -> Record:
        public = key.public_key().public_bytes_raw()
        payload = {**fields, "format": FORMAT, "signing_key": public.hex()}
        record = _sealed(key, 1, "genesis", None, canonical_payload(payload), GENESIS_PREV)
        # the table, the header mark and the genesis record land in one transaction: a
        # crash while creating leaves an empty database, never a journal without genesis
        schema = [f"PRAGMA application_id={APPLICATION_ID}"] + [
            s for s in SCHEMA.split(";") if s.strip()
        ]
        _insert(conn, [record], before=schema)
        fsync_dir(path.absolute().parent)  # the new file and its WAL survive a power cut
        return record

    # --- appending --------------------------------------------------------------------

    def append(self, kind: Kind, payload: Payload, *, frame: int | None = None) -> Record:
        """Append one record; it is durable when this returns."""
        return self.append_many([Entry(kind, payload, frame)])[0]

    def append_many(self, entries: Iterable[Entry]) -> list[Record]:
        """Append several records in one transaction (one fsync): all or none."""
        staged = []
        for e in entries:
            check_fields(e.kind, e.frame)
            staged.append((e.kind, canonical_payload(e.payload), e.frame))
        if not staged:
            return []
        with self._lock:
            conn = self._connection()
            records, prev = [], self._tail
            for kind, text, frame in staged:
                prev = _sealed(self._key, prev.seq + 1, kind, frame, text, prev.hash)
                records.append(prev)
            try:
                _insert(conn, records)
            except sqlite3.Error as exc:
                raise JournalError(self.path, f"cannot append: {exc}") from exc
            self._tail = records[-1]
            frames = [r.frame for r in records if r.frame is not None]
            if frames:
                self._last_frame = max([*frames, self._last_frame or 0])
            return records

    async def append_async(
        self, kind: Kind, payload: Payload, *, frame: int | None = None
    ) -> Record:
        return await asyncio.to_thread(self.append, kind, payload, frame=frame)

    async def append_many_async(self, entries: Sequence[Entry]) -> list[Record]:
        return await asyncio.to_thread(self.append_many, entries)

    # --- reading ----------------------------------------------------------------------

    @property
    def public_key(self) -> bytes:
        return self._key.public_key().public_bytes_raw()

    def tail(self) -> Record:
        return self._tail

    def sign(self, message: bytes) -> bytes:
        """Sign ``message`` with the journal's key (its witness, for one)."""
        return self._key.sign(message)

    def last_frame(self) -> int | None:
        """The highest frame number any record carries (None: no frame yet)."""
        return self._last_frame

    def next_frame(self) -> int:
        """The number the next frame must use: above every frame in the journal."""
        return FIRST_FRAME if self._last_frame is None else self._last_frame + 1

    def records(self, after_seq: int = 0) -> Iterator[Record]:
        """Stored records after ``after_seq``, in order (a separate read connection)."""
        return read_records(self.path, after_seq)

    # --- closing ----------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._conn is None:
                return
            self._conn.close()
            self._conn = None
            os.close(self._lock_fd)  # after SQLite closed: closing an fd drops POSIX locks

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise JournalError(self.path, "the journal is closed")
        return self._conn


def _sealed(
    key: Ed25519PrivateKey, seq: int, kind: str, frame: int | None, text: str, prev: bytes
) -> Record:
    now = time.time_ns()
    h = digest(seq, now, kind, frame, text, prev)
    return Record(seq, now, kind, frame, text, prev, h, key.sign(h))


def _insert(conn: sqlite3.Connection, records: list[Record], before: Sequence[str] = ()) -> None:
    rows = [
        (r.seq, r.time_ns, r.kind, r.frame, r.payload_text, r.prev_hash, r.hash, r.signature)
        for r in records
    ]
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in before:
            conn.execute(statement)
        conn.executemany(f"INSERT INTO records ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?)", rows)
        conn.execute("COMMIT")  # WAL + synchronous=FULL: fsynced before COMMIT returns
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise


def _fetch(conn: sqlite3.Connection, order: str) -> Record | str | None:
    row = conn.execute(f"SELECT {COLUMNS} FROM records {order}").fetchone()
    return None if row is None else row_to_record(row)


def _checked_tail(path: Path, conn: sqlite3.Connection, public: bytes) -> Record:
    """The last record, after checking it and its link (cheap: two rows and a count)."""
    rows = conn.execute(f"SELECT {COLUMNS} FROM records ORDER BY seq DESC LIMIT 2").fetchall()
    count = conn.execute("SELECT COUNT(*) FROM records").fetchone()[0]
    last = row_to_record(rows[0]) if rows else "no genesis record"
    before = row_to_record(rows[1]) if len(rows) > 1 else None
    ok = (
        isinstance(last, Record)
        and last.seq == count
        and (before is None or isinstance(before, Record))
        and problem(
            last,
            before.hash if isinstance(before, Record) else GENESIS_PREV,
            Ed25519PublicKey.from_public_bytes(public),
        )
        is None
    )
    if not ok:
        _raise_if_bad(path, public)  # names the first bad record
        raise JournalCorruptError(path, "the last record does not verify", seq=count)
    assert isinstance(last, Record)
    return last


def _raise_if_bad(path: Path, public: bytes) -> None:
    report = verify_journal(path, public)
    if report.bad is not None:
        raise JournalCorruptError(
            path,
            f"{report.bad.describe()}; refusing to append to a journal that does not "
            f"verify (see ppr journal verify {path}; start a new one with another --out)",
            seq=report.bad.seq,
        )
