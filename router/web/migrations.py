"""The database schema as an ordered list of migrations.

Version ``n`` is ``MIGRATIONS[n - 1]``; a file at version ``k`` is brought to the newest
by applying ``MIGRATIONS[k:]`` in order, each in its own transaction, and recording it in
``schema_migrations``. Never edit an applied migration: add the next one.
"""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # v1: accounts, terminal assignments and orders
    """
    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        pw_hash TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('participant', 'operator', 'admin')),
        status TEXT NOT NULL CHECK (status IN ('pending', 'active', 'disabled')),
        created REAL NOT NULL
    );
    CREATE TABLE user_terminals (
        user_id INTEGER NOT NULL REFERENCES users(id),
        terminal TEXT NOT NULL UNIQUE,
        PRIMARY KEY (user_id, terminal)
    );
    CREATE TABLE orders (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id),
        side TEXT NOT NULL CHECK (side IN ('offer', 'bid')),
        terminal TEXT NOT NULL,
        packets INTEGER NOT NULL,
        price REAL NOT NULL,
        valid_until_frame INTEGER NOT NULL,
        green INTEGER NOT NULL DEFAULT 0,
        green_premium REAL NOT NULL DEFAULT 0,
        green_only INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL DEFAULT 'open',
        created REAL NOT NULL
    );
    CREATE INDEX orders_open ON orders (status, side);
    """,
    # v2: failed logins (for the rate limit, kept across restarts), settings (the session
    # signing key), green certificates and the clearings shown on the page
    """
    CREATE TABLE login_failures (key TEXT NOT NULL, at REAL NOT NULL);
    CREATE INDEX login_failures_key ON login_failures (key, at);
    CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE certificates (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id),
        joules REAL NOT NULL CHECK (joules >= 0),
        frame INTEGER NOT NULL,
        retired INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE clearings (
        id INTEGER PRIMARY KEY,
        frame INTEGER NOT NULL UNIQUE,
        mechanism TEXT NOT NULL,
        welfare REAL NOT NULL,
        volume INTEGER NOT NULL,
        budget REAL NOT NULL,
        vcg_gap REAL NOT NULL,
        created REAL NOT NULL
    );
    """,
    # v3: what each order got on the bench, per frame (the settlement of its trades)
    """
    CREATE TABLE deliveries (
        order_id INTEGER NOT NULL REFERENCES orders(id),
        frame INTEGER NOT NULL,
        allocated INTEGER NOT NULL,
        delivered_packets REAL NOT NULL,
        delivered_j REAL NOT NULL,
        paid REAL NOT NULL,
        compensation REAL NOT NULL,
        PRIMARY KEY (order_id, frame)
    );
    """,
)
