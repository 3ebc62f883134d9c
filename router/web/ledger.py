"""What a participant's orders came to: their trades, what the bench delivered and what
was paid, read for the page (always for one user: the session's)."""

from __future__ import annotations

from typing import Any

from router.web.store import Store


def order_totals(store: Store, user_id: int) -> dict[int, dict[str, Any]]:
    """Per order of the user: packets traded, and over its settled frames the packets
    and joules delivered, the market payment (pro rata to delivery; to the operator when
    positive) and the compensation for shortfalls (received when positive), and the
    packets its settled trades did not deliver: they never return to the book; the
    settlement made up for them (a seller's shortfall compensates the buyer, packets the
    planner could not fit are not paid; docs/web.md)."""
    rows = store.rows(
        "SELECT o.id, o.packets - o.remaining AS traded, "
        "(SELECT COALESCE(SUM(t.packets - COALESCE(t.delivered_packets, 0)), 0) "
        " FROM trades t JOIN clearings c ON c.id = t.clearing_id "
        " WHERE c.status = 'settled' AND o.id IN (t.seller_order, t.buyer_order)) "
        "AS undelivered, "
        "COALESCE(SUM(d.delivered_packets), 0) AS delivered_packets, "
        "COALESCE(SUM(d.delivered_j), 0) AS delivered_j, COALESCE(SUM(d.paid), 0) AS paid, "
        "COALESCE(SUM(d.compensation), 0) AS compensation "
        "FROM orders o LEFT JOIN deliveries d ON d.order_id = o.id "
        "WHERE o.user_id = ? GROUP BY o.id",
        (user_id,),
    )
    return {int(r["id"]): {k: v for k, v in dict(r).items() if k != "id"} for r in rows}


def trades_of(store: Store, user_id: int, n: int = 50) -> list[dict[str, Any]]:
    """The user's side of each trade: the frame it ran in, the other side's terminal (as
    public as the book), packets traded and delivered, joules delivered, green or not,
    and the transfer it runs as on the bench (the live view's Gantt names it; a second
    route adds ``.2``)."""
    rows = store.rows(
        "SELECT c.frame AS cleared_frame, c.status, c.settled_frame, t.packets, t.green, "
        "t.delivered_packets, t.delivered_j, "
        "CASE WHEN s.user_id = ? THEN 'offer' ELSE 'bid' END AS side, "
        "CASE WHEN s.user_id = ? THEN s.id ELSE b.id END AS order_id, "
        "CASE WHEN s.user_id = ? THEN b.terminal ELSE s.terminal END AS counterpart, "
        "ps.party || '-' || pb.party AS transfer "
        "FROM trades t JOIN clearings c ON c.id = t.clearing_id "
        "JOIN orders s ON s.id = t.seller_order JOIN orders b ON b.id = t.buyer_order "
        "LEFT JOIN parties ps ON ps.clearing_id = c.id AND ps.order_id = s.id "
        "LEFT JOIN parties pb ON pb.clearing_id = c.id AND pb.order_id = b.id "
        "WHERE (s.user_id = ? OR b.user_id = ?) AND c.status != 'void' "
        "ORDER BY c.id DESC LIMIT ?",
        (user_id, user_id, user_id, user_id, user_id, n),
    )
    return [dict(r) | {"green": bool(r["green"])} for r in rows]


def deliveries_of(store: Store, user_id: int, n: int = 50) -> list[dict[str, Any]]:
    """Per settled frame and order of the user: allocated, delivered, paid."""
    rows = store.rows(
        "SELECT d.frame, d.order_id, o.side, o.terminal, d.allocated, d.delivered_packets, "
        "d.delivered_j, d.paid, d.compensation FROM deliveries d "
        "JOIN orders o ON o.id = d.order_id WHERE o.user_id = ? "
        "ORDER BY d.frame DESC, d.order_id LIMIT ?",
        (user_id, n),
    )
    return [dict(r) for r in rows]
