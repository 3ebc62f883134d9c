"""The first-run compile is said up front, read from Numba's own cache index: a process
that finds the cache cold says so and compiles with a count of its kernels; the next
process, the cache warm, says nothing. A tiny kernel in a fresh cache stands for the
planner's (whose cold compile takes half a minute)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from router.kernels import DAYAHEAD, PLANNER, dispatchers

REPO = Path(__file__).resolve().parents[1]
KERNEL = """
from numba import njit


@njit(cache=True)
def twice(x):
    return 2 * x
"""
RUN = """
import tiny_kernels
from router.kernels import KernelSet, ensure_kernels

kernels = KernelSet("the tiny kernels", ("tiny_kernels",), "~1 s", lambda: tiny_kernels.twice(2))
print(ensure_kernels(kernels), tiny_kernels.twice.stats.cache_hits.total())
"""


def _run(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "NUMBA_CACHE_DIR": str(tmp_path / "cache"),
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)]),
    }
    return subprocess.run(
        [sys.executable, "-c", RUN], capture_output=True, text=True, env=env, timeout=120
    )


def test_cold_said_once_then_warm_in_silence(tmp_path):
    (tmp_path / "tiny_kernels.py").write_text(KERNEL)
    cold = _run(tmp_path)
    assert cold.returncode == 0, cold.stderr
    assert cold.stdout.split() == ["True", "0"]  # compiled: no cache hit
    said, *counted = cold.stderr.splitlines()
    assert said == "compiling the tiny kernels (first run only, ~1 s)"
    # a loaded machine can take over a second on it: then the count shows, and only that
    assert all(line.startswith("compiling kernels") for line in counted), cold.stderr
    warm = _run(tmp_path)
    assert warm.returncode == 0, warm.stderr
    assert warm.stdout.split() == ["False", "1"]  # loaded from the cache, as predicted
    assert warm.stderr == ""
    # an edited kernel is cold again (Numba's index is stamped with its source file)
    (tmp_path / "tiny_kernels.py").write_text(KERNEL.replace("2 * x", "x + x"))
    assert _run(tmp_path).stderr.startswith("compiling the tiny kernels")


def test_the_planner_set_holds_every_kernel_module():
    """Every scheduler module that defines a Numba kernel is in the planner's set, or in
    the day-ahead set (ppr dayahead and ppr run --dayahead compile that one)."""
    defining = {
        ".".join(path.relative_to(REPO).with_suffix("").parts)
        for path in (REPO / "scheduler").rglob("*.py")
        if re.search(r"^@njit", path.read_text(), re.MULTILINE)
    }
    assert defining == set(PLANNER.modules) | set(DAYAHEAD.modules)
    assert not set(PLANNER.modules) & set(DAYAHEAD.modules)
    # the day-ahead warm-up runs every entry kernel of its set (the helpers they call
    # compile into them), so none is left to the first solve
    DAYAHEAD.warm_up()
    ran = {d.__name__ for d in dispatchers(DAYAHEAD.modules) if d.overloads}
    assert {"respond", "hull_segments", "hull_weights"} <= ran
