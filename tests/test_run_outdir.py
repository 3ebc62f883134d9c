"""A run's output folder: a journal that does not verify is never appended to, and a
folder another run holds is refused before anything in it is written."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import subprocess
from pathlib import Path

from tests.bench_process import ppr


def run(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ppr("run", "--out", "out", "--keys", "keys", "--frames", "1", *args),
        capture_output=True, text=True, timeout=180, cwd=tmp,
    )  # fmt: skip


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ") and "Traceback" not in result.stdout
    return line


def rows(journal: Path) -> list[tuple]:
    with sqlite3.connect(journal) as conn:
        return conn.execute("SELECT * FROM records ORDER BY seq").fetchall()


def test_a_journal_with_a_bad_middle_record_is_not_appended_to(tmp_path: Path):
    first = run(tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    journal = tmp_path / "out" / "journal.sqlite"
    before = rows(journal)
    middle = len(before) // 2 + 1  # neither the genesis record nor the tail
    assert 1 < middle < len(before)
    with sqlite3.connect(journal) as conn:
        conn.execute("UPDATE records SET kind = 'meters' WHERE seq = ?", (middle,))
    tampered = rows(journal)
    error = one_line_error(run(tmp_path))
    assert f"record {middle}" in error and "refusing to append" in error
    assert "another --out" in error
    assert rows(journal) == tampered  # nothing appended


def test_a_folder_another_run_holds_is_refused_before_anything_is_written(tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "addresses.json").write_text('{"R1": "the first run\'s"}\n')
    fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what the first run holds
        error = one_line_error(run(tmp_path))
    finally:
        os.close(fd)
    assert error == "error: out: another ppr run is writing here; give this run another --out"
    assert sorted(p.name for p in out.iterdir()) == ["addresses.json"]
    assert (out / "addresses.json").read_text() == '{"R1": "the first run\'s"}\n'
