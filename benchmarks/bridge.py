"""Bridge and twin benchmark: one table for docs/benchmarks.md.

* upload-and-commit time of the bench-4 frame (the planning issue's lr plan) to the twin,
  every router, over each transport;
* Modbus RTU on a pseudo-terminal paced like a 115200-baud line (the twin holds each
  reply until the request and the reply would have crossed such a line), against the
  line-rate bound; and unpaced, as fast as the kernel copies bytes;
* the framed protocol against Modbus RTU on the same port, paced and unpaced;
* the twin's DC bus for a 1,000-slot frame against real time.

    .venv/bin/python benchmarks/bridge.py [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from machine import describe  # benchmarks/machine.py, beside this script

from bench import Scenario, bundled_path, load_with_topology, parse_dict
from firmware_bridge.driver import Credentials, RouterDriver, new_session, open_driver
from firmware_bridge.headers import SealedFrame, seal_frame
from firmware_bridge.keystore import KeyStore
from scheduler import plan_transfers
from sim_hw.twin import Twin

BAUD = 115200
LINE_BYTES_S = BAUD / 10  # 8N1: ten bits a byte
TARGET_LINE, TARGET_FRAMED, TARGET_TWIN = 0.80, 2.0, 100.0


async def claimed(twin: Twin, **options: float) -> dict[str, RouterDriver]:
    """A driver per router, each router claimed (one session, watchdog off)."""
    keys, session = KeyStore.open(twin.keystore_dir).command_keys(), new_session()
    drivers = {
        r: open_driver(a, r, credentials=Credentials(keys[r], session), **options)
        for r, a in twin.addresses.items()
    }
    for d in drivers.values():
        await d.open()
        await d.set_watchdog(0)
    return drivers


async def upload(twin: Twin, sealed: SealedFrame, frame: int) -> float:
    """Seconds to upload and commit every router's bank (drivers already identified)."""
    drivers = await claimed(twin, timeout=2.0)
    try:
        t0 = time.perf_counter()
        for rid, d in drivers.items():
            rows = [blob for _, _, blob in sealed.tables.get(rid, [])]
            crc = await d.upload_bank(frame, rows)
            await d.commit(frame, crc)
        return time.perf_counter() - t0
    finally:
        for d in drivers.values():
            await d.close()


async def measure(
    store: KeyStore, sealed: list[SealedFrame], transport: str, line_baud: int | None
) -> dict[str, Any]:
    async with Twin(bundled_path(), store.path, transport=transport, line_baud=line_baud) as twin:
        times = []
        for i, frame in enumerate(sealed):
            before = twin.wire_bytes()
            times.append(await upload(twin, frame, frame.frame))
            if i == 0:
                after = twin.wire_bytes()
                wire = (after[0] - before[0]) + (after[1] - before[1])
        best = statistics.median(times)
    return {"s": best, "wire": wire}


def frame_1000(store_dir: Path) -> tuple[Scenario, Any, SealedFrame, KeyStore]:
    """bench-4 stretched to 1,000 slots with five times the packets."""
    import tomllib

    data = tomllib.loads(bundled_path().read_text())
    data["frame"]["slots"] = 1000
    for t in data["transfers"]:
        t["packets"] *= 5
        for k in ("release_slot", "deadline_slot"):
            if k in t:
                t[k] = min(999, t[k] * 5 + (4 if k == "deadline_slot" else 0))
    scenario, topology = parse_dict(data)
    store = KeyStore.init(store_dir, scenario)
    plan = plan_transfers(scenario, topology, "greedy")
    return (
        scenario,
        topology,
        seal_frame(scenario, topology, store.sealing_keys(), 1, plan.packets),
        store,
    )


async def twin_speed(runs: int) -> tuple[float, int, int]:
    """Real-time factor of the bus for one 1,000-slot frame: simulated s / wall s."""
    with tempfile.TemporaryDirectory() as tmp:
        scenario, _, sealed, store = frame_1000(Path(tmp) / "k")
        speeds = []
        for _ in range(runs):
            async with Twin(scenario, store.path, transport="tcp", accel=1.0) as twin:
                drivers = await claimed(twin)
                for rid, d in drivers.items():
                    rows = [b for _, _, b in sealed.tables.get(rid, [])]
                    await d.commit(1, await d.upload_bank(1, rows))
                start = (await drivers["R1"].read_clock()).t_router_us + 100_000
                for d in drivers.values():
                    await d.arm(1, start)
                end = start + scenario.frame.slots * scenario.frame.slot_ms * 1000
                t0 = time.perf_counter()
                twin.advance(end)  # the whole frame at once, as fast as the model goes
                wall = time.perf_counter() - t0
                for d in drivers.values():  # a release aborts what is armed: after the frame
                    await d.close()
                delivered = sum(
                    int(n) for r in twin.routers.values() for n, _ in r.attribution.values()
                )
                speeds.append(scenario.frame.length_s / wall)
        return statistics.median(speeds), sealed.entries, delivered


async def main(runs: int) -> None:
    scenario, topology = load_with_topology(bundled_path())
    plan = plan_transfers(scenario, topology, "lr")
    with tempfile.TemporaryDirectory() as tmp:
        store = KeyStore.init(Path(tmp) / "k", scenario)
        sealed = [
            seal_frame(scenario, topology, store.sealing_keys(), f, plan.packets)
            for f in range(1, runs + 1)
        ]
        entries = sealed[0].entries
        payload = 64 * entries  # bank bytes (entries + pad bytes)
        rows = {}
        for transport in ("tcp", "rtu", "serial"):
            rows[transport, None] = await measure(store, sealed, transport, None)
        for transport in ("rtu", "serial"):
            rows[transport, BAUD] = await measure(store, sealed[:2], transport, BAUD)
    speed, entries_1000, delivered = await twin_speed(runs)

    print(
        f"bench-4 lr plan: {len(plan.packets)} packets, {entries} slot-table entries over "
        f"4 routers ({payload} bank bytes); median of {runs} uploads (2 when paced)."
    )
    print(f"Machine: {describe('pymodbus', 'pyserial')}.\n")
    cols = ["transport", "line", "upload + commit, 4 routers (ms)", "bank bytes/s"]
    cols += ["wire bytes", "wire bytes/s", "of line rate"]
    print("| " + " | ".join(cols) + " |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    names = {"tcp": "Modbus TCP", "rtu": "Modbus RTU", "serial": "framed serial"}
    for (transport, baud), r in rows.items():
        line = (
            "loopback"
            if transport == "tcp"
            else (f"pty paced at {baud}" if baud else "pty, unpaced")
        )
        wire = r["wire"] if transport != "tcp" else None
        rate = f"{wire / r['s']:,.0f}" if wire else "-"
        share = f"{wire / r['s'] / LINE_BYTES_S:.0%}" if wire and baud else "-"
        print(
            f"| {names[transport]} | {line} | {r['s'] * 1000:,.1f} | {payload / r['s']:,.0f} | "
            f"{wire if wire else '-'} | {rate} | {share} |"
        )
    paced_rtu, paced_framed = rows["rtu", BAUD], rows["serial", BAUD]
    rtu_share = paced_rtu["wire"] / paced_rtu["s"] / LINE_BYTES_S
    ratio_paced = paced_rtu["s"] / paced_framed["s"]
    ratio_raw = rows["rtu", None]["s"] / rows["serial", None]["s"]
    print(
        f"\nTwin: one 1,000-slot frame ({entries_1000} entries, {delivered} packets delivered) "
        f"evaluated {speed:,.0f}x faster than real time.\n"
    )

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    print(
        f"Targets: Modbus RTU at {BAUD} baud uses {rtu_share:.0%} of the line rate vs >= 80%: "
        f"{verdict(rtu_share >= TARGET_LINE)}; framed vs Modbus RTU on the same port "
        f"{ratio_paced:.2f}x paced, {ratio_raw:.2f}x unpaced vs >= 2x: paced "
        f"{verdict(ratio_paced >= TARGET_FRAMED)}, unpaced {verdict(ratio_raw >= TARGET_FRAMED)}; "
        f"twin {speed:,.0f}x real time vs >= 100x: {verdict(speed >= TARGET_TWIN)}."
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.runs)))
