"""Deterministic scenario generators for benchmarks and tests.

Three families, all reproducible from (parameters, seed):

* ``ring``: a ring of 4-16 routers with chords across it, a few routers with storage,
  sources, loads and batteries around it, trades between neighbours (<= 3 hops).
* ``hotspot``: a ring whose loads sit at one router, with demand sized to about 95% of
  what that router's loads can take in a frame: the congested case.
* ``feeder``: a radial distribution feeder of 100-1000 routers (a random tree), a few tie
  SOPs between branches, prosumers trading with neighbours a few hops away.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

from bench.errors import ScenarioError

Family = Literal["ring", "hotspot", "feeder"]
FAMILIES: tuple[Family, ...] = ("ring", "hotspot", "feeder")
ROUTER_RANGE: dict[Family, tuple[int, int]] = {
    "ring": (4, 16),
    "hotspot": (4, 16),
    "feeder": (100, 1000),
}


@dataclass(frozen=True)
class GeneratorSpec:
    family: Family
    routers: int
    transfers: int
    slots: int = 1000
    seed: int = 0
    packets: int | None = None  # total packets; default ~20 per transfer
    slot_ms: float = 5.0

    def check(self) -> None:
        lo, hi = ROUTER_RANGE[self.family]
        if not lo <= self.routers <= hi:
            raise ScenarioError(
                "--routers",
                f"the {self.family} family takes {lo} to {hi} routers, not {self.routers}",
            )
        if self.transfers < 1:
            raise ScenarioError("--transfers", "must be at least 1")
        if not 10 <= self.slots <= 65535:
            raise ScenarioError("--slots", f"must be 10..65535, not {self.slots}")
        if self.packets is not None and self.packets < self.transfers:
            raise ScenarioError("--packets", "must be at least one per transfer")


class _Builder:
    def __init__(self, spec: GeneratorSpec) -> None:
        self.spec = spec
        self.rng = random.Random(f"{spec.family}:{spec.seed}")
        self.routers: list[dict[str, Any]] = []
        self.terminals: list[dict[str, Any]] = []
        self.lines: list[dict[str, Any]] = []
        self.sops: list[dict[str, Any]] = []
        self.next_port: dict[str, int] = {}
        self.adj: dict[str, list[str]] = {}

    def router(self, rid: str, storage: int = 0) -> None:
        entry: dict[str, Any] = {"id": rid, "ports": 0}
        if storage:
            entry["storage_packets"] = storage
        self.routers.append(entry)
        self.next_port[rid] = 0
        self.adj[rid] = []

    def port(self, rid: str) -> str:
        n = self.next_port[rid]
        self.next_port[rid] = n + 1
        return f"{rid}:{n}"

    def line(self, a: str, b: str, ohm: float, amps: float) -> None:
        self.lines.append(
            {
                "id": f"L{a}-{b}",
                "a": self.port(a),
                "b": self.port(b),
                "resistance_ohm": round(ohm, 4),
                "max_current_a": amps,
            }
        )
        self.adj[a].append(b)
        self.adj[b].append(a)

    def sop(self, a: str, b: str, watts: float) -> None:
        self.sops.append(
            {
                "id": f"SOP{a}-{b}",
                "a": self.port(a),
                "b": self.port(b),
                "max_power_w": watts,
                "loss_coeff": 0.02,
            }
        )
        self.adj[a].append(b)
        self.adj[b].append(a)

    def terminal(self, tid: str, kind: str, at: str, amps: float = 10.0) -> None:
        self.terminals.append(
            {
                "id": tid,
                "kind": kind,
                "at": self.port(at),
                "voltage_v": 48.0,
                "max_current_a": amps,
                "resistance_ohm": round(self.rng.uniform(0.01, 0.04), 4),
            }
        )

    def hops_from(self, start: str, limit: int) -> dict[str, int]:
        dist = {start: 0}
        queue = deque([start])
        while queue:
            node = queue.popleft()
            if dist[node] >= limit:
                continue
            for nxt in self.adj[node]:
                if nxt not in dist:
                    dist[nxt] = dist[node] + 1
                    queue.append(nxt)
        return dist

    def sinks_near(self, source: str, sinks: list[str], reach: int) -> list[str]:
        """Sinks within ``reach`` router hops of a source (farther if none): prosumers
        trade with their neighbours, as on a real bench."""
        at = {t["id"]: t["at"].split(":")[0] for t in self.terminals}
        options: list[str] = []
        while not options:
            near = self.hops_from(at[source], reach)
            options = sorted(s for s in sinks if s != source and at[s] in near)
            reach += 2
        return options

    def finish(self, transfers: list[dict[str, Any]]) -> dict[str, Any]:
        for r in self.routers:
            r["ports"] = max(1, self.next_port[r["id"]])
        s = self.spec
        return {
            "name": f"{s.family}-{s.routers}r-{s.transfers}t-s{s.seed}",
            "frame": {"slots": s.slots, "slot_ms": s.slot_ms, "guard_us": 100.0},
            "costs": {
                "loss_price_per_j": 0.001,
                "delay_price_per_slot": 0.0001,
                "hold_price_per_slot": 0.00005,
            },
            "routers": self.routers,
            "terminals": self.terminals,
            "lines": self.lines,
            "sops": self.sops,
            "transfers": transfers,
        }

    def split_packets(self) -> list[int]:
        s = self.spec
        total = s.packets if s.packets is not None else 20 * s.transfers
        weights = [self.rng.uniform(0.5, 1.5) for _ in range(s.transfers)]
        scale = (total - s.transfers) / sum(weights)
        counts = [1 + int(w * scale) for w in weights]
        for i in range(total - sum(counts)):
            counts[i % s.transfers] += 1
        return counts

    def transfer(self, n: int, src: str, snk: str, packets: int, min_window: int) -> dict[str, Any]:
        slots = self.spec.slots
        width = min(slots, max(min_window, self.rng.randint(slots // 4, slots)))
        release = self.rng.randint(0, slots - width)
        return {
            "id": f"T{n}",
            "source": src,
            "sink": snk,
            "packets": packets,
            "voltage_v": 48.0,
            "current_a": float(self.rng.choice([4, 5, 6, 8])),
            "release_slot": release,
            "deadline_slot": release + width - 1,
            "value": round(self.rng.uniform(0.5, 2.0), 3),
        }


def generate(spec: GeneratorSpec) -> dict[str, Any]:
    """A scenario dict (validate it with ``bench.parse_dict``)."""
    spec.check()
    if spec.family == "feeder":
        return _feeder(spec)
    return _ring(spec, hotspot=spec.family == "hotspot")


def _ring(spec: GeneratorSpec, hotspot: bool) -> dict[str, Any]:
    b, n = _Builder(spec), spec.routers
    rng = b.rng
    names = [f"R{i + 1}" for i in range(n)]
    for i, rid in enumerate(names):
        b.router(rid, storage=2 if i % 4 == 1 else 0)
    for i in range(n):
        b.line(names[i], names[(i + 1) % n], rng.uniform(0.05, 0.15), 25.0)
    for i in range(0, n // 2, 2):  # chords across the ring
        b.line(names[i], names[(i + n // 2) % n], rng.uniform(0.1, 0.2), 20.0)
    if n >= 6:
        b.sop(names[1], names[n // 2 + 1], 800.0)
    sources, sinks = [], []
    hot = names[n // 2]
    for i, rid in enumerate(names):
        if hotspot and rid == hot:
            for j in range(4):
                b.terminal(f"MEC{rid}-{j}", "load", rid)
                sinks.append(f"MEC{rid}-{j}")
            continue
        b.terminal(f"PV{rid}", "source", rid)
        sources.append(f"PV{rid}")
        if hotspot:
            continue
        kind = "storage" if i % 3 == 2 else "load"
        b.terminal(f"{'BAT' if kind == 'storage' else 'MEC'}{rid}", kind, rid)
        sinks.append(f"{'BAT' if kind == 'storage' else 'MEC'}{rid}")
        if kind == "storage":
            sources.append(f"BAT{rid}")
    counts = b.split_packets()
    if hotspot:
        # ~95% of what the hot router's loads can take in the frame
        capacity = len(sinks) * spec.slots
        scale = 0.95 * capacity / max(1, sum(counts))
        counts = [max(1, int(c * scale)) for c in counts]
    transfers = []
    for t in range(spec.transfers):
        src = rng.choice(sources)
        # hot spot: everyone buys at the hot router; otherwise trades are local
        snk = rng.choice(sinks) if hotspot else rng.choice(b.sinks_near(src, sinks, reach=3))
        transfers.append(b.transfer(t + 1, src, snk, counts[t], min_window=counts[t] + 10))
    if hotspot:
        for tr in transfers:  # the congested case: everyone wants the whole frame
            tr["release_slot"], tr["deadline_slot"] = 0, spec.slots - 1
    return b.finish(transfers)


def feeder_tree(b: _Builder, n: int) -> list[str]:
    """A radial feeder of ``n`` routers (a random tree) with a few tie SOPs between
    branches; the router names, root first."""
    rng = b.rng
    names = [f"N{i}" for i in range(n)]
    for i, rid in enumerate(names):
        b.router(rid, storage=2 if i % 10 == 5 else 0)
        if i:
            # a random tree that grows mostly along recent nodes: long laterals
            p = names[max(0, i - 1 - int(rng.expovariate(0.5)))]
            b.line(p, rid, rng.uniform(0.02, 0.08), 40.0)
    leaves = [r for r in names if len(b.adj[r]) == 1 and r != names[0]]
    for _ in range(max(2, n // 50)):  # tie SOPs between branches
        a, c = rng.sample(leaves, 2)
        if c not in b.adj[a]:
            b.sop(a, c, 1000.0)
    return names


def _feeder(spec: GeneratorSpec) -> dict[str, Any]:
    b, n = _Builder(spec), spec.routers
    rng = b.rng
    names = feeder_tree(b, n)
    sources, sinks = [], []
    for i, rid in enumerate(names):
        roll = i % 4
        if roll in (0, 1):
            b.terminal(f"PV{rid}", "source", rid)
            sources.append(f"PV{rid}")
        if roll in (1, 2, 3):
            kind = "storage" if roll == 3 and i % 8 == 3 else "load"
            tid = f"{'BAT' if kind == 'storage' else 'H'}{rid}"
            b.terminal(tid, kind, rid)
            sinks.append(tid)
            if kind == "storage":
                sources.append(tid)
    counts = b.split_packets()
    transfers = []
    for t in range(spec.transfers):
        src = rng.choice(sources)
        snk = rng.choice(b.sinks_near(src, sinks, reach=4))
        transfers.append(b.transfer(t + 1, src, snk, counts[t], min_window=counts[t] + 10))
    return b.finish(transfers)
