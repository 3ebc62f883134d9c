"""The benchmark scripts still run (quick mode); their numbers live in docs/benchmarks.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_planning_benchmark_quick():
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "planning.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "| bench-4 |" in result.stdout and "optimal" in result.stdout


def test_dayahead_benchmark_quick():
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "dayahead.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "| 10 x 12 | pool |" in result.stdout and "| 10 x 12 | bilateral |" in result.stdout


def test_mec_benchmark_quick():
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "mec.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "| bench-4-mec frame 0 | 3 |" in result.stdout and "| improved |" in result.stdout
    assert "share of the frame" in result.stdout
