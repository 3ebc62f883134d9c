"""The hygiene gate fails tests that leave tasks, sockets or processes behind."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

LEAKY = """
import asyncio, socket, subprocess, sys

KEEP = []

def test_leaks_a_socket():
    KEEP.append(socket.socket())

def test_leaks_a_process():
    # outlives the gate's settling time, then ends by itself (nobody waits for it)
    KEEP.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(4)"]))

async def test_leaks_a_task():
    KEEP.append(asyncio.create_task(asyncio.sleep(30), name="forgotten"))

def test_cleans_up():
    with socket.socket():
        pass
    subprocess.run([sys.executable, "-c", "pass"], check=True)
"""


def test_leaks_fail_the_test_that_made_them(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
):
    pytester.makeconftest('pytest_plugins = ["tests.hygiene"]\n')
    pytester.makepyfile(test_leaky=LEAKY)
    pytester.makeini("[pytest]\nasyncio_mode = auto\n")
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parents[1]))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    out = result.stdout.str()
    result.assert_outcomes(passed=4, errors=3)  # the leaks fail at teardown
    assert "the test left behind: fd" in out and "socket:[" in out
    assert "the test left behind: pid" in out
    assert "tasks still running: forgotten" in out
