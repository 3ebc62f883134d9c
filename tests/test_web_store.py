"""The terminal's SQLite store: WAL by default, owner-only files, migrations from v1,
restart keeps data."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from router.web.errors import StoreError
from router.web.store import LATEST, Store


def test_new_file_is_wal_and_at_the_latest_version(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.db")
    assert store.journal_mode == "wal"
    assert store.version == LATEST == 5
    store.close()
    # the mode is a property of the file: a plain sqlite3 connection sees it too
    conn = sqlite3.connect(tmp_path / "t.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    versions = [v for (v,) in conn.execute("SELECT version FROM schema_migrations")]
    assert versions == [1, 2, 3, 4, 5]
    conn.close()


def test_upgrade_from_v1_keeps_rows_and_adds_tables(tmp_path: Path) -> None:
    old = Store(tmp_path / "t.db", upto=1)
    assert old.version == 1
    with old.transaction() as conn:
        conn.execute(
            "INSERT INTO users (name, pw_hash, role, status, created) "
            "VALUES ('ada', 'h', 'admin', 'active', 0)"
        )
        conn.execute(
            "INSERT INTO orders (user_id, side, terminal, packets, price, "
            "valid_until_frame, created) VALUES (1, 'offer', 'PV1', 10, 2.5, 9, 0)"
        )
    with pytest.raises(sqlite3.OperationalError):
        old.rows("SELECT * FROM certificates")
    old.close()

    new = Store(tmp_path / "t.db")
    assert new.version == LATEST
    assert [tuple(r) for r in new.rows("SELECT name, role FROM users")] == [("ada", "admin")]
    assert new.rows("SELECT packets, price FROM orders")[0]["packets"] == 10
    assert new.rows("SELECT COUNT(*) AS n FROM certificates")[0]["n"] == 0
    new.close()


def test_rollback_journal_mode_for_the_benchmark(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.db", journal_mode="delete")
    assert store.journal_mode == "delete"
    store.close()


def test_a_failed_transaction_leaves_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.db")
    with pytest.raises(sqlite3.IntegrityError), store.transaction() as conn:
        conn.execute(
            "INSERT INTO users (name, pw_hash, role, status, created) "
            "VALUES ('a', 'h', 'participant', 'active', 0)"
        )
        conn.execute(  # 'root' is not a role: the CHECK refuses, the first row goes too
            "INSERT INTO users (name, pw_hash, role, status, created) "
            "VALUES ('b', 'h', 'root', 'active', 0)"
        )
    assert store.rows("SELECT COUNT(*) AS n FROM users")[0]["n"] == 0
    store.close()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    Store(tmp_path / "t.db").close()
    conn = sqlite3.connect(tmp_path / "t.db")
    conn.execute("INSERT INTO schema_migrations VALUES (99, 0)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="schema version 99 is newer"):
        Store(tmp_path / "t.db")


def test_settings_are_written_once(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.db")
    assert store.setting("k", "first") == "first"
    assert store.setting("k", "second") == "first"
    store.close()
    assert Store(tmp_path / "t.db").setting("k", "third") == "first"


def test_upgrade_to_v4_keeps_what_is_left_of_each_order(tmp_path: Path) -> None:
    old = Store(tmp_path / "t.db", upto=3)
    with old.transaction() as conn:
        conn.execute(
            "INSERT INTO users (name, pw_hash, role, status, created) "
            "VALUES ('ada', 'h', 'participant', 'active', 0)"
        )
        for oid, status in ((1, "open"), (2, "partial"), (3, "filled"), (4, "cancelled")):
            conn.execute(
                "INSERT INTO orders (id, user_id, side, terminal, packets, price, "
                "valid_until_frame, status, created) VALUES (?, 1, 'offer', 'PV1', 10, 1, 9, ?, 0)",
                (oid, status),
            )
        # order 2 was allocated 3 + 4 packets in two settled frames before the upgrade
        conn.execute("INSERT INTO deliveries VALUES (2, 5, 3, 3, 7.0, 3, 0)")
        conn.execute("INSERT INTO deliveries VALUES (2, 6, 4, 4, 9.4, 4, 0)")
    old.close()
    new = Store(tmp_path / "t.db")
    left = [r["remaining"] for r in new.rows("SELECT remaining FROM orders ORDER BY id")]
    assert left == [10, 3, 0, 0]
    new.close()


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_database_and_its_wal_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    # it holds password hashes and the key that signs session cookies
    old_umask = os.umask(0o022)  # a usual umask would make them 0644
    try:
        store = Store(tmp_path / "web.db")
        store.setting("k", "v")  # a write: the WAL and its index exist now
        for name in ("web.db", "web.db-wal", "web.db-shm"):
            assert (tmp_path / name).exists() and _mode(tmp_path / name) == 0o600, name
        store.close()
        # a file made before (by an older ppr, by hand) is narrowed when opened
        loose = tmp_path / "loose.db"
        sqlite3.connect(loose).close()
        os.chmod(loose, 0o644)
        Store(loose).close()
        assert _mode(loose) == 0o600
    finally:
        os.umask(old_umask)
