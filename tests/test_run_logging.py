"""pymodbus on a lossy link (issue 12): each lost reply is an error to pymodbus, with a
hex dump of the last frames (3,807 stderr lines for five frames); the driver retries and
raises typed errors of its own. By default a run prints none of it; -v shows it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.bench_process import ppr

pytestmark = pytest.mark.timeout(180)

# over TCP, as a gateway to a noisy line would (sim_hw/faults.py): pymodbus logs the
# lost replies of either transport alike, and TCP keeps the test short
LOSSY = ("--fault", "corrupt=0.1", "--fault", "drop=0.05")


def run(tmp: Path, out: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ppr("run", "--out", out, "--keys", "keys", "--frames", "1", *LOSSY, *extra),
        capture_output=True, text=True, timeout=150, cwd=tmp,
    )  # fmt: skip


def test_lost_replies_are_logged_only_when_asked(tmp_path: Path):
    quiet = run(tmp_path, "quiet")
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    assert ">>>>>" not in quiet.stderr and "pymodbus" not in quiet.stderr
    # whatever stderr has is the run's own alarms, one line each
    assert all(line.startswith("  alarm: ") for line in quiet.stderr.splitlines())
    told = run(tmp_path, "told", "-v")
    assert told.returncode == 0, told.stdout + told.stderr
    assert "INFO pymodbus.logging: No response received" in told.stderr
    assert ">>>>> send: 0x" in told.stderr  # the hex dumps, at info
