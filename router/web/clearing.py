"""Clear the web book: the orders in the book into the scenario's quotes, a mechanism by
name, the result stored beside the optimum it is measured against.

A clearing is stored in one transaction with everything it decides: what is left of each
order, its trades, and the cleared result itself. It is then *pending* until a frame
executes its trades and that frame's settlement comes back (``settle``); a crash in
between leaves it pending, and the book stage executes it again after the restart (or
settles it from the journal, when the frame did run). So a clearing is never lost and
never cleared twice: its orders' quantities left the book when it was stored.

Called by the book stage (``router.web.stage``) in the planning thread; pure SQLite and
the market code, no asyncio.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from dataclasses import dataclass
from typing import Any, cast

from bench import Scenario, Topology
from bench.models import Bid, Offer
from router.web import result_codec
from router.web.orders import LIVE, Order, open_orders
from router.web.store import Store
from scheduler.market import MECHANISMS, MarketResult, Mechanism, clear_market


@dataclass(frozen=True)
class Clearing:
    id: int
    frame: int  # the frame it cleared for (the book as it was then)
    mechanism: str
    welfare: float
    volume: int
    budget: float
    vcg_gap: float  # the optimum's (VCG) welfare minus this rule's; 0 for VCG and Nash
    status: str  # pending (trades not settled yet), settled, void
    exec_frame: int | None  # the frame its trades run in (last tried)
    settled_frame: int | None
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class _BookChanged(Exception):
    """An order of the clearing was cancelled or filled while it was being computed."""


def mechanism_names() -> tuple[str, ...]:
    """The mechanisms the operator may choose, by name (the market package's registry)."""
    return tuple(MECHANISMS)


def book_scenario(scenario: Scenario, orders: list[Order]) -> Scenario:
    """The scenario quoting what is left of the orders (a terminal quotes one side per
    clearing: its oldest order in the book decides which)."""
    side_of: dict[str, str] = {}
    offers, bids = [], []
    for o in orders:
        if side_of.setdefault(o.terminal, o.side) != o.side:
            continue
        if o.side == "offer":
            offers.append(Offer(id=f"o{o.id}", terminal=o.terminal, packets=o.remaining,
                                price=o.price, green=o.green))  # fmt: skip
        else:
            bids.append(Bid(id=f"o{o.id}", terminal=o.terminal, packets=o.remaining,
                            price=o.price, green_premium=o.green_premium,
                            green_only=o.green_only))  # fmt: skip
    return scenario.model_copy(update={"offers": tuple(offers), "bids": tuple(bids)})


def order_id(participant: str) -> int:
    """The order behind a market participant id of the book (``o12`` -> 12)."""
    return int(participant[1:])


def party_names(result: MarketResult, clearing_id: int) -> dict[str, str]:
    """The names the clearing's orders go by on the bench, from their book ids: the
    clearing's number and the order's rank among its sellers or buyers (``o103`` ->
    ``c12s1``), so the transfers (``c12s1-c12b1``), the settlement and MQTT carry no
    order id. The store keeps the map back (``parties``); a participant sees its own."""
    rank = {"offer": 0, "bid": 0}
    names = {}
    for s in result.participants:
        rank[s.side] += 1
        names[s.id] = f"c{clearing_id}{'s' if s.side == 'offer' else 'b'}{rank[s.side]}"
    return names


def renamed(result: MarketResult, names: dict[str, str]) -> MarketResult:
    participants = tuple(dataclasses.replace(s, id=names[s.id]) for s in result.participants)
    trades = tuple(
        dataclasses.replace(t, seller=names[t.seller], buyer=names[t.buyer]) for t in result.trades
    )
    return dataclasses.replace(result, participants=participants, trades=trades)


def orders_of(conn: sqlite3.Connection, clearing_id: int) -> dict[str, int]:
    """Party name -> order id for a clearing (empty for one cleared before parties had
    names: its participants are the book's ``o<id>``)."""
    rows = conn.execute(
        "SELECT party, order_id FROM parties WHERE clearing_id = ?", (clearing_id,)
    ).fetchall()
    return {str(party): int(oid) for party, oid in rows}


def clear_book(
    store: Store, scenario: Scenario, topology: Topology, mechanism: str, frame: int
) -> Clearing | None:
    """Clear the book at ``frame`` and store the clearing as pending; None when one side
    is empty, nothing crosses, this frame was cleared already, or an order changed
    meanwhile (the next frame clears again). MarketError when the book cannot clear."""
    if store.rows("SELECT 1 FROM clearings WHERE frame = ?", (frame,)):
        return None
    book = open_orders(store, frame)
    quoted = book_scenario(scenario, book)
    if not (quoted.offers and quoted.bids):
        return None
    result = clear_market(quoted, topology, cast(Mechanism, mechanism))
    if not result.trades:
        return None
    green = {o.id: o.green for o in book}
    try:
        with store.transaction() as conn:
            _take_from_book(conn, result)
            cur = conn.execute(
                "INSERT INTO clearings (frame, mechanism, welfare, volume, budget, vcg_gap, "
                "created, status) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending')",
                (frame, mechanism, result.welfare, result.traded, result.budget,
                 max(0.0, result.welfare_gap), time.time()),
            )  # fmt: skip
            cid = int(cur.lastrowid or 0)
            names = party_names(result, cid)
            conn.execute(  # stored as the bench will run it: by party names
                "UPDATE clearings SET result = ? WHERE id = ?",
                (result_codec.dumps(renamed(result, names)), cid),
            )
            conn.executemany(
                "INSERT INTO parties VALUES (?, ?, ?)",
                [(cid, name, order_id(oid)) for oid, name in names.items()],
            )
            pairs: dict[tuple[int, int], int] = {}
            for t in result.trades:  # one row per pair of orders, whatever the routes
                key = (order_id(t.seller), order_id(t.buyer))
                pairs[key] = pairs.get(key, 0) + t.packets
            conn.executemany(
                "INSERT INTO trades (clearing_id, seller_order, buyer_order, packets, green) "
                "VALUES (?, ?, ?, ?, ?)",
                [(cid, s, b, n, green[s]) for (s, b), n in pairs.items()],
            )
    except _BookChanged:
        return None
    return get(store, cid)


def _take_from_book(conn: sqlite3.Connection, result: MarketResult) -> None:
    """Each order's allocation leaves its remainder (filled at 0, partial above)."""
    for s in result.participants:
        if not s.packets:
            continue
        changed = conn.execute(
            "UPDATE orders SET remaining = remaining - ?, "
            "status = CASE WHEN remaining = ? THEN 'filled' ELSE 'partial' END "
            f"WHERE id = ? AND status IN {LIVE} AND remaining >= ?",
            (s.packets, s.packets, order_id(s.id), s.packets),
        ).rowcount
        if not changed:
            raise _BookChanged


def result_of(store: Store, clearing_id: int) -> MarketResult:
    text = store.rows("SELECT result FROM clearings WHERE id = ?", (clearing_id,))[0]["result"]
    return result_codec.loads(text)


def queued(store: Store) -> list[Clearing]:
    """Pending clearings waiting for a frame to run their trades, oldest first."""
    return _select(store, "status = 'pending' AND exec_frame IS NULL ORDER BY id")


def executing(store: Store) -> list[Clearing]:
    """Pending clearings given to a frame (which may not have run)."""
    return _select(store, "status = 'pending' AND exec_frame IS NOT NULL ORDER BY id")


def get(store: Store, clearing_id: int) -> Clearing:
    return _select(store, "id = ?", (clearing_id,))[0]


def last_clearings(store: Store, n: int = 10) -> list[Clearing]:
    return _select(store, "status != 'void' ORDER BY id DESC LIMIT ?", (n,))


def mark_executing(store: Store, clearing_id: int, frame: int) -> None:
    with store.transaction() as conn:
        conn.execute("UPDATE clearings SET exec_frame = ? WHERE id = ?", (frame, clearing_id))


def requeue(store: Store, clearing_id: int) -> None:
    """Its frame did not run (skipped, stopped, crashed): the next frame runs it."""
    with store.transaction() as conn:
        conn.execute(
            "UPDATE clearings SET exec_frame = NULL WHERE id = ? AND status = 'pending'",
            (clearing_id,),
        )


def void(store: Store, clearing_id: int, why: str) -> None:
    """A clearing that can no longer run (the bench changed under it): its trades go
    back to their orders' remainders, as if it had never cleared."""
    with store.transaction() as conn:
        rows = conn.execute(
            "SELECT seller_order, buyer_order, packets FROM trades WHERE clearing_id = ?",
            (clearing_id,),
        ).fetchall()
        for seller, buyer, packets in rows:
            for oid in (seller, buyer):
                conn.execute(
                    "UPDATE orders SET remaining = remaining + ?, "
                    "status = CASE WHEN status = 'cancelled' THEN status "
                    "WHEN remaining + ? = packets THEN 'open' ELSE 'partial' END WHERE id = ?",
                    (packets, packets, oid),
                )
        conn.execute(
            "UPDATE clearings SET status = 'void', note = ? WHERE id = ?", (why, clearing_id)
        )


def _select(store: Store, where: str, args: tuple[Any, ...] = ()) -> list[Clearing]:
    rows = store.rows(
        "SELECT id, frame, mechanism, welfare, volume, budget, vcg_gap, status, exec_frame, "
        f"settled_frame, note FROM clearings WHERE {where}",
        args,
    )
    return [Clearing(**dict(r)) for r in rows]
