"""Small scenario builders for tests."""

from __future__ import annotations

import copy
from typing import Any

TERMINAL = {"voltage_v": 48.0, "max_current_a": 10.0, "resistance_ohm": 0.02}


def chain(storage_b: int = 0, slots: int = 10, **costs: float) -> dict[str, Any]:
    """Routers A - B - C in a line. S1, S2 at A; S3 at B; L1, L2 at C; L3 at B."""
    return {
        "name": "chain",
        "frame": {"slots": slots, "slot_ms": 5.0, "guard_us": 100.0},
        "costs": {
            "loss_price_per_j": 0.0,
            "delay_price_per_slot": 0.01,
            "hold_price_per_slot": 0.001,
        }
        | costs,
        "routers": [
            {"id": "A", "ports": 4},
            {"id": "B", "ports": 4, "storage_packets": storage_b},
            {"id": "C", "ports": 4},
        ],
        "terminals": [
            {"id": "S1", "kind": "source", "at": "A:0", **TERMINAL},
            {"id": "S2", "kind": "source", "at": "A:1", **TERMINAL},
            {"id": "S3", "kind": "source", "at": "B:2", **TERMINAL},
            {"id": "L1", "kind": "load", "at": "C:1", **TERMINAL},
            {"id": "L2", "kind": "load", "at": "C:2", **TERMINAL},
            {"id": "L3", "kind": "load", "at": "B:3", **TERMINAL},
        ],
        "lines": [
            {"id": "AB", "a": "A:2", "b": "B:0", "resistance_ohm": 0.1, "max_current_a": 20.0},
            {"id": "BC", "a": "B:1", "b": "C:0", "resistance_ohm": 0.1, "max_current_a": 20.0},
        ],
        "transfers": [],
    }


def transfer(tid: str, source: str, sink: str, packets: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": tid,
        "source": source,
        "sink": sink,
        "packets": packets,
        "voltage_v": 48.0,
        "current_a": 5.0,
        "value": 1.0,
    } | extra


def with_changes(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``base`` with ``path`` (``lines.0.resistance_ohm``) set."""
    data = copy.deepcopy(base)
    node: Any = data
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node[part]
    last = parts[-1]
    if value is _DELETE:
        del node[last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return data


_DELETE = object()
DELETE = _DELETE
