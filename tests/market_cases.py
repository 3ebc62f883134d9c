"""Tiny markets and a brute-force oracle for them, written apart from scheduler.market.

The triangle bench: routers A, B, C; lines AB and BC, an SOP from C to A. Sellers P1 (at
A) and P2 (at B), buyers Q1 (at C) and Q2 (a battery at A). Frames of two or three slots
make the one-packet-per-slot limits bind. The oracle enumerates every integer amount on
every (seller quote, buyer quote, simple route) with each resource carrying at most one
packet per slot in either direction, and prices losses from the physics of docs/design.md.
"""

from __future__ import annotations

import math
import random
from typing import Any

TERMINAL = {"voltage_v": 48.0, "resistance_ohm": 0.02}


def triangle(rng: random.Random, *, n_quotes: int = 4) -> dict[str, Any]:
    """A random market on the triangle bench: prices on a 0.02 grid, 1-3 packets."""
    slots = rng.choice([2, 3])
    currents = {"P1": 10.0, "P2": rng.choice([10.0, 8.0]), "Q1": 10.0, "Q2": 10.0}
    terminals = [
        {"id": "P1", "kind": "source", "at": "A:0", "max_current_a": currents["P1"], **TERMINAL},
        {"id": "P2", "kind": "source", "at": "B:0", "max_current_a": currents["P2"], **TERMINAL},
        {"id": "Q1", "kind": "load", "at": "C:0", "max_current_a": currents["Q1"], **TERMINAL},
        {"id": "Q2", "kind": "storage", "at": "A:1", "max_current_a": currents["Q2"], **TERMINAL},
    ]
    offers, bids = [], []
    for i in range(n_quotes):
        quote = {"id": f"X{i}", "packets": rng.randint(1, 3), "price": rng.randint(0, 25) / 50}
        if i % 2 == 0:
            offers.append(quote | {"terminal": rng.choice(["P1", "P2"])})
        else:
            bids.append(quote | {"terminal": rng.choice(["Q1", "Q2"])})
    return {
        "name": "triangle",
        "frame": {"slots": slots, "slot_ms": 5.0, "guard_us": 100.0},
        "costs": {"loss_price_per_j": 0.5},
        "routers": [{"id": r, "ports": 4} for r in "ABC"],
        "terminals": terminals,
        "lines": [
            {"id": "AB", "a": "A:2", "b": "B:1", "resistance_ohm": 0.1, "max_current_a": 20.0},
            {"id": "BC", "a": "B:2", "b": "C:1", "resistance_ohm": 0.15, "max_current_a": 20.0},
        ],
        "sops": [
            {"id": "CA", "a": "C:2", "b": "A:3", "loss_coeff": 0.02,
             "max_power_w": rng.choice([800.0, 400.0])},
        ],
        "offers": offers,
        "bids": bids,
    }  # fmt: skip


def single_node(asks: list[float], values: list[float], slots: int = 50) -> dict[str, Any]:
    """Every participant on its own terminal of one router, one packet each, no losses."""
    n = len(asks) + len(values)
    terminals = [
        {"id": f"T{i}", "kind": "source" if i < len(asks) else "load", "at": f"X:{i}",
         "max_current_a": 10.0, **TERMINAL}
        for i in range(n)
    ]  # fmt: skip
    return {
        "name": "one-node",
        "frame": {"slots": slots, "slot_ms": 5.0, "guard_us": 100.0},
        "costs": {"loss_price_per_j": 0.0},
        "routers": [{"id": "X", "ports": n}],
        "terminals": terminals,
        "offers": [
            {"id": f"S{i}", "terminal": f"T{i}", "packets": 1, "price": p}
            for i, p in enumerate(asks)
        ],
        "bids": [
            {"id": f"B{i}", "terminal": f"T{len(asks) + i}", "packets": 1, "price": p}
            for i, p in enumerate(values)
        ],
    }


# ---- the oracle ------------------------------------------------------------------------


def _routes(data: dict[str, Any], src: str, dst: str, volts: float, amps: float) -> list[list]:
    """Simple routes (resource ids) between two terminals within current/power limits."""
    at = {t["id"]: t["at"].split(":")[0] for t in data["terminals"]}
    links = []
    for line in data.get("lines", []):
        if amps <= line["max_current_a"]:
            links.append((line["id"], line["a"].split(":")[0], line["b"].split(":")[0]))
    for sop in data.get("sops", []):
        if volts * amps <= sop["max_power_w"]:
            links.append((sop["id"], sop["a"].split(":")[0], sop["b"].split(":")[0]))
    found = []

    def walk(router: str, seen: set[str], used: list[str]) -> None:
        if router == at[dst]:
            found.append([src, *used, dst])
        for rid, a, b in links:
            for here, there in ((a, b), (b, a)):
                if here == router and there not in seen:
                    walk(there, seen | {there}, [*used, rid])

    walk(at[src], {at[src]}, [])
    return found


def _market(data: dict[str, Any]) -> tuple[float, float, float, float, int]:
    """The market packet (volts, amps), its energy, the loss price and the slots."""
    terms = {t["id"]: t for t in data["terminals"]}
    quoting = [terms[q["terminal"]] for q in data["offers"] + data["bids"]]
    volts, amps = quoting[0]["voltage_v"], min(t["max_current_a"] for t in quoting)
    tau = data["frame"]["slot_ms"] / 1000 - data["frame"]["guard_us"] / 1e6
    return (
        volts,
        amps,
        volts * amps * tau,
        data["costs"]["loss_price_per_j"],
        data["frame"]["slots"],
    )


def _options(data: dict[str, Any], offers: list, bids: list) -> list[tuple]:
    """(offer, bid, route, joules lost per packet, transport cost per packet) for every
    pair and every simple route, each pair's routes cheapest first."""
    volts, amps, _, price_j, _ = _market(data)
    out = []
    for s in offers:
        for b in bids:
            routes = _routes(data, s["terminal"], b["terminal"], volts, amps)
            costed = []
            for route in routes:
                per = _losses(data, route, volts, amps)
                costed.append((math.fsum(per), math.fsum(price_j * j for j in per), route))
            for loss, cost, route in sorted(costed, key=lambda c: (c[0], len(c[2]))):
                out.append((s, b, tuple(route), loss, cost))
    return out


def _losses(data: dict[str, Any], route: list[str], volts: float, amps: float) -> list[float]:
    tau = data["frame"]["slot_ms"] / 1000 - data["frame"]["guard_us"] / 1e6
    ohms = {t["id"]: t["resistance_ohm"] for t in data["terminals"]}
    ohms |= {x["id"]: x["resistance_ohm"] for x in data.get("lines", [])}
    coeff = {x["id"]: x["loss_coeff"] for x in data.get("sops", [])}
    return [coeff[r] * volts * amps * tau if r in coeff else amps * amps * ohms[r] * tau
            for r in route]  # fmt: skip


def _loss_j(data: dict[str, Any], route: list[str], volts: float, amps: float) -> float:
    return sum(_losses(data, route, volts, amps))


def _allocations(data: dict[str, Any], offers: list, bids: list):
    """Every integer allocation within quotes and one packet per slot per resource:
    yields {(offer id, bid id, route): packets} with its gain per packet, per option."""
    _, _, _, price_j, slots = _market(data)
    options = []
    for s, b, route, loss, _cost in _options(data, offers, bids):
        options.append((s["id"], b["id"], route, b["price"] - s["price"] - price_j * loss))
    left = {q["id"]: q["packets"] for q in offers + bids}
    room = {r: slots for _, _, route, _ in options for r in route}
    amounts = [0] * len(options)

    def search(j: int):
        if j == len(options):
            yield options, amounts
            return
        s, b, route, _ = options[j]
        most = min(left[s], left[b], *(room[r] for r in route))
        for n in range(most + 1):
            amounts[j] = n
            left[s] -= n
            left[b] -= n
            for r in route:
                room[r] -= n
            yield from search(j + 1)
            left[s] += n
            left[b] += n
            for r in route:
                room[r] += n
        amounts[j] = 0

    yield from search(0)


def oracle_welfare(data: dict[str, Any], without: str | None = None) -> float:
    """The best welfare over every integer allocation, optionally without one quote."""
    offers = [q for q in data["offers"] if q["id"] != without]
    bids = [q for q in data["bids"] if q["id"] != without]
    best = 0.0
    for options, amounts in _allocations(data, offers, bids):
        best = max(best, sum(n * o[3] for o, n in zip(options, amounts, strict=True)))
    return best


def oracle_max_volume(data: dict[str, Any]) -> tuple[int, float]:
    """The most packets any allocation trades at one uniform price (every trading ask at
    most, every trading bid at least, that price), and the best welfare among those."""
    ask = {q["id"]: q["price"] for q in data["offers"]}
    value = {q["id"]: q["price"] for q in data["bids"]}
    best = (0, 0.0)
    for options, amounts in _allocations(data, data["offers"], data["bids"]):
        used = [(o, n) for o, n in zip(options, amounts, strict=True) if n]
        if used and max(ask[o[0]] for o, _ in used) > min(value[o[1]] for o, _ in used):
            continue  # no single price suits every trading party
        volume = sum(n for _, n in used)
        welfare = sum(n * o[3] for o, n in used)
        if volume > best[0] or (volume == best[0] and welfare > best[1] + 1e-12):
            best = (volume, welfare)
    return best


def _walk(data: dict[str, Any], candidates) -> list[tuple]:
    """Trade each (offer, bid, route, transport cost) in turn as far as quotes and room
    allow, at an equal split of bid - ask - cost: (seller, buyer, route, packets, buyer
    pays, seller receives)."""
    slots = _market(data)[4]
    left = {q["id"]: q["packets"] for q in data["offers"] + data["bids"]}
    room: dict[str, int] = {}
    trades = []
    for s, b, route, cost in candidates:
        n = min(left[s["id"]], left[b["id"]], *(room.get(r, slots) for r in route))
        if n <= 0:
            continue
        left[s["id"]] -= n
        left[b["id"]] -= n
        for r in route:
            room[r] = room.get(r, slots) - n
        half = (b["price"] - s["price"] - cost) / 2
        trades.append((s["id"], b["id"], route, n, b["price"] - half, s["price"] + half))
    return trades


def oracle_price_priority(data: dict[str, Any]) -> list[tuple]:
    """docs/market.md's price-priority, from its text: bids highest first, offers lowest
    first (ties: file order), cheapest route first, while the bid covers ask + cost."""
    offers = [q for _, q in sorted(enumerate(data["offers"]), key=lambda e: (e[1]["price"], e[0]))]
    bids = [q for _, q in sorted(enumerate(data["bids"]), key=lambda e: (-e[1]["price"], e[0]))]
    options = _options(data, data["offers"], data["bids"])
    order = [
        (s, b, route, cost)
        for b in bids
        for s in offers
        for s2, b2, route, _loss, cost in options
        if s2 is s and b2 is b and b["price"] - s["price"] - cost >= 0
    ]
    return _walk(data, order)


def oracle_combined_offer(data: dict[str, Any]) -> list[tuple]:
    """docs/market.md's combined-offer, from its text: every (offer, bid, route) with
    bid - ask - cost >= 0, highest first; ties: earlier bid, earlier offer, cheaper route."""
    bid_at = {q["id"]: i for i, q in enumerate(data["bids"])}
    offer_at = {q["id"]: i for i, q in enumerate(data["offers"])}
    ranked = []
    rank: dict[tuple[str, str], int] = {}
    for s, b, route, _loss, cost in _options(data, data["offers"], data["bids"]):
        k = rank[s["id"], b["id"]] = rank.get((s["id"], b["id"]), -1) + 1
        combined = b["price"] - s["price"] - cost
        if combined >= 0:
            ranked.append(((-combined, bid_at[b["id"]], offer_at[s["id"]], k), (s, b, route, cost)))
    return _walk(data, [c for _, c in sorted(ranked, key=lambda e: e[0])])


def two_routers(
    offers: list[tuple[str, str, int, float]],
    bids: list[tuple[str, str, int, float]],
    *,
    slots: int = 10,
    loss_price: float = 1.0,
    line_ohm: float = 0.3,
) -> dict[str, Any]:
    """Routers X and Y joined by line L; quotes (id, router, packets, price), each on a
    terminal of its own (T<id>) at that router; 48 V x 10 A packets of 4.9 ms."""
    terminals, ports = [], {"X": 1, "Y": 1}  # port 0: the line
    for kind, quotes in (("source", offers), ("load", bids)):
        for qid, router, _, _ in quotes:
            terminals.append({"id": f"T{qid}", "kind": kind, "at": f"{router}:{ports[router]}",
                              "max_current_a": 10.0, **TERMINAL})  # fmt: skip
            ports[router] += 1
    return {
        "name": "two-routers",
        "frame": {"slots": slots, "slot_ms": 5.0, "guard_us": 100.0},
        "costs": {"loss_price_per_j": loss_price},
        "routers": [{"id": r, "ports": ports[r]} for r in "XY"],
        "terminals": terminals,
        "lines": [
            {"id": "L", "a": "X:0", "b": "Y:0", "resistance_ohm": line_ohm, "max_current_a": 20.0}
        ],
        "offers": [
            {"id": q, "terminal": f"T{q}", "packets": n, "price": p} for q, _, n, p in offers
        ],
        "bids": [{"id": q, "terminal": f"T{q}", "packets": n, "price": p} for q, _, n, p in bids],
    }
