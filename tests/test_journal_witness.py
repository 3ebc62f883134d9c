"""The journal's end, witnessed outside the file (issue 13): a run keeps the journal's
signed head with the key store's frame reservation, so ``ppr journal verify`` sees a
cut-off tail, tells it apart from a controller that stopped between reserving a frame
and journaling it, and a run refuses to append to a cut journal."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from firmware_bridge.keystore import KeyStore
from router.controller.session import Session
from router.journal import Entry, Journal, JournalCorruptError, read_records
from router.journal.witness import make_witness, parse_witness
from tests.bench_process import ppr
from tests.controller_support import bench, config

pytestmark = pytest.mark.timeout(180)


def verify(journal: Path, keys: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ppr("journal", "verify", str(journal), "--keys", str(keys)),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def cut(journal: Path, keep: int) -> None:
    with sqlite3.connect(journal) as conn:
        conn.execute("DELETE FROM records WHERE seq > ?", (keep,))


async def test_a_cut_tail_is_seen_and_never_appended_to(tmp_path: Path):
    keys, journal = tmp_path / "keys", tmp_path / "out" / "journal.sqlite"
    result = await Session(config(tmp_path, bench(), frames=2)).run()
    records = list(read_records(journal))
    # the run's witness is the journal's last record, signed, kept in the key store
    kept = parse_witness(KeyStore.open(keys).witness(records[0].hash.hex()) or {})
    assert kept is not None and kept == result.witness
    assert (kept.records, kept.head, kept.frame) == (len(records), records[-1].hash.hex(), None)
    whole = verify(journal, keys)
    assert whole.returncode == 0 and whole.stdout.startswith(f"{journal}: ok, {len(records)} ")
    assert f"its end matches its witness (record {len(records)}, written " in whole.stdout

    keep = len(records) - 3  # the last frame's settlement and summary, and the stop record
    cut(journal, keep)
    shorter = verify(journal, keys)
    assert shorter.returncode == 1 and shorter.stdout == ""
    assert shorter.stderr == (
        f"{journal}: cut off: {keep} records, but its witness (written {kept.time} at the end "
        f"of a run) counts {len(records)}: records {keep + 1}..{len(records)} are missing\n"
    )
    with pytest.raises(JournalCorruptError, match=rf"cut off: {keep} records, .* refusing to"):
        await Session(config(tmp_path, bench(), frames=1)).run()
    assert len(list(read_records(journal))) == keep  # nothing appended


def test_a_stop_between_reservation_and_journal_write_is_not_a_cut(tmp_path: Path):
    """What the frame loop does for each frame, stopped after its first step: the frame
    is reserved (the witness in the same write), and the controller dies before the
    journal hears of it. Nothing is missing, and verify says what happened."""
    store = KeyStore.init(tmp_path / "keys", bench())
    path = tmp_path / "journal.sqlite"
    with Journal.open(path, store.signing_key()) as journal:
        journal.append("frame", {"phase": "reserved"}, frame=store.reserve_frame(1))

        def witness(frame: int) -> tuple[str, dict[str, object]]:
            w = make_witness(journal, frame)
            return w.journal, w.model_dump(mode="json")

        reserved = store.reserve_frame(journal.next_frame(), witness)
    assert reserved == 2
    crashed = verify(path, store.path)
    assert crashed.returncode == 0, crashed.stderr
    assert crashed.stdout.endswith(
        "witnessed to record 2; frame 2 was reserved but never journaled: the controller "
        "stopped between the reservation and the journal write, and no record is missing\n"
    )
    shutil.copy(path, tmp_path / "copy.sqlite")  # the same journal, one record cut off
    cut(tmp_path / "copy.sqlite", 1)
    shorter = verify(tmp_path / "copy.sqlite", store.path)
    assert shorter.returncode == 1
    assert "cut off: 1 record, but its witness (written " in shorter.stderr
    assert "with frame 2's reservation) counts 2: record 2 is missing" in shorter.stderr


async def test_a_restart_on_a_long_journal_runs_its_first_frame(tmp_path: Path):
    """A bench that ran for a while (thousands of records) restarts on its folder: checking
    every record and the witness takes seconds, which must pass before the routers are
    claimed (their watchdogs run from the claim), not with the fleet waiting for a
    heartbeat; the first frame runs on every router, no alarm."""
    scenario = bench()
    store = KeyStore.init(tmp_path / "keys", scenario)
    records = 20_000  # seconds to check (~10,000 a second); a claimed router waits 1 s
    with Journal.open(
        tmp_path / "out" / "journal.sqlite",
        store.signing_key(),
        genesis={"scenario": scenario.name},
    ) as journal:
        journal.append_many(
            [Entry("meters", {"energy_j": f / 2, "note": "x" * 200}, f) for f in range(1, records)]
        )
        store.keep_witness(journal.genesis_hash.hex(), make_witness(journal, None).model_dump())
    result = await Session(config(tmp_path, scenario, frames=2)).run()
    assert [(o.frame, o.skipped) for o in result.outcomes] == [
        (records, False),
        (records + 1, False),
    ]
    assert result.alarms == []
    assert result.verified.ok
