"""Accounts: argon2id password hashes, approval, roles, and a login rate limit.

The first account registered on an empty store becomes an active admin (someone has to
approve the others); every later one waits as a pending participant. Failed logins are
counted per account and per client address in the store, so a restart does not reset them.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from router.web.errors import AccountError, RateLimitedError
from router.web.store import Store

Role = Literal["participant", "operator", "admin"]
ROLES: tuple[Role, ...] = ("participant", "operator", "admin")
NAME_RULE = re.compile(r"^[A-Za-z0-9_.\-]{3,40}$")
MIN_PASSWORD = 10
# failures inside the window that lock an account / an address until they age out
WINDOW_S = 15 * 60.0
MAX_PER_ACCOUNT = 5
MAX_PER_ADDRESS = 20

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# verified against when the name is unknown, so both cases cost one argon2 run
_DUMMY_HASH = _hasher.hash("not a password of anyone")


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: Role
    status: str


def register(store: Store, name: str, password: str) -> User:
    if not NAME_RULE.match(name):
        raise AccountError("name", "must be 3-40 letters, digits, '_', '.' or '-'")
    if len(password) < MIN_PASSWORD:
        raise AccountError("password", f"must be at least {MIN_PASSWORD} characters")
    pw_hash = _hasher.hash(password)
    with store.transaction() as conn:
        if conn.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
            raise AccountError("name", f"'{name}' is taken; choose another name")
        first = conn.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 0
        role, status = ("admin", "active") if first else ("participant", "pending")
        cur = conn.execute(
            "INSERT INTO users (name, pw_hash, role, status, created) VALUES (?, ?, ?, ?, ?)",
            (name, pw_hash, role, status, time.time()),
        )
        return User(int(cur.lastrowid or 0), name, role, status)


def login(store: Store, name: str, password: str, address: str, now: float | None = None) -> User:
    """The user, if the password is right and the account active; else AccountError."""
    now = time.time() if now is None else now
    keys = (f"user:{name}", f"addr:{address}")
    _refuse_if_limited(store, keys, now)
    row = store.rows("SELECT id, name, role, status, pw_hash FROM users WHERE name = ?", (name,))
    try:
        _hasher.verify(row[0]["pw_hash"] if row else _DUMMY_HASH, password)
        ok = bool(row)
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok:
        with store.transaction() as conn:
            conn.executemany("INSERT INTO login_failures VALUES (?, ?)", [(k, now) for k in keys])
        raise AccountError("password", "wrong name or password")
    user = _user(row[0])
    if user.status == "pending":
        raise AccountError("name", "this account awaits approval by an admin")
    if user.status == "disabled":
        raise AccountError("name", "this account is disabled; ask an admin")
    with store.transaction() as conn:
        conn.execute("DELETE FROM login_failures WHERE key = ?", (keys[0],))
    return user


def _refuse_if_limited(store: Store, keys: tuple[str, str], now: float) -> None:
    for key, limit in zip(keys, (MAX_PER_ACCOUNT, MAX_PER_ADDRESS), strict=True):
        n = store.rows(
            "SELECT COUNT(*) AS n FROM login_failures WHERE key = ? AND at > ?",
            (key, now - WINDOW_S),
        )[0]["n"]
        if n >= limit:
            what = "account" if key.startswith("user:") else "address"
            raise RateLimitedError(
                "name", f"too many failed logins for this {what}; try again in 15 minutes"
            )


def get_user(store: Store, user_id: int) -> User | None:
    row = store.rows("SELECT id, name, role, status FROM users WHERE id = ?", (user_id,))
    return _user(row[0]) if row else None


def list_users(store: Store) -> list[User]:
    return [_user(r) for r in store.rows("SELECT id, name, role, status FROM users ORDER BY id")]


def set_status(store: Store, user_id: int, status: Literal["active", "disabled"]) -> User:
    with store.transaction() as conn:
        if not conn.execute("UPDATE users SET status = ? WHERE id = ?", (status, user_id)).rowcount:
            raise AccountError("user", f"no user {user_id}")
    user = get_user(store, user_id)
    assert user is not None
    return user


def set_role(store: Store, user_id: int, role: str) -> User:
    if role not in ROLES:
        raise AccountError("role", f"must be one of {', '.join(ROLES)} (got {role!r})")
    with store.transaction() as conn:
        if not conn.execute("UPDATE users SET role = ? WHERE id = ?", (role, user_id)).rowcount:
            raise AccountError("user", f"no user {user_id}")
    user = get_user(store, user_id)
    assert user is not None
    return user


def assign_terminal(store: Store, user_id: int, terminal: str, known: set[str]) -> None:
    """Give a scenario terminal to a user (each terminal has at most one owner)."""
    if terminal not in known:
        raise AccountError(
            "terminal", f"unknown terminal '{terminal}' (the bench has {', '.join(sorted(known))})"
        )
    if get_user(store, user_id) is None:
        raise AccountError("user", f"no user {user_id}")
    with store.transaction() as conn:
        conn.execute("DELETE FROM user_terminals WHERE terminal = ?", (terminal,))
        conn.execute("INSERT INTO user_terminals VALUES (?, ?)", (user_id, terminal))


def terminals_of(store: Store, user_id: int) -> list[str]:
    rows = store.rows(
        "SELECT terminal FROM user_terminals WHERE user_id = ? ORDER BY terminal", (user_id,)
    )
    return [r["terminal"] for r in rows]


def _user(row: object) -> User:
    r = row  # sqlite3.Row
    return User(int(r["id"]), str(r["name"]), r["role"], str(r["status"]))  # type: ignore[index]
