"""The signed, hash-chained journal: appends, verification, tampering, crashes."""

from __future__ import annotations

import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench import bundled_path, load_scenario
from firmware_bridge.keystore import KeyStore
from router.journal import (
    Entry,
    Journal,
    JournalCorruptError,
    JournalKeyError,
    JournalLockedError,
    RecordError,
    verify_journal,
)

ROOT = Path(__file__).parents[1]
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PUBLIC = KEY.public_key().public_bytes_raw()


def write_journal(path: Path, frames: int = 4, key: Ed25519PrivateKey = KEY) -> None:
    with Journal.open(path, key, genesis={"scenario": "bench-4"}) as j:
        for f in range(1, frames + 1):
            j.append("plan", {"frame": f, "packets": 10 * f, "note": "ok"}, frame=f)
            j.append_many([Entry("meters", {"j": f * 1.5}, f), Entry("settlement", {"n": f}, f)])
        j.append("stop", {"clean": True})


def bad_seq(path: Path, key: bytes = PUBLIC) -> int | None:
    report = verify_journal(path, key)
    assert not report.ok
    assert report.bad is not None
    return report.bad.seq


def execute(path: Path, sql: str, *args: object) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute(sql, args)
        conn.commit()
    finally:
        conn.close()


def test_records_chain_verify_and_a_reopened_journal_resumes(tmp_path: Path):
    path = tmp_path / "j.sqlite"
    write_journal(path)
    report = verify_journal(path, PUBLIC)
    assert report.ok, report.one_line()
    assert (report.records, report.first_frame, report.last_frame) == (1 + 4 * 3 + 1, 1, 4)
    with Journal.open(path, KEY, check="full") as j:
        assert j.last_frame() == 4 and j.next_frame() == 5
        records = list(j.records())
        assert [r.seq for r in records] == list(range(1, 15))
        assert records[0].kind == "genesis"
        assert records[0].payload == {
            "format": 1,
            "scenario": "bench-4",
            "signing_key": PUBLIC.hex(),
        }
        assert records[1].payload == {"frame": 1, "note": "ok", "packets": 10}
        assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(records))
        # a settlement of an earlier frame may land after the plan of a later one
        j.append("settlement", {"late": True}, frame=2)
        assert j.next_frame() == 5
    with Journal.open(path, KEY) as j:
        assert j.next_frame() == 5
        assert j.tail().payload == {"late": True}


def test_new_journal_starts_at_frame_one(tmp_path: Path):
    with Journal.open(tmp_path / "out" / "j.sqlite", KEY) as j:
        assert j.last_frame() is None and j.next_frame() == 1
    assert verify_journal(tmp_path / "out" / "j.sqlite", PUBLIC).ok


# --- tampering: every byte of every stored record -------------------------------------

COLUMNS = ("seq", "time_ns", "kind", "frame", "payload", "prev_hash", "hash", "signature")


def _variants(value: object) -> list[object]:
    """Every one-byte change of a stored value (ints: +1 and -1)."""
    if isinstance(value, int):
        return [value + 1, value - 1]
    if value is None:
        return [0]
    raw = value.encode() if isinstance(value, str) else value
    assert isinstance(raw, bytes)
    out: list[object] = []
    for i in range(len(raw)):
        changed = raw[:i] + bytes([raw[i] ^ 0x01]) + raw[i + 1 :]
        out.append(changed.decode() if isinstance(value, str) else changed)
    return out


def test_changing_any_byte_of_any_record_names_that_record(tmp_path: Path):
    path = tmp_path / "j.sqlite"
    write_journal(path, frames=2)
    conn = sqlite3.connect(path)
    rows = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM records ORDER BY seq").fetchall()
    checked = 0
    for row in rows:
        seq = row[0]
        for column, value in zip(COLUMNS, row, strict=True):
            for changed in _variants(value):
                if column == "seq" and changed in {r[0] for r in rows}:
                    continue  # the primary key refuses a duplicate
                conn.execute(f"UPDATE records SET {column} = ? WHERE seq = ?", (changed, seq))
                conn.commit()
                named = bad_seq(path)
                # a record renumbered below its place shows up as the record before it
                expected = seq - 1 if column == "seq" and changed == seq - 1 else seq
                assert named == expected, (column, seq, changed)
                key = "seq" if column == "seq" else "rowid"
                where = changed if column == "seq" else seq
                conn.execute(f"UPDATE records SET {column} = ? WHERE {key} = ?", (value, where))
                conn.commit()
                checked += 1
    conn.close()
    assert checked > 1000  # every byte of 8 records, not a sample
    assert verify_journal(path, PUBLIC).ok


def test_a_flipped_byte_in_the_file_names_its_record(tmp_path: Path):
    path = tmp_path / "j.sqlite"
    with Journal.open(path, KEY) as j:
        for f in range(1, 30):
            j.append("meters", {"marker": f"frame-{f:03d}-meters"}, frame=f)
    data = bytearray(path.read_bytes())  # closed: the WAL is checkpointed into the file
    at = data.index(b"frame-017-meters")
    data[at + 6] ^= 0x01
    path.write_bytes(bytes(data))
    report = verify_journal(path, PUBLIC)
    assert report.bad is not None and report.bad.seq == 18  # genesis is record 1
    assert report.one_line() == (
        f"{path}: record 18 (meters, frame 17): its hash does not match its content "
        "(altered, or written incompletely)"
    )


def test_a_deleted_record_is_named_missing(tmp_path: Path):
    path = tmp_path / "j.sqlite"
    write_journal(path)
    execute(path, "DELETE FROM records WHERE seq = 6")
    report = verify_journal(path, PUBLIC)
    assert report.bad is not None
    assert (report.bad.seq, report.records) == (6, 5)
    assert report.bad.reason == "missing (the next stored record is 7)"


def test_a_deleted_genesis_is_named(tmp_path: Path):
    path = tmp_path / "j.sqlite"
    write_journal(path)
    execute(path, "DELETE FROM records WHERE seq = 1")
    assert bad_seq(path) == 1


def test_reordered_records_are_named_at_the_first(tmp_path: Path):
    path = tmp_path / "j.sqlite"
    write_journal(path)
    conn = sqlite3.connect(path)
    cols = ", ".join(COLUMNS[1:])
    a, b = (
        conn.execute(f"SELECT {cols} FROM records WHERE seq = ?", (s,)).fetchone() for s in (4, 5)
    )
    sets = ", ".join(f"{c} = ?" for c in COLUMNS[1:])
    conn.execute(f"UPDATE records SET {sets} WHERE seq = 4", b)
    conn.execute(f"UPDATE records SET {sets} WHERE seq = 5", a)
    conn.commit()
    conn.close()
    report = verify_journal(path, PUBLIC)
    assert report.bad is not None and report.bad.seq == 4
    assert "link to the previous record is broken" in report.bad.reason


def test_a_journal_rewritten_under_another_key_fails_against_the_trusted_key(tmp_path: Path):
    path = tmp_path / "j.sqlite"
    forger = Ed25519PrivateKey.generate()
    write_journal(path, key=forger)  # same content, every record validly signed by the forger
    assert verify_journal(path).ok  # consistent in itself: only a trusted key tells
    report = verify_journal(path, PUBLIC)
    assert report.bad is not None and report.bad.seq == 1
    assert f"not the trusted key {PUBLIC.hex()}" in report.bad.reason
    with pytest.raises(JournalKeyError, match="not by this controller's key"):
        Journal.open(path, KEY)


def test_a_record_signed_by_another_key_is_named(tmp_path: Path):
    path = tmp_path / "j.sqlite"
    write_journal(path)
    other = Ed25519PrivateKey.generate()
    conn = sqlite3.connect(path)
    (h,) = conn.execute("SELECT hash FROM records WHERE seq = 9").fetchone()
    conn.execute("UPDATE records SET signature = ? WHERE seq = 9", (other.sign(h),))
    conn.commit()
    conn.close()
    report = verify_journal(path, PUBLIC)
    assert report.bad is not None and report.bad.seq == 9
    assert report.bad.reason == "its signature does not verify under the journal's key"


def test_not_a_journal(tmp_path: Path):
    text = tmp_path / "notes.txt"
    text.write_text("hello\n" * 100)
    report = verify_journal(text, PUBLIC)
    assert report.bad is not None and report.bad.seq is None
    other = tmp_path / "other.sqlite"
    execute(other, "CREATE TABLE t (x)")
    assert (
        verify_journal(other, PUBLIC).one_line()
        == f"{other}: not a ppr journal (no journal header)"
    )


# --- the writer -----------------------------------------------------------------------


def test_a_torn_tail_is_refused_not_appended_to(tmp_path: Path):
    path = tmp_path / "j.sqlite"
    write_journal(path)
    conn = sqlite3.connect(path)
    (payload,) = conn.execute("SELECT payload FROM records WHERE seq = 14").fetchone()
    conn.execute("UPDATE records SET payload = ? WHERE seq = 14", (payload[: len(payload) // 2],))
    conn.commit()
    conn.close()
    with pytest.raises(JournalCorruptError) as info:
        Journal.open(path, KEY)
    assert info.value.seq == 14
    assert "record 14 (stop): its payload is not JSON" in str(info.value)


@pytest.mark.parametrize(
    ("damage", "seq"),
    [
        ("UPDATE records SET time_ns = time_ns + 1 WHERE seq = 1", 1),  # the key's record
        ("DELETE FROM records WHERE seq = 3", 3),  # a gap before an intact tail
    ],
)
def test_damage_before_the_tail_is_refused_at_open(tmp_path: Path, damage: str, seq: int):
    path = tmp_path / "j.sqlite"
    write_journal(path)
    execute(path, damage)
    with pytest.raises(JournalCorruptError) as info:
        Journal.open(path, KEY)
    assert info.value.seq == seq


def test_one_writer_at_a_time(tmp_path: Path):
    path = tmp_path / "j.sqlite"
    with Journal.open(path, KEY):
        with pytest.raises(JournalLockedError):
            Journal.open(path, KEY)
        assert verify_journal(path, PUBLIC).ok  # readers are welcome meanwhile
    Journal.open(path, KEY).close()


@pytest.mark.parametrize(
    ("kind", "payload", "frame", "message"),
    [
        ("party", {}, None, "unknown record kind 'party'"),
        ("plan", {}, -1, "frame -1 is outside 0..4294967295"),
        ("plan", {}, 2**32, "outside"),
        ("plan", {"x": float("nan")}, 1, "payload is not JSON"),
        ("plan", [1, 2], 1, "a payload is a JSON object, not list"),
        ("plan", {"x": object()}, 1, "payload is not JSON"),
    ],
)
def test_bad_records_are_refused_and_nothing_is_written(tmp_path, kind, payload, frame, message):
    with Journal.open(tmp_path / "j.sqlite", KEY) as j:
        with pytest.raises(RecordError, match=message):
            j.append(kind, payload, frame=frame)
        with pytest.raises(RecordError):  # a batch is refused whole
            j.append_many([Entry("plan", {}, 1), Entry(kind, payload, frame)])
        assert j.tail().seq == 1 and j.next_frame() == 1


async def test_append_async_runs_off_the_event_loop(tmp_path: Path):
    with Journal.open(tmp_path / "j.sqlite", KEY) as j:
        record = await j.append_async("alarm", {"code": "test"}, frame=3)
        batch = await j.append_many_async([Entry("meters", {}, 3), Entry("frame", {}, 3)])
        assert (record.seq, [r.seq for r in batch]) == (2, [3, 4])
        assert j.next_frame() == 4


# --- crashes --------------------------------------------------------------------------


def _writer(journal: Path, store: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.journal_writer", str(journal), str(store)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip


@pytest.mark.timeout(120)
def test_sigkill_mid_stream_loses_no_committed_record_and_resumes_higher(tmp_path: Path):
    store = KeyStore.init(tmp_path / "keys", load_scenario(bundled_path()))
    path = tmp_path / "run" / "journal.sqlite"
    committed_frame, committed_seq, journal_last = 0, 0, 0
    for round_, lines in enumerate((40, 7, 120, 1)):
        proc = _writer(path, store.path)
        assert proc.stdout is not None
        seen = []
        for _ in range(lines):
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
            seen.append(tuple(map(int, line.split())))
        proc.send_signal(signal.SIGKILL)  # somewhere in the middle of the next appends
        proc.wait()
        proc.stdout.close()
        assert proc.stderr is not None
        proc.stderr.close()
        first_frame = seen[0][0]
        assert first_frame == journal_last + 1, f"round {round_} started at {first_frame}"
        committed_frame, committed_seq = seen[-1]
        report = verify_journal(path, store.signing_public_key())
        assert report.ok, report.one_line()
        assert report.records >= committed_seq  # everything reported committed is there
        assert report.last_frame is not None and report.last_frame >= committed_frame
        journal_last = report.last_frame
        _assert_batches_whole(path)
    with Journal.open(path, store.signing_key(), check="full") as j:
        assert j.next_frame() > committed_frame


def test_a_torn_wal_tail_is_dropped_whole_and_the_chain_before_it_verifies(tmp_path: Path):
    """The state a power cut can leave: the last WAL frame half written. SQLite's frame
    checksums reject the torn commit; the records before it verify and a restart resumes
    after the last intact frame."""
    live, crashed = tmp_path / "live.sqlite", tmp_path / "crashed.sqlite"
    with Journal.open(live, KEY) as j:
        for f in range(1, 6):
            j.append("plan", {"f": f, "pad": "p" * 500}, frame=f)
        # copy while open: the records are in the WAL, not yet checkpointed
        crashed.write_bytes(live.read_bytes())
        wal = Path(f"{live}-wal").read_bytes()
    Path(f"{crashed}-wal").write_bytes(wal[:-100])
    report = verify_journal(crashed, PUBLIC)
    assert report.ok, report.one_line()
    assert (report.records, report.last_frame) == (5, 4)
    with Journal.open(crashed, KEY) as j:
        assert j.next_frame() == 5


def _assert_batches_whole(path: Path) -> None:
    """``meters`` and ``settlement`` of one frame were one append_many: both or neither."""
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    kinds: dict[int, list[str]] = {}
    for frame, kind in conn.execute("SELECT frame, kind FROM records WHERE frame IS NOT NULL"):
        kinds.setdefault(frame, []).append(kind)
    conn.close()
    for frame, got in kinds.items():
        assert got in (["plan"], ["plan", "meters", "settlement"]), (frame, got)


# --- the key store's signing key and ppr journal verify --------------------------------


def ppr(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "router.cli", *args],
        capture_output=True, text=True, timeout=120, cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip


def test_signing_key_is_made_by_init_kept_by_rotate_and_shown(tmp_path: Path):
    store = KeyStore.init(tmp_path / "keys", load_scenario(bundled_path()))
    key_file = store.path / "signing.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    public = store.signing_public_key()
    assert store.signing_key().public_key().public_bytes_raw() == public
    store.rotate()
    store.rotate(all_parties=True)
    assert KeyStore.open(store.path).signing_public_key() == public
    shown = ppr("keys", "show", "--store", str(store.path), cwd=tmp_path)
    assert f"journal signing key (Ed25519, all epochs): {public.hex()}" in shown.stdout
    private = store.signing_key().private_bytes_raw().hex()
    assert private not in shown.stdout


def test_group_readable_signing_key_is_refused(tmp_path: Path):
    store = KeyStore.init(tmp_path / "keys", load_scenario(bundled_path()))
    (store.path / "signing.key").chmod(0o640)
    write_journal(tmp_path / "j.sqlite")
    result = ppr("journal", "verify", "j.sqlite", "--store", str(store.path), cwd=tmp_path)
    assert result.returncode == 2
    assert "signing.key: private key is accessible by group or others (mode 0640)" in result.stderr


def test_a_store_made_before_signing_keys_gets_one_on_rotate(tmp_path: Path):
    store = KeyStore.init(tmp_path / "keys", load_scenario(bundled_path()))
    manifest = json.loads((store.path / "store.json").read_text())
    del manifest["signing"]
    (store.path / "store.json").write_text(json.dumps(manifest))
    (store.path / "signing.key").unlink()
    old = KeyStore.open(store.path)
    with pytest.raises(Exception, match="no journal signing key; add one with: ppr keys rotate"):
        old.signing_public_key()
    old.rotate()
    assert len(KeyStore.open(store.path).signing_public_key()) == 32


def test_cli_verify_exit_status_and_one_line(tmp_path: Path):
    store = KeyStore.init(tmp_path / "ppr-keys", load_scenario(bundled_path()))
    path = tmp_path / "ppr-out" / "journal.sqlite"
    with Journal.open(path, store.signing_key()) as j:
        for f in range(1, 4):
            j.append("plan", {"f": f}, frame=f)
    ok = ppr("journal", "verify", cwd=tmp_path)  # default file and store
    assert ok.returncode == 0, ok.stderr
    key = store.signing_public_key().hex()
    assert ok.stdout == (
        f"ppr-out/journal.sqlite: ok, 4 records, frames 1-3, signed by {key}; no witness of "
        "its end to compare with\n"
    )  # no run kept one: the chain alone
    execute(path, "UPDATE records SET frame = 9 WHERE seq = 3")
    bad = ppr("journal", "verify", str(path), "--public-key", key, cwd=tmp_path)
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr == (
        f"{path}: record 3 (plan, frame 9): its hash does not match its content "
        "(altered, or written incompletely)\n"
    )
    wrong = ppr("journal", "verify", "--public-key", "ab" * 32, cwd=tmp_path)
    assert (
        wrong.returncode == 1 and "record 1 (genesis): the journal is signed by key" in wrong.stderr
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nowhere.sqlite"], "error: nowhere.sqlite: no such journal file\n"),
        (["j.sqlite"], "error: no trusted key to check the journal against: no key store in "
         "./ppr-keys; give --keys DIR or --public-key HEX\n"),
        (["j.sqlite", "--public-key", "xyz"], "error: --public-key: expected 64 hex digits, "
         "got 'xyz'\n"),
        (["j.sqlite", "--store", "none"], "error: none: no key store here; create one with: "
         "ppr keys init\n"),
    ],
)  # fmt: skip
def test_cli_verify_usage_errors(tmp_path: Path, args: list[str], message: str):
    write_journal(tmp_path / "j.sqlite")
    result = ppr("journal", "verify", *args, cwd=tmp_path)
    assert (result.returncode, result.stderr) == (2, message)
