"""The terminal's SQLite store: WAL by default, migrations from v1, restart keeps data."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from router.web.errors import StoreError
from router.web.store import LATEST, Store


def test_new_file_is_wal_and_at_the_latest_version(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.db")
    assert store.journal_mode == "wal"
    assert store.version == LATEST == 3
    store.close()
    # the mode is a property of the file: a plain sqlite3 connection sees it too
    conn = sqlite3.connect(tmp_path / "t.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    versions = [v for (v,) in conn.execute("SELECT version FROM schema_migrations")]
    assert versions == [1, 2, 3]
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
    assert new.version == 3
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
