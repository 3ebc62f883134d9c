"""Controller benchmark: the frame pipeline against the frame length, per link.

The whole controller (``router.controller.Session``: clocks, plan, seal, upload, commit,
arm, meters, settlement, journal) runs the bundled bench-4 (200 slots of 5 ms, 240
packets a frame, the default ``lr`` options) on the in-process twin:

* Modbus TCP on loopback: plan + seal + upload + commit per frame against the 1 s frame
  (target: under 10 %), with the planner's default budget (its iterations stop after 4 %
  of the frame) and without one, to show what the budget costs in gap (from the second
  frame on, lr starts from the last frame's plan and prices: at most 60 iterations);
* Modbus RTU and the framed protocol on a pseudo-terminal paced like a 115200-baud line
  (``--line-baud``): a frame is uploaded while the one before runs, so when the upload
  does not fit, each frame starts late. One frame plus its lateness (the frame cycle)
  is about the shortest frame that link sustains for this traffic; runs with frames
  that long and longer (the same 200 slots and packets, longer slots; the planner's
  budget grows with the frame) find the shortest one at which no frame starts late.

The first frame of each run (Numba's cache load, the first plan, cold) is left out of the
medians.

    .venv/bin/python benchmarks/controller.py [--frames 6] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import sys
import tempfile
import tomllib
from pathlib import Path

from machine import describe  # benchmarks/machine.py, beside this script

from bench import Scenario, bundled_path, parse_dict
from router.controller.outcome import FrameOutcome, RunOptions
from router.controller.session import Session, SessionConfig
from scheduler import LrOptions

BAUD = 115200
TARGET_SHARE = 0.10  # of the frame, for plan + seal + upload + commit over TCP
STEP_S = 0.2  # frame lengths tried: the cycle rounded up to this, then this much longer
TRIES = 4
ON_TIME_MS = 1.0  # a frame that starts this late or less started on time
NAMES = {"tcp": "Modbus TCP", "rtu": "Modbus RTU", "serial": "framed serial"}


def bench(frame_s: float | None = None) -> Scenario:
    """bench-4 as shipped, or with its 200 slots stretched to ``frame_s`` seconds."""
    data = tomllib.loads(bundled_path().read_text())
    if frame_s is not None:
        data["frame"]["slot_ms"] = frame_s * 1000 / data["frame"]["slots"]
    return parse_dict(data)[0]


async def run(
    scenario: Scenario,
    transport: str,
    line_baud: int | None,
    frames: int,
    tmp: Path,
    options: RunOptions | None = None,
) -> list[FrameOutcome]:
    config = SessionConfig(
        scenario=scenario,
        out_dir=tmp / f"{transport}-{scenario.frame.slot_ms:g}-{len(list(tmp.iterdir()))}",
        keys_dir=tmp / "keys",
        transport=transport,
        line_baud=line_baud,
        options=options or RunOptions(frames=frames),
    )
    session = Session(config, on_alarm=lambda text: print(f"  alarm: {text}", file=sys.stderr))
    result = await session.run()
    skipped = [o.frame for o in result.outcomes if o.skipped]
    if skipped:
        raise SystemExit(f"{transport}: frames {skipped} were skipped: {result.alarms}")
    return result.outcomes[1:]  # steady state


TCP_FRAMES = 20  # frames of 1 s: enough for a median and a worst case


def med(outcomes: list[FrameOutcome], key: str) -> float:
    return statistics.median(getattr(o, key) for o in outcomes)


async def main(frames: int, quick: bool) -> None:
    base = bench()
    frame_s = base.frame.length_s
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        tcp_frames = max(frames, TCP_FRAMES)
        tcp = await run(base, "tcp", None, tcp_frames, tmp)
        uncapped = RunOptions(frames=tcp_frames, lr=LrOptions(time_limit_s=math.inf))
        tcp_full = await run(base, "tcp", None, tcp_frames, tmp, uncapped)
        serial = {}
        if not quick:
            for transport in ("rtu", "serial"):
                measured = await run(base, transport, BAUD, frames, tmp)
                cycle = frame_s + med(measured, "late_ms") / 1000
                tried: list[tuple[float, float]] = []
                length = math.ceil(cycle / STEP_S - 1e-9) * STEP_S
                for _ in range(TRIES):
                    outcomes = await run(bench(length), transport, BAUD, frames, tmp)
                    tried.append((length, max(o.late_ms for o in outcomes)))
                    if tried[-1][1] <= ON_TIME_MS:
                        break
                    length += STEP_S
                serial[transport] = (measured, cycle, tried)

    packets = tcp[0].packets_planned
    print(
        f"bench-4: {packets} packets a frame of {base.frame.slots} slots x "
        f"{base.frame.slot_ms:g} ms; medians over frames 2-{max(frames, TCP_FRAMES)} of a "
        f"TCP run and 2-{frames} of a serial one; 'worst' is the slowest of those frames."
    )
    print(f"Machine: {describe('pymodbus', 'pyserial', 'numba')}.\n")
    cols = ["link", "planner", "plan", "seal", "upload", "commit", "sum (ms)"]
    cols += ["of the 1 s frame", "worst (ms)", "certified gap", "late (ms)"]
    print("| " + " | ".join(cols) + " |")
    print("| --- | --- | " + " | ".join("---:" for _ in cols[2:]) + " |")
    keys = ("plan_ms", "seal_ms", "upload_ms", "commit_ms")
    rows = [("Modbus TCP, loopback", "4 % of the frame", tcp)]
    rows.append(("Modbus TCP, loopback", "no time budget", tcp_full))
    rows += [(f"{NAMES[t]}, {BAUD} baud", "4 % of the frame", r[0]) for t, r in serial.items()]
    for link, planner, outcomes in rows:
        t = sum(med(outcomes, k) for k in keys)
        worst = max(sum(getattr(o, k) for k in keys) for o in outcomes)
        cells = " | ".join(f"{med(outcomes, k):.1f}" for k in keys)
        print(
            f"| {link} | {planner} | {cells} | {t:.1f} | {t / 1000 / frame_s:.1%} "
            f"| {worst:.1f} | {med(outcomes, 'gap'):.2%} | {med(outcomes, 'late_ms'):.0f} |"
        )
    total = sum(med(tcp, k) for k in keys)
    share = total / 1000 / frame_s
    verdict = "met" if share < TARGET_SHARE else "MISSED"
    print(f"\nTarget: plan + seal + upload + commit over Modbus TCP {share:.1%} of the frame "
          f"vs < {TARGET_SHARE:.0%}: {verdict}.")  # fmt: skip
    if serial:
        print("\n| link | frame cycle at 1 s frames (s) | frames tried (s): latest start (ms) |")
        print("| --- | ---: | --- |")
        for transport, (_, cycle, tried) in serial.items():
            runs = ", ".join(f"{length:.1f}: {late:.0f}" for length, late in tried)
            print(f"| {NAMES[transport]}, {BAUD} baud | {cycle:.2f} | {runs} |")
        print()
        for transport, (_, _, tried) in serial.items():
            length, late = tried[-1]
            if late <= ON_TIME_MS:
                print(f"{NAMES[transport]} at {BAUD} baud sustains frames of {length:.1f} s.")
            else:
                print(f"{NAMES[transport]} at {BAUD} baud: no length tried was sustained.")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=6, help="frames a run (default 6)")
    parser.add_argument("--quick", action="store_true", help="Modbus TCP only")
    args = parser.parse_args()
    asyncio.run(main(args.frames, args.quick))
