"""Controller services benchmark: journal appends (fsynced) and MQTT publishing.

Journal: records of a typical meter payload appended one per transaction (WAL,
synchronous=FULL: one fsync each), and in batches (``append_many``: one fsync per
batch); then a full ``verify_journal``. MQTT: frame summaries through a real local
Mosquitto (QoS 1, acknowledged), timed from the first enqueue until the outbox is empty
and until a subscriber has them all; plus the enqueue cost the frame loop pays. Prints
one Markdown table for docs/benchmarks.md.

    .venv/bin/python benchmarks/services.py [--records 2000] [--messages 20000] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiomqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from machine import describe  # benchmarks/machine.py, beside this script

from router.journal import Entry, Journal, verify_journal
from router.journal.records import canonical_payload
from router.mqtt import MqttFeed, Topics, parse_broker_url
from router.mqtt.doc import EXAMPLES
from tests.mosquitto import MOSQUITTO, Broker

METER = {  # about what the frame loop journals per router and frame
    "router": "R2",
    "ports": [{"port": p, "energy_j": -141.1 + p, "voltage_v": 47.9, "current_a": -8.0}
              for p in range(4)],
    "counters": {"rejected": 0, "replays": 0, "collisions": 0, "watchdog_trips": 0},
}  # fmt: skip


Row = tuple[str, float, str]  # what, value, unit (higher is better, except "us/message")


def journal_rows(directory: Path, records: int) -> list[Row]:
    key = Ed25519PrivateKey.generate()
    rows: list[Row] = []
    for batch in (1, 10, 100):
        path = directory / f"journal-{batch}.sqlite"
        path.unlink(missing_ok=True)
        with Journal.open(path, key) as j:
            start = time.perf_counter()
            for i in range(0, records, batch):
                if batch == 1:
                    j.append("meters", METER, frame=i)
                else:
                    j.append_many([Entry("meters", METER, i + k) for k in range(batch)])
            rate = records / (time.perf_counter() - start)
        what = "one record per append" if batch == 1 else f"append_many, {batch} per batch"
        rows.append((f"journal append, {what} (one fsync each)", rate, "records/s"))
    rows.append(
        ("raw write + fsync of 4 kB on this disk, for scale", fsyncs(directory), "fsyncs/s")
    )
    start = time.perf_counter()
    report = verify_journal(directory / "journal-1.sqlite", key.public_key().public_bytes_raw())
    assert report.ok
    rate = report.records / (time.perf_counter() - start)
    rows.append(("journal verify (hash chain + Ed25519)", rate, "records/s"))
    return rows


def fsyncs(directory: Path, count: int = 200) -> float:
    """What the disk allows: an append's fsync cannot beat this rate."""
    fd = os.open(directory / "fsync-probe", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        start = time.perf_counter()
        for _ in range(count):
            os.write(fd, b"x" * 4096)
            os.fsync(fd)
        return count / (time.perf_counter() - start)
    finally:
        os.close(fd)


async def mqtt_rows(directory: Path, messages: int) -> list[Row]:
    summary = EXAMPLES["frame"]
    with Broker(directory / "broker") as broker:
        received = 0
        done = asyncio.Event()
        async with aiomqtt.Client("127.0.0.1", broker.port) as sub:
            await sub.subscribe("ppr/bench/frame", qos=1)

            async def count() -> None:
                nonlocal received
                async for _ in sub.messages:
                    received += 1
                    if received == messages:
                        done.set()

            counter = asyncio.create_task(count())
            topics = Topics("ppr/bench")
            async with MqttFeed(
                parse_broker_url(broker.url()), topics, buffer_messages=messages
            ) as feed:
                while not feed.stats.connected:
                    await asyncio.sleep(0.01)
                start = time.perf_counter()
                for _ in range(messages):
                    feed.publish_frame(summary)  # type: ignore[arg-type]
                enqueued = time.perf_counter()
                assert await feed.flush(300)
                acked = time.perf_counter()
                await asyncio.wait_for(done.wait(), 300)
                delivered = time.perf_counter()
                assert feed.stats.dropped == 0
            counter.cancel()
            await asyncio.gather(counter, return_exceptions=True)
    size = len(summary.model_dump_json())
    enqueue_us = (enqueued - start) / messages * 1e6
    return [
        ("MQTT enqueue (what the frame loop pays)", enqueue_us, "us/message"),
        (f"MQTT publish, QoS 1, until acknowledged ({size} B frame summaries)",
         messages / (acked - start), "messages/s"),
        ("MQTT publish, QoS 1, until a subscriber has them", messages / (delivered - start),
         "messages/s"),
    ]  # fmt: skip


def best(runs: list[list[Row]]) -> list[Row]:
    """Per row, the best of the runs (others share this machine: the best is the least
    disturbed)."""
    out = []
    for rows in zip(*runs, strict=True):
        what, _, unit = rows[0]
        values = [r[1] for r in rows]
        out.append((what, min(values) if unit == "us/message" else max(values), unit))
    return out


def machine(directory: Path) -> str:
    fs = subprocess.run(
        ["df", "--output=fstype", str(directory)], capture_output=True, text=True, check=False
    ).stdout.split()[-1]
    mosq = subprocess.run([MOSQUITTO, "-h"], capture_output=True, text=True, check=False)
    mosq_version = mosq.stdout.splitlines()[0].split()[-1] if mosq.stdout else "?"
    return (
        f"Machine: {describe('aiomqtt')}, SQLite {sqlite3.sqlite_version}, "
        f"Mosquitto {mosq_version}; journal on {fs}."
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=3, help="best of this many (default 3)")
    parser.add_argument(
        "--dir", type=Path, default=None, help="where the journals go (default: a temp dir)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        directory = Path(tmp)
        runs = []
        for run in range(args.runs):
            rows = journal_rows(directory, args.records)
            rows += asyncio.run(mqtt_rows(directory / f"mqtt-{run}", args.messages))
            runs.append(rows)
        size = len(canonical_payload(METER))
        print(
            f"{args.records} journal records ({size} B payload), {args.messages} MQTT "
            f"messages; best of {args.runs} runs. Load average {os.getloadavg()[0]:.1f}."
        )
        print(machine(directory))
    print()
    print("| what | throughput |")
    print("| --- | ---: |")
    for what, value, unit in best(runs):
        number = f"{value:.1f}" if unit == "us/message" else f"{value:,.0f}"
        print(f"| {what} | {number} {unit} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
