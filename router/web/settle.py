"""A frame's settlement back into the book: per order what the bench delivered and what
was paid, per trade the joules delivered, and green certificates for the green ones.

Works on the settlement's JSON (``FrameSettlement.to_json()``, the controller journal's
``settlement`` record), so that a frame settled before a crash and one settled now are
written by the same code. Idempotent: a clearing settles once.

Certificates. A trade whose seller offered green energy earns one certificate for the
joules its transfers delivered at the buyer's meter (what the settlement credits), held
by the buyer's account, never for the packets traded but not delivered. Each issue is
journaled (signed) before the store commits it, keyed by (clearing, seller order, buyer
order): a crash between the two leaves a journal record that the re-issue repeats, never
a certificate the journal lacks.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from router.journal import Journal
from router.web.clearing import order_id, orders_of
from router.web.store import Store


def settle(
    store: Store,
    journal: Journal | None,
    clearing_id: int,
    frame: int,
    settlement: Mapping[str, Any],
) -> dict[str, Any] | None:
    """Write the settlement of the frame that ran clearing ``clearing_id``; the stage's
    account of it, or None if the clearing was settled already."""
    issued: list[dict[str, Any]] = []
    with store.transaction() as conn:
        status = conn.execute(
            "SELECT status FROM clearings WHERE id = ?", (clearing_id,)
        ).fetchone()
        if status is None or status[0] != "pending":
            return None
        parties = orders_of(conn, clearing_id)

        def order(party: str) -> int:
            return parties[party] if parties else order_id(party)

        delivered: dict[tuple[int, int], list[float]] = {}
        for t in settlement["transfers"]:
            if t["seller"] and t["buyer"]:
                got = delivered.setdefault((order(t["seller"]), order(t["buyer"])), [0.0, 0.0])
                got[0] += t["delivered_packets"]
                got[1] += t["delivered_j"]
        by_order: dict[int, float] = {}
        for (seller, buyer), (_, joules) in delivered.items():
            by_order[seller] = by_order.get(seller, 0.0) + joules
            by_order[buyer] = by_order.get(buyer, 0.0) + joules
        for p in settlement["participants"]:
            oid = order(p["id"])
            conn.execute(
                "INSERT OR REPLACE INTO deliveries VALUES (?, ?, ?, ?, ?, ?, ?)",
                (oid, frame, p["allocated"], p["delivered_packets"], by_order.get(oid, 0.0),
                 p["paid"], p["compensation"]),
            )  # fmt: skip
        trades = conn.execute(
            "SELECT t.seller_order, t.buyer_order, t.green, b.user_id, s.terminal "
            "FROM trades t JOIN orders b ON b.id = t.buyer_order "
            "JOIN orders s ON s.id = t.seller_order WHERE t.clearing_id = ?",
            (clearing_id,),
        ).fetchall()
        now = time.time()
        for seller, buyer, green, holder, origin in trades:
            packets, joules = delivered.get((seller, buyer), (0.0, 0.0))
            conn.execute(
                "UPDATE trades SET delivered_packets = ?, delivered_j = ? "
                "WHERE clearing_id = ? AND seller_order = ? AND buyer_order = ?",
                (packets, joules, clearing_id, seller, buyer),
            )
            if green and joules > 0:
                issued.append(
                    {"clearing": clearing_id, "seller_order": seller, "buyer_order": buyer,
                     "holder": holder, "origin": origin, "joules": joules}
                )  # fmt: skip
                conn.execute(
                    "INSERT OR IGNORE INTO certificates (user_id, joules, frame, clearing_id, "
                    "seller_order, buyer_order, issued) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (holder, joules, frame, clearing_id, seller, buyer, now),
                )
        conn.execute(
            "UPDATE clearings SET status = 'settled', settled_frame = ?, exec_frame = ? "
            "WHERE id = ?",
            (frame, frame, clearing_id),
        )
        if journal is not None and issued:  # journaled before the commit (see above)
            journal.append("stage", {"stage": "web-book", "issued": issued}, frame=frame)
    return {
        "clearing": clearing_id,
        "orders": len(settlement["participants"]),
        "green_j_certified": sum(c["joules"] for c in issued),
        "certificates": len(issued),
    }
