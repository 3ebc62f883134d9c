"""Seeded VPP instances: houses with a load, PV on some roofs, batteries on fewer.

Profiles are plausible, not measured: a morning and an evening load peak, PV as a
clear-sky half sine scaled by a per-day cloudiness, a time-of-use grid tariff.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def peer_graph(n: int, peers: int) -> list[list[int]]:
    """Each prosumer's peers: the ``peers // 2`` nearest on each side of a ring and, for
    odd ``peers``, the one opposite (with an odd ``n`` the last prosumer has no one
    opposite, so it has one peer fewer). Links go both ways; every list names all."""
    if not 0 <= peers < max(n, 1):
        raise ValueError(f"peers {peers}: give 0 to {n - 1}")
    near: list[set[int]] = [set() for _ in range(n)]
    for i in range(n):
        for k in range(1, peers // 2 + 1):
            near[i].add((i + k) % n)
            near[(i + k) % n].add(i)
    if peers % 2:
        half = n // 2
        for i in range(half):
            near[i].add(i + half)
            near[i + half].add(i)
    return [sorted(s - {i}) for i, s in enumerate(near)]


def generate_vpp(
    prosumers: int = 30, periods: int = 24, seed: int = 0, peers: int = 3
) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    h = 24.0 / periods
    hours = (np.arange(periods) + 0.5) * h
    peak = (hours >= 17) & (hours < 21)
    night = (hours < 7) | (hours >= 23)
    buy = np.where(peak, 0.38, np.where(night, 0.18, 0.28))
    sell = np.full(periods, 0.06)
    sun = np.clip(np.sin(math.pi * (hours - 6.0) / 13.0), 0.0, None)
    cloud = rng.uniform(0.6, 1.0)
    ids = [f"h{i:0{len(str(prosumers - 1))}d}" for i in range(prosumers)]
    rows = []
    for pid in ids:
        base = rng.uniform(0.2, 0.5)
        shape = (
            base
            + rng.uniform(0.3, 1.0) * np.exp(-(((hours - 7.5) / 1.2) ** 2))
            + rng.uniform(0.6, 1.8) * np.exp(-(((hours - 19.0) / 1.8) ** 2))
        )
        load = shape * rng.uniform(0.9, 1.1, periods)
        has_pv = rng.random() < 0.6
        pv = sun * cloud * rng.uniform(2.0, 6.0) * rng.uniform(0.85, 1.0, periods)
        battery = float(rng.choice([5.0, 10.0, 13.5])) if has_pv and rng.random() < 0.5 else 0.0
        row: dict[str, Any] = {
            "id": pid,
            "load_kw": [round(float(v), 3) for v in load],
            "pv_kw": [round(float(v), 3) if has_pv else 0.0 for v in pv],
            "battery_kwh": battery,
            "battery_kw": round(battery / 2.5, 2) if battery else 0.0,
            "efficiency": 0.95,
            "soc0": 0.3,
            "grid_kw": 10.0,
        }
        rows.append(row)
    for row, near in zip(rows, peer_graph(prosumers, peers), strict=True):
        if peers:
            row["peers"] = [ids[j] for j in near]
    return {
        "name": f"vpp-{prosumers}x{periods}-s{seed}",
        "dayahead": {
            "periods": periods,
            "period_h": h,
            "grid_buy_price": [round(float(v), 4) for v in buy],
            "grid_sell_price": [round(float(v), 4) for v in sell],
            "p2p_fee": 0.01,
        },
        "prosumers": rows,
    }
