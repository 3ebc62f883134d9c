"""E-stops from outside the frame loop: Ctrl-C and SIGTERM on ``ppr run``, and
``ppr estop`` from another shell. Every gate opens, the journal says why, exit 130."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from pathlib import Path

import pytest

from firmware_bridge.keystore import KeyStore
from router.controller.session import Session
from router.journal import read_records, verify_journal
from tests.bench_process import TwinProcess, ppr, router_states, wait_line
from tests.controller_support import bench, config

pytestmark = pytest.mark.timeout(180)


def journal_ok(out: Path, keys: Path) -> list:
    path = out / "journal.sqlite"
    assert verify_journal(path, KeyStore.open(keys).signing_public_key()).ok
    return list(read_records(path))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_a_signal_opens_every_gate_and_ends_the_run(tmp_path: Path, sig: signal.Signals):
    keys, out = tmp_path / "keys", tmp_path / "out"
    KeyStore.init(keys, bench())
    with TwinProcess(keys) as twin:  # the routers outlive the controller: look at them
        scenario = twin.scenario_file(tmp_path / "bench.toml")
        proc = subprocess.Popen(
            ppr("run", "--hardware", "--scenario", str(scenario), "--keys", str(keys),
                "--out", str(out), "--frames", "40"),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            wait_line(proc, "frame ")
            proc.send_signal(sig)
            rest, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 130, rest
        name = signal.Signals(sig).name
        assert f"stopped   {name}: e-stop: every gate opened" in rest
        # e-stopped, not merely timed out: the routers latch "fault" until cleared
        assert set((await router_states(twin.addresses)).values()) == {"fault"}
    records = journal_ok(out, keys)
    (stop,) = [r.payload for r in records if r.kind == "estop"]
    assert stop == {"reason": f"{name}: e-stop", "failed": {}}
    done = [r for r in records if r.kind == "frame" and r.payload.get("phase") == "done"]
    assert 1 <= len(done) < 40


async def test_a_latched_estop_outlives_the_run_until_an_operator_clears_it(tmp_path: Path):
    """The routers stay e-stopped after a Ctrl-C: the next ppr run refuses, in one line,
    without touching them; with --clear-estop it clears them and runs."""
    keys = tmp_path / "keys"
    KeyStore.init(keys, bench())
    with TwinProcess(keys) as twin:
        scenario = twin.scenario_file(tmp_path / "bench.toml")

        def run(out: str, *extra: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                ppr("run", "--hardware", "--scenario", str(scenario), "--keys", str(keys),
                    "--out", str(tmp_path / out), "--frames", "1", *extra),
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip

        estop = subprocess.run(
            ppr("estop", str(scenario)), capture_output=True, text=True, timeout=60
        )
        assert estop.returncode == 0, estop.stderr
        assert set((await router_states(twin.addresses)).values()) == {"fault"}
        refused = run("first")
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
        assert "is e-stopped (state fault)" in refused.stderr and "--clear-estop" in refused.stderr
        assert set((await router_states(twin.addresses)).values()) == {"fault"}
        cleared = run("second", "--clear-estop")
        assert cleared.returncode == 0, cleared.stdout + cleared.stderr
        assert "1 frame: 1 ran, 0 skipped" in cleared.stdout


async def test_a_stop_before_the_routers_are_set_up_still_stops_the_run(tmp_path: Path):
    """Ctrl-C while the bench is still being set up is not lost: no frame runs, every
    gate is opened once the routers answer, the journal says why."""
    session = Session(config(tmp_path, bench(), frames=5))
    asyncio.get_running_loop().call_soon(session.stop, "SIGINT: e-stop")
    result = await session.run()
    assert result.estopped and result.outcomes == []
    assert result.stop_reason == "SIGINT: e-stop"
    records = journal_ok(tmp_path / "out", tmp_path / "keys")
    # every router confirmed its e-stop
    assert [r.payload for r in records if r.kind == "estop"] == [
        {"reason": "SIGINT: e-stop", "failed": {}}
    ]
    assert not [r for r in records if r.kind == "plan"]


async def test_ppr_estop_from_another_shell_stops_the_run(tmp_path: Path):
    out = tmp_path / "out"
    proc = await asyncio.create_subprocess_exec(
        *ppr("run", "--out", str(out), "--keys", str(tmp_path / "keys"), "--frames", "40"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        while b"frame " not in await asyncio.wait_for(proc.stdout.readline(), 120):
            pass
        estop = await asyncio.create_subprocess_exec(
            *ppr("estop", "--run", str(out)), stdout=asyncio.subprocess.PIPE
        )
        said, _ = await asyncio.wait_for(estop.communicate(), 60)
        assert estop.returncode == 0, said
        addresses = json.loads((out / "addresses.json").read_text())
        assert said.decode().split() == [w for r in addresses for w in (r, "e-stopped")]
        rest = await asyncio.wait_for(proc.stdout.read(), 60)
        assert await proc.wait() == 130, rest
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    records = journal_ok(out, tmp_path / "keys")
    (stop,) = [r.payload for r in records if r.kind == "estop"]
    assert stop["reason"].startswith("router R") and stop["reason"].endswith("was e-stopped")
    # noticed when the next frame would not arm: a few frames (1 s each) after the
    # e-stop, however slowly `ppr estop` started, long before the 40 asked for
    assert len([r for r in records if r.kind == "plan"]) < 20
