"""Two controllers on one bench: the second ``ppr run`` finds every router owned by the
first one's session, exits 2 with one line naming the router, and touches nothing; the
first runs all its frames."""

from __future__ import annotations

import subprocess

import pytest

from firmware_bridge.keystore import KeyStore
from router.journal import read_records
from tests.bench_process import TwinProcess, ppr, wait_line
from tests.controller_support import bench

pytestmark = pytest.mark.timeout(180)


def test_a_second_controller_is_refused_by_routers_another_session_owns(tmp_path):
    keys = tmp_path / "keys"
    KeyStore.init(keys, bench())
    with TwinProcess(keys) as twin:
        scenario = twin.scenario_file(tmp_path / "bench.toml")

        def run(out: str, frames: int) -> list[str]:
            return ppr("run", "--hardware", "--scenario", str(scenario), "--keys", str(keys),
                       "--out", str(tmp_path / out), "--frames", str(frames))  # fmt: skip

        first = subprocess.Popen(
            run("first", 6), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        try:
            said = wait_line(first, "frame ")  # the first controller owns the routers, runs
            second = subprocess.run(run("second", 1), capture_output=True, text=True, timeout=120)
            rest, _ = first.communicate(timeout=120)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
    assert second.returncode == 2, second.stdout + second.stderr
    assert second.stderr.count("\n") == 1 and "Traceback" not in second.stderr
    assert "router R1" in second.stderr and "owned by another session" in second.stderr
    assert not (tmp_path / "second").exists()  # nothing written
    assert first.returncode == 0, said + rest
    assert "6 frames: 6 ran, 0 skipped, 0 alarms" in rest
    done = [
        r.payload
        for r in read_records(tmp_path / "first" / "journal.sqlite")
        if r.kind == "frame" and r.payload.get("phase") == "done"
    ]
    assert [d["packets_delivered"] for d in done] == [240] * 6
