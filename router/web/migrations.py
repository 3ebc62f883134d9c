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
    # v4 (issue 11 follow-up): what is left of each order; clearings as pending deliveries
    # (their trades and the cleared result, written with the clearing, executed on a later
    # frame and settled from its meters, so a crash between the two loses nothing); the
    # trades of each clearing; certificates per trade, held by the buyer until retired;
    # server-side sessions (revoked at logout and when an account is disabled); the
    # registrations of each address (their rate limit)
    """
    ALTER TABLE orders ADD COLUMN remaining INTEGER NOT NULL DEFAULT 0;
    UPDATE orders SET remaining = CASE status
        WHEN 'open' THEN packets
        WHEN 'partial' THEN MAX(0, packets - COALESCE(
            (SELECT SUM(allocated) FROM deliveries d WHERE d.order_id = orders.id), 0))
        ELSE 0 END;
    CREATE INDEX orders_book ON orders (side, status, price);
    CREATE INDEX orders_user ON orders (user_id, id);
    ALTER TABLE clearings ADD COLUMN status TEXT NOT NULL DEFAULT 'settled'
        CHECK (status IN ('pending', 'settled', 'void'));
    ALTER TABLE clearings ADD COLUMN exec_frame INTEGER;
    ALTER TABLE clearings ADD COLUMN settled_frame INTEGER;
    ALTER TABLE clearings ADD COLUMN result TEXT;
    ALTER TABLE clearings ADD COLUMN note TEXT;
    CREATE TABLE trades (
        clearing_id INTEGER NOT NULL REFERENCES clearings(id),
        seller_order INTEGER NOT NULL REFERENCES orders(id),
        buyer_order INTEGER NOT NULL REFERENCES orders(id),
        packets INTEGER NOT NULL,
        green INTEGER NOT NULL,
        delivered_packets REAL,
        delivered_j REAL,
        PRIMARY KEY (clearing_id, seller_order, buyer_order)
    );
    ALTER TABLE certificates ADD COLUMN clearing_id INTEGER;
    ALTER TABLE certificates ADD COLUMN seller_order INTEGER;
    ALTER TABLE certificates ADD COLUMN buyer_order INTEGER;
    ALTER TABLE certificates ADD COLUMN issued REAL;
    ALTER TABLE certificates ADD COLUMN retired_at REAL;
    CREATE UNIQUE INDEX certificates_trade ON certificates (clearing_id, seller_order, buyer_order);
    CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id),
        expires REAL NOT NULL
    );
    CREATE INDEX sessions_user ON sessions (user_id);
    CREATE TABLE registrations (address TEXT NOT NULL, at REAL NOT NULL);
    CREATE INDEX registrations_address ON registrations (address, at);
    """,
    # v5 (review of issue 11): the names a clearing's orders go by on the bench (transfer
    # ids, the settlement, MQTT), so that order ids never leave the server
    """
    CREATE TABLE parties (
        clearing_id INTEGER NOT NULL REFERENCES clearings(id),
        party TEXT NOT NULL,
        order_id INTEGER NOT NULL REFERENCES orders(id),
        PRIMARY KEY (clearing_id, party)
    );
    CREATE INDEX parties_order ON parties (order_id);
    """,
)
