"""Tiny markets and a brute-force oracle for them, written apart from scheduler.market.

The triangle bench: routers A, B, C; lines AB and BC, an SOP from C to A. Sellers P1 (at
A) and P2 (at B), buyers Q1 (at C) and Q2 (a battery at A). Frames of two or three slots
make the one-packet-per-slot limits bind. The oracle enumerates every integer amount on
every (seller quote, buyer quote, simple route) with each resource carrying at most one
packet per slot in either direction, and prices losses from the physics of docs/design.md.
"""

from __future__ import annotations

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


def _loss_j(data: dict[str, Any], route: list[str], volts: float, amps: float) -> float:
    tau = data["frame"]["slot_ms"] / 1000 - data["frame"]["guard_us"] / 1e6
    ohms = {t["id"]: t["resistance_ohm"] for t in data["terminals"]}
    ohms |= {x["id"]: x["resistance_ohm"] for x in data.get("lines", [])}
    coeff = {x["id"]: x["loss_coeff"] for x in data.get("sops", [])}
    return sum(
        coeff[r] * volts * amps * tau if r in coeff else amps * amps * ohms[r] * tau for r in route
    )


def oracle_welfare(data: dict[str, Any], without: str | None = None) -> float:
    """The best welfare over every integer allocation, optionally without one quote."""
    offers = [q for q in data["offers"] if q["id"] != without]
    bids = [q for q in data["bids"] if q["id"] != without]
    terms = {t["id"]: t for t in data["terminals"]}
    quoting = [terms[q["terminal"]] for q in data["offers"] + data["bids"]]
    volts, amps = quoting[0]["voltage_v"], min(t["max_current_a"] for t in quoting)
    price_j = data["costs"]["loss_price_per_j"]
    options = []  # (seller id, buyer id, resources, gain per packet)
    for s in offers:
        for b in bids:
            for route in _routes(data, s["terminal"], b["terminal"], volts, amps):
                loss = price_j * _loss_j(data, route, volts, amps)
                options.append((s["id"], b["id"], route, b["price"] - s["price"] - loss))
    left = {q["id"]: q["packets"] for q in offers + bids}
    room: dict[str, int] = {}
    for _, _, route, _ in options:
        for r in route:
            room[r] = data["frame"]["slots"]
    best = 0.0

    def search(j: int, total: float) -> None:
        nonlocal best
        if j == len(options):
            best = max(best, total)
            return
        s, b, route, gain = options[j]
        most = min(left[s], left[b], *(room[r] for r in route))
        for n in range(most + 1):
            left[s] -= n
            left[b] -= n
            for r in route:
                room[r] -= n
            search(j + 1, total + n * gain)
            left[s] += n
            left[b] += n
            for r in route:
                room[r] += n

    search(0, 0.0)
    return best
