"""Header sealing benchmark: one bench frame of 2,000 packets over 3-5 hops.

Seals the frame as the controller does (inner + outer layers, ``seal_frame``), commits
every router's table as the routers do (``RouterHeaderState.commit``), opens every inner
entry as the meters do, on one core, and repeats it with each AEAD considered. Prints
one table (Markdown) for docs/benchmarks.md.

    .venv/bin/python benchmarks/headers.py [--runs 9]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import (
    AESGCM,
    AESGCMSIV,
    AESSIV,
    ChaCha20Poly1305,
)
from machine import describe  # benchmarks/machine.py, beside this script

from bench import Scenario, Topology, parse_dict
from bench.generate import GeneratorSpec, generate
from firmware_bridge.headers import (
    KeyRing,
    LayerKey,
    RouterHeaderState,
    SealingKeys,
    open_inner,
    seal_frame,
)
from firmware_bridge.headers.keys import Aead
from firmware_bridge.headers.seal import seal_outer_counts
from firmware_bridge.keystore import KeyStore
from scheduler import PlannedPacket, plan_transfers

PACKETS, MIN_HOPS, MAX_HOPS = 2000, 3, 5
TARGET_SEAL_PER_S, TARGET_FRAME_MS = 200_000, 50.0


class AesSivAdapter:
    """AES-SIV (RFC 5297) behind the nonce interface: the nonce becomes a second AD."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESSIV(key + key)  # AES-SIV takes two keys; the benchmark cares not

    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes:
        return self._aead.encrypt(data, [associated_data or b"", nonce])

    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes:
        return self._aead.decrypt(data, [associated_data or b"", nonce])


AEADS: dict[str, Callable[[bytes], Aead]] = {
    "AES-256-GCM-SIV (chosen)": AESGCMSIV,
    "AES-256-GCM": AESGCM,
    "ChaCha20-Poly1305": ChaCha20Poly1305,
    "AES-SIV (RFC 5297)": AesSivAdapter,
}


@dataclass
class Row:
    frame_ms: list[float]
    outer_entries: int
    seal_only_per_s: float
    open_per_s: float
    inner_per_s: float
    entry_bytes: int


def bench_frame() -> tuple[Scenario, Topology, list[PlannedPacket]]:
    """A 16-router ring planned by the greedy planner; the first 2,000 packets whose
    routes cross 3 to 5 routers."""
    spec = GeneratorSpec(family="ring", routers=16, transfers=200, slots=1000, seed=1, packets=6000)
    scenario, topology = parse_dict(generate(spec))
    plan = plan_transfers(scenario, topology, "greedy")
    chosen = [p for p in plan.packets if MIN_HOPS <= len(topology.hops(p.route)) <= MAX_HOPS]
    if len(chosen) < PACKETS:
        sys.exit(
            f"the generated frame has only {len(chosen)} packets of {MIN_HOPS}-{MAX_HOPS} hops"
        )
    return scenario, topology, chosen[:PACKETS]


def with_aead(keys: SealingKeys, rings: dict[str, KeyRing], make: Callable[[bytes], Aead]):
    """The same parties with fresh random keys under another AEAD (the origin of a key
    does not change the cost of using it)."""
    raw: dict[int, bytes] = {}

    def swap(k: LayerKey) -> LayerKey:
        secret = raw.setdefault(id(k.party), os.urandom(32))
        return LayerKey(k.layer, k.party, k.epoch, k.router_id, make(secret))

    sealing = SealingKeys(
        keys.epoch,
        {n: swap(k) for n, k in keys.outer.items()},
        {n: swap(k) for n, k in keys.inner.items()},
    )
    # the receivers hold the same secret as the controller for their party
    opened = {
        n: KeyRing(r.party, r.router_id, {e: swap(sealing_for(sealing, r)) for e in r.keys})
        for n, r in rings.items()
    }
    return sealing, opened


def sealing_for(keys: SealingKeys, ring: KeyRing) -> LayerKey:
    table = keys.outer if ring.party.kind == "router" else keys.inner
    return table[ring.party.name]


def measure(
    scenario: Scenario,
    topology: Topology,
    packets: list[PlannedPacket],
    keys: SealingKeys,
    rings: dict[str, KeyRing],
    runs: int,
) -> Row:
    frame_ms, seal_only, opened, inner_rates = [], [], [], []
    entry_bytes = 0
    outer_entries = 0
    for run in range(runs):
        frame = 1000 + run
        t0 = time.perf_counter()
        sealed = seal_frame(scenario, topology, keys, frame, packets)
        frame_ms.append((time.perf_counter() - t0) * 1e3)
        outer_entries = sealed.entries
        entry_bytes = max(len(b) for t in sealed.tables.values() for _, _, b in t)

        # the outer layer alone, same positions and fields, for a like-for-like open rate
        t0 = time.perf_counter()
        for router_id, table in sealed.tables.items():
            key = keys.outer[router_id]
            for slot, index, blob in table:
                seal_outer_counts(key, frame, slot, index, 1, 2, 4800, 800, blob[-32:])
        seal_only.append(outer_entries / (time.perf_counter() - t0))

        t0 = time.perf_counter()
        results = {
            rid: RouterHeaderState(rings[rid]).commit(frame, table)
            for rid, table in sealed.tables.items()
        }
        opened.append(outer_entries / (time.perf_counter() - t0))
        assert not any(r.refused for r in results.values())

        deliveries = [
            (rings[sink], e.inner, e.epoch, e.slot)
            for rid, r in results.items()
            for e in r.accepted
            if (sink := meter_at(scenario, rid, e.out_port)) is not None
        ]
        t0 = time.perf_counter()
        for ring, inner, epoch, slot in deliveries:
            open_inner(ring, inner, epoch=epoch, frame=frame, slot=slot)
        inner_rates.append(len(deliveries) / (time.perf_counter() - t0))
        assert len(deliveries) == len(packets)
    return Row(
        frame_ms,
        outer_entries,
        statistics.median(seal_only),
        statistics.median(opened),
        statistics.median(inner_rates),
        entry_bytes,
    )


_METERS: dict[tuple[str, int], str] = {}


def meter_at(scenario: Scenario, router_id: str, port: int) -> str | None:
    if not _METERS:
        _METERS.update({(t.port.router, t.port.port): t.id for t in scenario.terminals})
    return _METERS.get((router_id, port))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="frames sealed per AEAD")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    scenario, topology, packets = bench_frame()
    hops = sum(len(topology.hops(p.route)) for p in packets)
    with tempfile.TemporaryDirectory() as tmp:
        store = KeyStore.init(Path(tmp) / "keys", scenario)
        keys = store.sealing_keys()
        rings = {r.id: store.ring("router", r.id) for r in scenario.routers}
        rings |= {t.id: store.ring("terminal", t.id) for t in scenario.terminals}
    rows: dict[str, Row] = {}
    for name, make in AEADS.items():
        if make is AESGCMSIV:
            rows[name] = measure(scenario, topology, packets, keys, rings, args.runs)
        else:
            k, r = with_aead(keys, rings, make)
            rows[name] = measure(scenario, topology, packets, k, r, args.runs)
    print(report(rows, len(packets), hops, args.runs))
    return 0


def report(rows: dict[str, Row], packets: int, hops: int, runs: int) -> str:
    chosen = next(iter(rows.values()))
    first = next(iter(rows.values()))
    lines = [
        f"Frame: {packets} packets over {MIN_HOPS}-{MAX_HOPS} routers ({hops} router crossings, "
        f"{first.outer_entries} outer entries, {packets} inner entries); median of {runs} frames.",
        f"Machine: {describe('cryptography', note='pinned to one core')}.",
        "",
        "| AEAD | frame sealed, ms (median / worst) | outer entries sealed/s (whole frame) "
        "| outer only sealed/s | outer opened/s (router commit) | inner opened/s (meters) "
        "| bytes / outer entry | seal vs chosen | open vs chosen |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, row in rows.items():
        median = statistics.median(row.frame_ms)
        rate = row.outer_entries / (median / 1e3)
        chosen_rate = chosen.outer_entries / (statistics.median(chosen.frame_ms) / 1e3)
        lines.append(
            f"| {name} | {median:.1f} / {max(row.frame_ms):.1f} | {rate:,.0f} "
            f"| {row.seal_only_per_s:,.0f} | {row.open_per_s:,.0f} | {row.inner_per_s:,.0f} "
            f"| {row.entry_bytes} | {rate / chosen_rate:.2f}x "
            f"| {row.open_per_s / chosen.open_per_s:.2f}x |"
        )
    median = statistics.median(chosen.frame_ms)
    rate = chosen.outer_entries / (median / 1e3)
    verdicts = [
        f"sealing {rate:,.0f}/s vs >= {TARGET_SEAL_PER_S:,}/s: "
        + ("met" if rate >= TARGET_SEAL_PER_S else "MISSED"),
        f"whole frame {median:.1f} ms vs < {TARGET_FRAME_MS:.0f} ms: "
        + ("met" if median < TARGET_FRAME_MS else "MISSED"),
        f"opening {chosen.open_per_s:,.0f}/s vs sealing {rate:,.0f}/s (whole frame): "
        + ("met" if chosen.open_per_s >= rate else "MISSED"),
    ]
    if chosen.open_per_s < chosen.seal_only_per_s:
        verdicts.append(
            f"the outer layer alone seals faster ({chosen.seal_only_per_s:,.0f}/s) than a router "
            "opens it: opening also checks the clear header against the table position and "
            "builds the command record"
        )
    lines += ["", "Targets (chosen AEAD): " + "; ".join(verdicts) + "."]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
