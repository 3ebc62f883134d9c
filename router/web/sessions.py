"""Server-side sessions: the signed cookie carries a random token, the store its hash.

A cookie is only as good as its row: logging out deletes the row, disabling an account
deletes all of its rows, so a copied cookie stops working at once (a signed cookie alone
would stay valid until it expires). Only SHA-256 of the token is stored: a leaked
database does not hand out live sessions.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time

from router.web.store import Store

MAX_AGE_S = 12 * 3600


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(store: Store, user_id: int, now: float | None = None) -> str:
    """A new session of ``user_id``; the token to put in the cookie."""
    now = time.time() if now is None else now
    token = secrets.token_urlsafe(32)
    with store.transaction() as conn:
        conn.execute("DELETE FROM sessions WHERE expires < ?", (now,))  # prune
        conn.execute(
            "INSERT INTO sessions VALUES (?, ?, ?)", (_hash(token), user_id, now + MAX_AGE_S)
        )
    return token


def user_of(store: Store, token: str, now: float | None = None) -> int | None:
    """The user of a live session, or None (unknown, revoked or expired)."""
    now = time.time() if now is None else now
    rows = store.rows(
        "SELECT user_id FROM sessions WHERE token_hash = ? AND expires >= ?", (_hash(token), now)
    )
    return int(rows[0]["user_id"]) if rows else None


def end(store: Store, token: str) -> None:
    with store.transaction() as conn:
        conn.execute("DELETE FROM sessions WHERE token_hash = ?", (_hash(token),))


def end_all(conn: sqlite3.Connection, user_id: int) -> None:
    """Revoke every session of a user (inside the caller's transaction)."""
    conn.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))
