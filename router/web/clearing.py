"""Clear the web book: open orders into the scenario's quotes, a mechanism by name, the
result stored beside the VCG optimum it is measured against.

Called by the frame stage (``router.web.stage``) every market interval and by the
operator's "clear now"; pure SQLite and the market code, no asyncio.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from bench import Scenario, Topology
from bench.models import Bid, Offer
from router.web.orders import Order, open_orders
from router.web.store import Store
from scheduler.market import MECHANISMS, MarketResult, clear_market


@dataclass(frozen=True)
class Clearing:
    frame: int
    mechanism: str
    welfare: float
    volume: int
    budget: float
    vcg_gap: float  # optimum (VCG) welfare minus this rule's; 0 for VCG and Nash

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def mechanism_names() -> tuple[str, ...]:
    """The mechanisms the operator may choose, by name (the market package's registry)."""
    return tuple(MECHANISMS)


def book_scenario(scenario: Scenario, orders: list[Order]) -> Scenario:
    """The scenario quoting the open orders (a terminal quotes one side per clearing: its
    oldest open order decides which)."""
    side_of: dict[str, str] = {}
    offers, bids = [], []
    for o in orders:
        if side_of.setdefault(o.terminal, o.side) != o.side:
            continue
        if o.side == "offer":
            offers.append(Offer(id=f"o{o.id}", terminal=o.terminal, packets=o.packets,
                                price=o.price, green=o.green))  # fmt: skip
        else:
            bids.append(Bid(id=f"o{o.id}", terminal=o.terminal, packets=o.packets,
                            price=o.price, green_premium=o.green_premium,
                            green_only=o.green_only))  # fmt: skip
    return scenario.model_copy(update={"offers": tuple(offers), "bids": tuple(bids)})


def clear_book(
    store: Store, scenario: Scenario, topology: Topology, mechanism: str, frame: int
) -> tuple[MarketResult | None, Clearing | None]:
    """Clear the orders open at ``frame``; nothing when one side of the book is empty or
    this frame was cleared already (a restart must not clear it twice)."""
    if store.rows("SELECT 1 FROM clearings WHERE frame = ?", (frame,)):
        return None, None
    quoted = book_scenario(scenario, open_orders(store, frame))
    if not (quoted.offers and quoted.bids):
        return None, None
    result = clear_market(quoted, topology, mechanism)  # type: ignore[arg-type]
    optimum = result if mechanism == "vcg" else clear_market(quoted, topology, "vcg")
    clearing = Clearing(frame, mechanism, result.welfare, result.traded, result.budget,
                        optimum.welfare - result.welfare)  # fmt: skip
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO clearings (frame, mechanism, welfare, volume, budget, vcg_gap, created)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (frame, mechanism, clearing.welfare, clearing.volume, clearing.budget,
             clearing.vcg_gap, time.time()),
        )  # fmt: skip
        for s in result.participants:
            status = "filled" if s.packets >= s.quoted else ("partial" if s.packets else "open")
            if status != "open":
                conn.execute("UPDATE orders SET status = ? WHERE id = ?", (status, int(s.id[1:])))
    return result, clearing


def last_clearings(store: Store, n: int = 10) -> list[Clearing]:
    rows = store.rows(
        "SELECT frame, mechanism, welfare, volume, budget, vcg_gap FROM clearings "
        "ORDER BY frame DESC LIMIT ?",
        (n,),
    )
    return [Clearing(r["frame"], r["mechanism"], r["welfare"], r["volume"], r["budget"],
                     r["vcg_gap"]) for r in rows]  # fmt: skip
