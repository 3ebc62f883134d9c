"""Green certificates: what a buyer holds, and retiring one when it is used.

A certificate says: these joules, delivered to your terminal in this frame, came from a
green offer (``router.web.settle`` issues them). *Using* it means claiming that energy
as renewable (in a report, against a green tariff): the holder retires it, once, and a
retired certificate can never be claimed again. Each retirement is journaled (signed)
before the store commits it, as each issue is.
"""

from __future__ import annotations

import time
from typing import Any

from router.journal import Journal
from router.web.errors import OrderError
from router.web.store import Store


def of_user(store: Store, user_id: int) -> list[dict[str, Any]]:
    rows = store.rows(
        "SELECT c.id, c.frame, c.joules, c.retired_at, s.terminal AS origin, "
        "b.terminal AS terminal, c.buyer_order AS order_id FROM certificates c "
        "LEFT JOIN orders s ON s.id = c.seller_order "
        "LEFT JOIN orders b ON b.id = c.buyer_order "
        "WHERE c.user_id = ? ORDER BY c.id DESC",
        (user_id,),
    )
    return [dict(r) | {"retired": r["retired_at"] is not None} for r in rows]


def retire(
    store: Store, journal: Journal, user_id: int, by: str, certificate_id: int
) -> dict[str, Any]:
    """Retire one of the user's certificates; OrderError if it is not theirs or is
    retired already (someone else's reads the same as a missing one)."""
    with store.transaction() as conn:
        row = conn.execute(
            "SELECT joules, frame FROM certificates WHERE id = ? AND user_id = ? "
            "AND retired_at IS NULL",
            (certificate_id, user_id),
        ).fetchone()
        if row is None:
            raise OrderError("certificate", f"no unretired certificate {certificate_id} of yours")
        conn.execute(
            "UPDATE certificates SET retired_at = ?, retired = 1 WHERE id = ?",
            (time.time(), certificate_id),
        )
        done = {"certificate": certificate_id, "joules": row[0], "frame": row[1]}
        journal.append("command", {"source": "web", "by": by, "action": "retire"} | done)
    return done
