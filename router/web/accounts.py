"""Accounts: argon2id password hashes, approval, roles, and rate limits.

Nobody becomes an admin by registering: the first admin is made on the server's own
command line (``ppr serve --create-admin NAME``), so a terminal exposed on a network
cannot be taken over by whoever registers first. Every registration waits as a pending
participant until an admin approves it.

Failed logins are counted per (account, client address) and per client address, in the
store (a restart does not reset them), in a sliding window: someone guessing passwords
from one address locks that address, and that address's tries at an account, for
``WINDOW_S`` at most; the account itself stays open from every other address, so the
admin cannot be locked out from elsewhere. Old failures are pruned as new ones come.

The functions here are synchronous and some take an argon2 run (about 0.2 s): the app
calls those through ``router.web.kdf``, off the event loop.
"""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import dataclass
from typing import Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from router.web import orders, sessions
from router.web.errors import AccountError, RateLimitedError
from router.web.store import Store

Role = Literal["participant", "operator", "admin"]
ROLES: tuple[Role, ...] = ("participant", "operator", "admin")
NAME_RULE = re.compile(r"^[A-Za-z0-9_.\-]{3,40}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024  # argon2 hashes any length; a megabyte password is an attack
# failures inside the window that lock a (account, address) pair / an address
WINDOW_S = 15 * 60.0
MAX_PER_PAIR = 5
MAX_PER_ADDRESS = 20
# registrations: per client address an hour, and accounts waiting for approval at once
REGISTER_WINDOW_S = 3600.0
MAX_REGISTRATIONS_PER_ADDRESS = 5
MAX_PENDING = 100

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# verified against when the name is unknown, so both cases cost one argon2 run
_DUMMY_HASH = _hasher.hash("not a password of anyone")


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: Role
    status: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "role": self.role, "status": self.status}


def _check_new(name: str, password: str) -> None:
    if not NAME_RULE.match(name):
        raise AccountError("name", "must be 3-40 letters, digits, '_', '.' or '-'")
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise AccountError(
            "password", f"must be at least {MIN_PASSWORD} characters (at most {MAX_PASSWORD})"
        )


def register(
    store: Store, name: str, password: str, address: str, now: float | None = None
) -> User:
    """A pending participant (an admin approves it), unless the address registered too
    often lately or too many accounts already wait."""
    now = time.time() if now is None else now
    _check_new(name, password)
    recent = store.rows(
        "SELECT COUNT(*) AS n FROM registrations WHERE address = ? AND at > ?",
        (address, now - REGISTER_WINDOW_S),
    )[0]["n"]
    if recent >= MAX_REGISTRATIONS_PER_ADDRESS:
        raise RateLimitedError("name", "too many registrations from this address; try in an hour")
    pending = store.rows("SELECT COUNT(*) AS n FROM users WHERE status = 'pending'")[0]["n"]
    if pending >= MAX_PENDING:
        raise RateLimitedError("name", "too many accounts await approval; try again later")
    if store.rows("SELECT 1 FROM users WHERE name = ?", (name,)):
        raise AccountError("name", f"'{name}' is taken; choose another name")
    pw_hash = _hasher.hash(password)  # the slow part, outside the store's lock
    with store.transaction() as conn:
        conn.execute("DELETE FROM registrations WHERE at < ?", (now - REGISTER_WINDOW_S,))
        conn.execute("INSERT INTO registrations VALUES (?, ?)", (address, now))
        return _insert(conn, name, pw_hash, "participant", "pending", now)


def create_admin(store: Store, name: str, password: str) -> User:
    """An active admin, made from the server's command line (never over HTTP)."""
    _check_new(name, password)
    pw_hash = _hasher.hash(password)
    with store.transaction() as conn:
        return _insert(conn, name, pw_hash, "admin", "active", time.time())


def _insert(
    conn: sqlite3.Connection, name: str, pw_hash: str, role: Role, status: str, now: float
) -> User:
    if conn.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
        raise AccountError("name", f"'{name}' is taken; choose another name")
    cur = conn.execute(
        "INSERT INTO users (name, pw_hash, role, status, created) VALUES (?, ?, ?, ?, ?)",
        (name, pw_hash, role, status, now),
    )
    return User(int(cur.lastrowid or 0), name, role, status)


def has_admin(store: Store) -> bool:
    return bool(store.rows("SELECT 1 FROM users WHERE role = 'admin' AND status = 'active'"))


def login(store: Store, name: str, password: str, address: str, now: float | None = None) -> User:
    """The user, if the password is right and the account active; else AccountError."""
    now = time.time() if now is None else now
    keys = (f"pair:{address} {name}", f"addr:{address}")
    _refuse_if_limited(store, keys, now)
    row = store.rows("SELECT id, name, role, status, pw_hash FROM users WHERE name = ?", (name,))
    try:
        _hasher.verify(row[0]["pw_hash"] if row else _DUMMY_HASH, password[:MAX_PASSWORD])
        ok = bool(row)
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok:
        with store.transaction() as conn:
            conn.execute("DELETE FROM login_failures WHERE at <= ?", (now - WINDOW_S,))
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
    for key, limit in zip(keys, (MAX_PER_PAIR, MAX_PER_ADDRESS), strict=True):
        n = store.rows(
            "SELECT COUNT(*) AS n FROM login_failures WHERE key = ? AND at > ?",
            (key, now - WINDOW_S),
        )[0]["n"]
        if n >= limit:
            what = "this account from your address" if key.startswith("pair:") else "your address"
            raise RateLimitedError(
                "name", f"too many failed logins for {what}; try again in 15 minutes"
            )


def get_user(store: Store, user_id: int) -> User | None:
    row = store.rows("SELECT id, name, role, status FROM users WHERE id = ?", (user_id,))
    return _user(row[0]) if row else None


def list_users(store: Store) -> list[User]:
    return [_user(r) for r in store.rows("SELECT id, name, role, status FROM users ORDER BY id")]


@dataclass(frozen=True)
class Change:
    """What an admin's action did: the account as it is now, and the orders it withdrew
    from the book (journaled with the action)."""

    user: User
    cancelled: list[int]


def set_status(store: Store, user_id: int, status: Literal["active", "disabled"]) -> Change:
    """Approve (or re-enable) or disable an account; disabling ends its sessions and
    withdraws its orders from the book (a disabled account trades no more)."""
    with store.transaction() as conn:
        _refuse_last_admin(conn, user_id, status=status)
        if not conn.execute("UPDATE users SET status = ? WHERE id = ?", (status, user_id)).rowcount:
            raise AccountError("user", f"no user {user_id}")
        cancelled = []
        if status == "disabled":
            sessions.end_all(conn, user_id)
            cancelled = orders.withdraw(conn, user_id=user_id)
    return Change(existing(store, user_id), cancelled)


def set_role(store: Store, user_id: int, role: str) -> Change:
    """Give a role; an operator never trades, so becoming one withdraws its orders."""
    if role not in ROLES:
        raise AccountError("role", f"must be one of {', '.join(ROLES)} (got {role!r})")
    with store.transaction() as conn:
        _refuse_last_admin(conn, user_id, role=role)
        if not conn.execute("UPDATE users SET role = ? WHERE id = ?", (role, user_id)).rowcount:
            raise AccountError("user", f"no user {user_id}")
        cancelled = orders.withdraw(conn, user_id=user_id) if role == "operator" else []
    return Change(existing(store, user_id), cancelled)


def _refuse_last_admin(
    conn: sqlite3.Connection, user_id: int, *, status: str = "active", role: str = "admin"
) -> None:
    """Nobody, the last admin included, may leave the terminal without an active admin."""
    if status == "active" and role == "admin":
        return
    admins = [
        int(r[0])
        for r in conn.execute("SELECT id FROM users WHERE role = 'admin' AND status = 'active'")
    ]
    if admins == [user_id]:
        raise AccountError("user", "this is the last active admin; make another admin first")


def assign_terminal(store: Store, user_id: int, terminal: str, known: set[str]) -> Change:
    """Give a scenario terminal to a user (each terminal has at most one owner). The
    orders the terminal's previous owner has in the book leave it: the new owner would
    receive (or send) their energy while they paid (or were paid)."""
    _check_terminal(terminal, known)
    user = existing(store, user_id)
    with store.transaction() as conn:
        owner = conn.execute(
            "SELECT user_id FROM user_terminals WHERE terminal = ?", (terminal,)
        ).fetchone()
        if owner is not None and owner[0] == user_id:
            return Change(user, [])
        cancelled = _release(conn, terminal)
        conn.execute("INSERT INTO user_terminals VALUES (?, ?)", (user_id, terminal))
    return Change(user, cancelled)


def unassign_terminal(store: Store, user_id: int, terminal: str, known: set[str]) -> Change:
    """Take a terminal from its owner; its orders leave the book."""
    _check_terminal(terminal, known)
    user = existing(store, user_id)
    with store.transaction() as conn:
        owned = conn.execute(
            "SELECT 1 FROM user_terminals WHERE terminal = ? AND user_id = ?", (terminal, user_id)
        ).fetchone()
        if owned is None:
            raise AccountError("terminal", f"'{terminal}' is not {user.name}'s")
        return Change(user, _release(conn, terminal))


def _check_terminal(terminal: str, known: set[str]) -> None:
    if terminal not in known:
        raise AccountError(
            "terminal", f"unknown terminal '{terminal}' (the bench has {', '.join(sorted(known))})"
        )


def _release(conn: sqlite3.Connection, terminal: str) -> list[int]:
    """Free a terminal of its owner and its orders (the ids withdrawn); refused while a
    clearing's trades on it have still to run (they are its owner's, and settle to it)."""
    pending = conn.execute(
        "SELECT c.id, c.frame FROM clearings c JOIN trades t ON t.clearing_id = c.id "
        "JOIN orders o ON o.id IN (t.seller_order, t.buyer_order) "
        "WHERE c.status = 'pending' AND o.terminal = ? ORDER BY c.id LIMIT 1",
        (terminal,),
    ).fetchone()
    if pending is not None:
        raise AccountError(
            "terminal",
            f"'{terminal}' has trades of the clearing for frame {pending[1]} still to run on "
            "the bench; try again once they have (a frame or two)",
        )
    conn.execute("DELETE FROM user_terminals WHERE terminal = ?", (terminal,))
    return orders.withdraw(conn, terminal=terminal)


def terminals_of(store: Store, user_id: int) -> list[str]:
    rows = store.rows(
        "SELECT terminal FROM user_terminals WHERE user_id = ? ORDER BY terminal", (user_id,)
    )
    return [r["terminal"] for r in rows]


def existing(store: Store, user_id: int) -> User:
    """The user, or AccountError naming the missing id."""
    user = get_user(store, user_id)
    if user is None:
        raise AccountError("user", f"no user {user_id}")
    return user


def _user(r: sqlite3.Row) -> User:
    role: Role = r["role"]
    return User(int(r["id"]), str(r["name"]), role, str(r["status"]))
