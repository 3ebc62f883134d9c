"""The controller under faults: lossy links, a router offline, the controller killed."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time

import pytest

from firmware_bridge.keystore import KeyStore
from router.controller.session import Session
from router.journal import read_records, verify_journal
from tests.bench_process import TwinProcess, ppr, router_states, wait_line
from tests.controller_support import bench, config

pytestmark = pytest.mark.timeout(180)


async def test_lossy_links_and_a_router_offline_every_frame_accounted_for(tmp_path):
    frames = 9
    session = Session(config(tmp_path, bench(), frames=frames, faults=("drop=0.05",)))
    seen: list[int] = []
    offline = []

    def on_frame(outcome, alarms):
        seen.append(outcome.frame)
        if len(seen) == 2:
            offline.append(session.twin.inject("offline@R3"))
        if len(seen) == 4:
            session.twin.clear(offline[0])

    session.on_frame = on_frame
    result = await session.run()
    assert result.verified.ok, result.verified.one_line()
    first = result.outcomes[0].frame
    records = list(read_records(result.journal))
    done = [r.frame for r in records if r.kind == "frame" and r.payload.get("phase") == "done"]
    assert done == list(range(first, first + frames))  # every frame accounted for, in order
    alarms = [r.payload for r in records if r.kind == "alarm"]
    codes = [a["code"] for a in alarms if a["source"] == "R3"]
    assert codes[:1] == ["router_offline"], alarms
    assert codes[-2:] == ["router_answers", "router_back"], alarms
    down = [o for o in result.outcomes if "R3" in o.routers_down]
    assert down, "R3 was never left out of a plan"
    for o in down:  # planned around R3: every packet of the frame arrives
        assert not o.skipped and o.packets_delivered == o.packets_planned, (o.problems, alarms)
        assert o.packets_undelivered > 0  # PV2, MEC2 sit at R3: their transfers wait
    last = result.outcomes[-1]
    assert "R3" not in last.routers_down  # it rejoined
    assert last.packets_delivered == last.packets_planned == 240
    counts = session.twin.injected
    assert sum(c["injected_drops"] for c in counts.values()) > 0


async def test_a_failed_commit_skips_that_frame_on_every_router(tmp_path):
    frames = 5
    session = Session(config(tmp_path, bench(), frames=frames))
    flip = []

    def on_frame(outcome, alarms):
        if not flip:  # frame 2 is armed: the next upload (frame 3) meets a corrupting R2
            flip.append(session.twin.inject("bank-flip@R2"))
        elif len(flip) == 1:  # frame 3 failed to commit on R2; frame 4 finds R2 healthy
            session.twin.clear(flip[0])
            flip.append(None)

    session.on_frame = on_frame
    result = await session.run()
    assert result.verified.ok, result.verified.one_line()
    first = result.outcomes[0].frame
    bad = first + 2
    assert [o.frame for o in result.outcomes] == list(range(first, first + frames))
    assert [o.frame for o in result.outcomes if o.skipped] == [bad]
    for o in result.outcomes:
        if o.frame != bad:
            assert o.packets_delivered == o.packets_planned == 240, o.problems
    # R1, R3 and R4 committed frame 3 but none ran it: no half frame
    routers = session.twin.routers
    assert {rid: r.frames_completed for rid, r in routers.items()} == {
        rid: frames - 1 for rid in routers
    }
    assert routers["R2"].bank_flips > 0 and routers["R2"].counters["crc_refusals"] > 0
    records = list(read_records(result.journal))
    (commit,) = [r.payload for r in records if r.kind == "commit" and r.frame == bad]
    assert "crc_mismatch" in commit["routers"]["R2"]["error"]
    assert all("crc" in commit["routers"][rid] for rid in ("R1", "R3", "R4"))
    failed = [r for r in records if r.kind == "alarm" and r.payload["code"] == "commit_failed"]
    assert [(r.frame, r.payload["source"]) for r in failed] == [(bad, "R2")]
    assert not any(r.payload["code"] == "router_offline" for r in records if r.kind == "alarm")


async def test_controller_killed_mid_frame_routers_go_safe_and_a_restart_resumes(tmp_path):
    keys = tmp_path / "keys"
    KeyStore.init(keys, bench())
    watchdog_ms = 500
    with TwinProcess(keys) as twin:
        scenario = twin.scenario_file(tmp_path / "bench.toml")
        out = tmp_path / "out"
        run = [
            "run",
            "--hardware",
            "--scenario",
            str(scenario),
            "--keys",
            str(keys),
            "--out",
            str(out),
            "--watchdog-ms",
            str(watchdog_ms),
        ]
        proc = subprocess.Popen(
            ppr(*run, "--frames", "40"),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_line(proc, "frame ")  # a frame ran: the next one is running now
            await asyncio.sleep(0.3)  # mid-frame
            killed = time.monotonic()
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
        while set((await router_states(twin.addresses)).values()) != {"safe"}:
            assert time.monotonic() - killed < watchdog_ms / 1000 + 0.3, "routers not safe"
            await asyncio.sleep(0.02)
        assert time.monotonic() - killed < watchdog_ms / 1000 + 0.3
        last = max(r.frame or 0 for r in read_records(out / "journal.sqlite"))
        store = KeyStore.open(keys)
        assert verify_journal(out / "journal.sqlite", store.signing_public_key()).ok
        again = subprocess.run(
            ppr(*run, "--frames", "2"), capture_output=True, text=True, timeout=120
        )
        assert again.returncode == 0, again.stdout + again.stderr
        records = list(read_records(out / "journal.sqlite"))
        # the routers the killed controller left safe were cleared, and the journal says so
        restart = max(i for i, r in enumerate(records) if r.kind == "start")
        alarms = [r.payload for r in records[restart:] if r.kind == "alarm"]
        cleared = [a for a in alarms if a["code"] == "fault_cleared"]
        assert sorted(a["source"] for a in cleared) == [
            "R1",
            "R2",
            "R3",
            "R4",
        ]
        assert all(
            "was safe, its watchdog having opened its gates" in a["message"] for a in cleared
        )
        resumed = [r.frame for r in records if r.kind == "plan" and r.frame > last]
        assert len(resumed) == 2 and min(resumed) > last
        done = [r for r in records if r.kind == "frame" and r.frame in resumed]
        assert all(r.payload["phase"] != "done" or not r.payload["skipped"] for r in done)
        verified = subprocess.run(
            ppr("journal", "verify", str(out / "journal.sqlite"), "--store", str(keys)),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert verified.returncode == 0, verified.stdout + verified.stderr


async def test_a_tripped_line_is_settled_short_and_alarmed(tmp_path):
    """L23 tripped: the packets planned over it are lost (the planner does not know),
    the sellers compensate, and the frame raises delivery_short naming the energy."""
    session = Session(config(tmp_path, bench(), frames=1, faults=("trip=L23",)))
    result = await session.run()
    (outcome,) = result.outcomes
    short = [t for t in outcome.settlement.transfers if t.shortfall_packets > 0]
    assert short and outcome.packets_delivered < outcome.packets_planned
    records = list(read_records(result.journal))
    (alarm,) = [r.payload for r in records if r.kind == "alarm"]
    assert alarm["code"] == "delivery_short"
    missing = sum(t.shortfall_j for t in short)
    assert f"{missing:.2f} J of" in alarm["message"]
    assert all(t.transfer in alarm["message"] for t in short[:5])
