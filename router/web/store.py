"""One SQLite file holding the terminal's state, WAL by default, schema migrated on open.

The app is one asyncio process, so one connection guarded by a lock is enough; WAL lets
``ppr journal``-style readers (and the benchmark) read while the server writes.

The file holds password hashes and the key that signs session cookies: it is created
readable by its owner only (0600), an existing one is narrowed to that, and SQLite gives
its ``-wal`` and ``-shm`` files the database file's mode.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from router.web.errors import StoreError
from router.web.migrations import MIGRATIONS

JournalMode = Literal["wal", "delete"]
LATEST = len(MIGRATIONS)


class Store:
    def __init__(
        self, path: str | Path, *, journal_mode: JournalMode = "wal", upto: int = LATEST
    ) -> None:
        self.path = str(path)
        try:
            _owner_only(self.path)
            self._conn = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, timeout=5.0
            )
            mode = self._conn.execute(f"PRAGMA journal_mode={journal_mode}").fetchone()[0]
            self._conn.execute("PRAGMA foreign_keys=ON")
            # WAL with synchronous=NORMAL stays durable across a process crash
            self._conn.execute("PRAGMA synchronous=NORMAL")
        except (sqlite3.Error, OSError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise StoreError(self.path, f"cannot open the database: {why}") from exc
        self.journal_mode = str(mode).lower()
        self._lock = threading.Lock()
        self.migrate(upto)

    def close(self) -> None:
        self._conn.close()

    @property
    def version(self) -> int:
        with self._lock:
            return _version(self._conn)

    def migrate(self, upto: int = LATEST) -> None:
        with self._lock:
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, applied REAL NOT NULL)"
            )
            have = _version(self._conn)
            if have > LATEST:
                raise StoreError(
                    self.path,
                    f"schema version {have} is newer than this ppr knows ({LATEST}); "
                    "upgrade ppr or use another --db",
                )
            for version in range(have + 1, upto + 1):
                try:
                    self._conn.execute("BEGIN IMMEDIATE")
                    for statement in MIGRATIONS[version - 1].split(";"):
                        if statement.strip():
                            self._conn.execute(statement)
                    self._conn.execute(
                        "INSERT INTO schema_migrations VALUES (?, ?)", (version, time.time())
                    )
                    self._conn.execute("COMMIT")
                except sqlite3.Error as exc:
                    self._conn.execute("ROLLBACK")
                    raise StoreError(self.path, f"migration {version} failed: {exc}") from exc

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Everything inside commits together or not at all."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            cur = self._conn.execute(sql, args)
            cur.row_factory = sqlite3.Row
            return cur.fetchall()

    def setting(self, name: str, default: str) -> str:
        """A stored setting, written with ``default`` the first time it is asked for."""
        with self.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO settings VALUES (?, ?)", (name, default))
            return str(
                conn.execute("SELECT value FROM settings WHERE name = ?", (name,)).fetchone()[0]
            )


def _owner_only(path: str) -> None:
    """Create the file 0600, or narrow an existing one (and its WAL and SHM) to that."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
    for name in (path, f"{path}-wal", f"{path}-shm"):
        try:
            mode = stat.S_IMODE(os.stat(name).st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            os.chmod(name, mode & 0o700)


def _version(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
    return int(row[0] or 0)
