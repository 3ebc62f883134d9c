"""Orders from the web terminal, checked exactly as the scenario loader checks quotes.

An order is turned into the scenario's own ``[[offers]]`` / ``[[bids]]`` entry and run
through ``bench.loader.parse_dict`` against the bench it trades on, so the web and a file
refuse the same quotes with the same words; the error's field names the form field.
"""

from __future__ import annotations

import math
import sqlite3
import time
from dataclasses import dataclass
from typing import Any, Literal

from bench import Scenario
from bench.errors import ScenarioError
from bench.loader import parse_dict
from router.web.errors import OrderError
from router.web.store import Store

Side = Literal["offer", "bid"]
LIVE = ("open", "partial")  # statuses whose remainder is in the book
Unit = Literal["packets", "kwh"]
MAX_VALID_FRAMES = 1_000_000
BOOK_DEPTH = 25  # orders shown per side of the book (the best), besides the totals
OWN_ORDERS = 50  # a user's orders shown, the newest
J_PER_KWH = 3.6e6
# the form fields a scenario field is shown next to
_FIELD = {"packets": "quantity", "price": "price", "terminal": "terminal"}


@dataclass(frozen=True)
class Order:
    id: int
    user_id: int
    side: Side
    terminal: str
    packets: int
    price: float
    valid_until_frame: int
    green: bool
    green_premium: float
    green_only: bool
    status: str  # open, partial (some traded, the rest open), filled, cancelled
    remaining: int  # packets not traded yet (0 once filled or cancelled)

    def live(self, frame: int) -> bool:
        """In the book for the clearing of ``frame``."""
        return self.status in LIVE and self.remaining > 0 and self.valid_until_frame >= frame

    def public(self) -> dict[str, Any]:
        """What the book shows: what is left of the quote; no owner, no order id."""
        out: dict[str, Any] = {
            "side": self.side,
            "terminal": self.terminal,
            "packets": self.remaining,
            "price": self.price,
        }
        if self.side == "offer":
            out["green"] = self.green
        else:
            out |= {"green_premium": self.green_premium, "green_only": self.green_only}
        return out

    def private(self, frame: int) -> dict[str, Any]:
        """The owner's view at ``frame``: an open remainder past its validity is expired."""
        expired = self.status in LIVE and self.valid_until_frame < frame
        return self.public() | {
            "id": self.id,
            "packets": self.packets,
            "remaining": self.remaining,
            "valid_until_frame": self.valid_until_frame,
            "status": "expired" if expired else self.status,
        }


def market_packet_j(scenario: Scenario, terminal: str) -> float:
    """The energy of one market packet for ``terminal``, known before any clearing: its
    voltage and the smallest access current of the bench's terminals at that voltage.
    A clearing's packet takes the smallest current of the terminals quoting in it
    (scheduler.market.network), never less than this; where those all carry more, each
    packet of a kWh order carries more energy than converted."""
    term = next((t for t in scenario.terminals if t.id == terminal), None)
    if term is None:
        raise OrderError("terminal", f"unknown terminal '{terminal}'")
    current = min(t.max_current_a for t in scenario.terminals if t.voltage_v == term.voltage_v)
    return term.voltage_v * current * scenario.frame.tau_s


def packets_of(scenario: Scenario, terminal: str, quantity: float, unit: Unit) -> int:
    """Whole packets for a quantity in packets or in kWh (``packet_j``, rounded down)."""
    if unit == "packets":
        if quantity != int(quantity):
            raise OrderError("quantity", f"must be a whole number of packets (got {quantity:g})")
        return int(quantity)
    packet_j = market_packet_j(scenario, terminal)
    packets = math.floor(quantity * J_PER_KWH / packet_j + 1e-9)
    if packets < 1 and quantity > 0:
        raise OrderError(
            "quantity",
            f"{quantity:g} kWh is less than one packet ({packet_j / J_PER_KWH:.3g} kWh)",
        )
    return packets


def check_order(
    scenario: Scenario,
    side: Side,
    terminal: str,
    packets: int,
    price: float,
    *,
    green: bool = False,
    green_premium: float = 0.0,
    green_only: bool = False,
) -> None:
    """Raise OrderError (with the form field) where the scenario loader would refuse."""
    quote: dict[str, Any] = {"id": "order", "terminal": terminal, "packets": packets}
    quote["price"] = price
    if side == "offer":
        quote["green"] = green
    else:
        quote |= {"green_premium": green_premium, "green_only": green_only}
    data = _quote_bench(scenario, terminal)
    data["offers"], data["bids"] = ([quote], []) if side == "offer" else ([], [quote])
    try:
        parse_dict(data)
    except ScenarioError as exc:
        leaf = exc.where.rsplit(".", 1)[-1]
        raise OrderError(_FIELD.get(leaf, leaf), exc.message) from None
    if packets < 1:
        raise OrderError("quantity", "must be at least one packet")


def _quote_bench(scenario: Scenario, terminal: str) -> dict[str, Any]:
    """The bench as far as the loader's rules for a quote look: its frame, the quoted
    terminal and that terminal's router (a whole bench costs milliseconds per order to
    check on a hundred-terminal bench: its topology; the words are the same)."""
    term = next((t for t in scenario.terminals if t.id == terminal), None)
    if term is None:  # the whole bench, whose error names what it has
        return scenario.model_dump(mode="python")
    return {
        "name": scenario.name,
        "frame": scenario.frame.model_dump(mode="python"),
        "routers": [scenario.router(term.port.router).model_dump(mode="python")],
        "terminals": [term.model_dump(mode="python")],
    }


def first_clearing(now_frame: int, interval: int) -> int:
    """The first scheduled clearing an order placed at ``now_frame`` (the next frame to be
    cleared) is sure to be in: the clearing for ``now_frame`` may have read the book
    already (it is computed a frame ahead), so the first multiple of the interval after."""
    return -(-(now_frame + 1) // interval) * interval


def default_valid_frames(now_frame: int, interval: int) -> int:
    """In the book through the first clearing it is sure to be in, and one interval more
    (that clearing may leave some of it, or find the clearing thread busy)."""
    return first_clearing(now_frame, interval) - now_frame + 1 + interval


def place(
    store: Store,
    scenario: Scenario,
    user_id: int,
    owned: list[str],
    form: dict[str, Any],
    now_frame: int,
    interval: int,
) -> Order:
    """Check a submitted order form and store it as open from ``now_frame`` (the next
    frame to be cleared) for ``valid_frames`` frames: by default
    ``default_valid_frames``; fewer than reach the next scheduled clearing are refused
    (the order would expire unseen)."""
    side = form.get("side")
    if side not in ("offer", "bid"):
        raise OrderError("side", "must be 'offer' or 'bid'")
    terminal = str(form.get("terminal", ""))
    if terminal not in owned:
        raise OrderError(
            "terminal", f"'{terminal}' is not one of your terminals ({_or_none(owned)})"
        )
    unit = form.get("unit", "packets")
    if unit not in ("packets", "kwh"):
        raise OrderError("unit", "must be 'packets' or 'kwh'")
    quantity = _number(form, "quantity")
    price = _number(form, "price")
    default = default_valid_frames(now_frame, interval)
    valid = _number(form, "valid_frames", default=float(default))
    if valid != int(valid) or not 1 <= valid <= MAX_VALID_FRAMES:
        raise OrderError("valid_frames", f"must be a whole number from 1 to {MAX_VALID_FRAMES}")
    clears = first_clearing(now_frame, interval)
    if now_frame + valid - 1 < clears:
        raise OrderError(
            "valid_frames",
            f"must be at least {clears - now_frame + 1}: the next clearing is for frame "
            f"{clears} (every {interval} frames); leave it empty for {default}",
        )
    green = _flag(form, "green")
    premium = _number(form, "green_premium", default=0.0)
    green_only = _flag(form, "green_only")
    packets = packets_of(scenario, terminal, quantity, unit)
    check_order(
        scenario, side, terminal, packets, price,
        green=green, green_premium=premium, green_only=green_only,
    )  # fmt: skip
    with store.transaction() as conn:
        cur = conn.execute(
            "INSERT INTO orders (user_id, side, terminal, packets, remaining, price, "
            "valid_until_frame, green, green_premium, green_only, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                user_id, side, terminal, packets, packets, price, now_frame + int(valid) - 1,
                green, premium, green_only, time.time(),
            ),
        )  # fmt: skip
        order_id = int(cur.lastrowid or 0)
    return get(store, order_id)


def get(store: Store, order_id: int) -> Order:
    return _order(store.rows("SELECT * FROM orders WHERE id = ?", (order_id,))[0])


def of_user(store: Store, user_id: int, n: int = OWN_ORDERS) -> list[Order]:
    """The user's ``n`` newest orders."""
    rows = store.rows(
        "SELECT * FROM orders WHERE user_id = ? ORDER BY id DESC LIMIT ?", (user_id, n)
    )
    return [_order(r) for r in rows]


def open_orders(store: Store, frame: int) -> list[Order]:
    """The orders in the book at ``frame``, oldest first (their remainders)."""
    rows = store.rows(
        "SELECT * FROM orders WHERE status IN ('open', 'partial') AND remaining > 0 "
        "AND valid_until_frame >= ? ORDER BY id",
        (frame,),
    )
    return [_order(r) for r in rows]


def book(store: Store, frame: int, depth: int = BOOK_DEPTH) -> dict[str, Any]:
    """The book at ``frame``: the ``depth`` best open remainders of each side (offers
    cheapest first, bids dearest first, older first at a price) and each side's totals."""
    out: dict[str, Any] = {}
    for side, order in (("offer", "price ASC"), ("bid", "price DESC")):
        where = (
            "side = ? AND status IN ('open', 'partial') AND remaining > 0 "
            "AND valid_until_frame >= ?"
        )
        rows = store.rows(
            f"SELECT * FROM orders WHERE {where} ORDER BY {order}, id LIMIT ?", (side, frame, depth)
        )
        (total,) = store.rows(
            f"SELECT COUNT(*) AS n, COALESCE(SUM(remaining), 0) AS packets FROM orders "
            f"WHERE {where}",
            (side, frame),
        )
        out[f"{side}s"] = [_order(r).public() for r in rows]
        out[f"{side}_totals"] = {"orders": total["n"], "packets": total["packets"]}
    return out


def cancel(store: Store, user_id: int, order_id: int) -> None:
    """Withdraw what is left of an order (what it traded already is delivered)."""
    with store.transaction() as conn:
        n = conn.execute(
            "UPDATE orders SET status = 'cancelled' WHERE id = ? AND user_id = ? "
            "AND status IN ('open', 'partial')",
            (order_id, user_id),
        ).rowcount
    if not n:  # someone else's order reads the same as a missing one
        raise OrderError("order", f"no open order {order_id} of yours")


def withdraw(
    conn: sqlite3.Connection, *, user_id: int | None = None, terminal: str | None = None
) -> list[int]:
    """Cancel the open remainders of a user's orders, or of the orders on a terminal
    (inside the caller's transaction: an account change and its withdrawals commit
    together); the ids cancelled. What a clearing already traded still runs."""
    where = ["status IN ('open', 'partial')"]
    args: list[Any] = []
    if user_id is not None:
        where.append("user_id = ?")
        args.append(user_id)
    if terminal is not None:
        where.append("terminal = ?")
        args.append(terminal)
    clause = " AND ".join(where)
    ids = [int(r[0]) for r in conn.execute(f"SELECT id FROM orders WHERE {clause}", args)]
    conn.execute(f"UPDATE orders SET status = 'cancelled' WHERE {clause}", args)
    return ids


def _number(form: dict[str, Any], name: str, default: float | None = None) -> float:
    raw = form.get(name)
    if raw in (None, ""):
        if default is None:
            raise OrderError(name, "is required")
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise OrderError(name, f"must be a number (got {raw!r})") from None
    if not math.isfinite(value) or value < 0:
        raise OrderError(name, f"must be a finite number >= 0 (got {raw!r})")
    return value


def _flag(form: dict[str, Any], name: str) -> bool:
    return str(form.get(name, "")).lower() in ("1", "true", "on", "yes")


def _or_none(items: list[str]) -> str:
    return ", ".join(items) if items else "none assigned yet; ask an admin"


def _order(r: Any) -> Order:
    return Order(
        int(r["id"]), int(r["user_id"]), r["side"], r["terminal"], int(r["packets"]),
        float(r["price"]), int(r["valid_until_frame"]), bool(r["green"]),
        float(r["green_premium"]), bool(r["green_only"]), r["status"], int(r["remaining"]),
    )  # fmt: skip
