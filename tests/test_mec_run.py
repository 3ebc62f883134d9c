"""``ppr run`` on the bundled bench-4-mec, on the twin, with a real Mosquitto broker: every
frame the MEC stage allocates, the packets run, and each server's metered energy is its
allocated energy within the packet rounding (demands, the pick rule's point and packets
worked out by hand, PV1 short and R4's cap binding in some frames); the satisfaction goes
to the journal, the run summary and MQTT (``stage/mec``). A second run continues the
frame numbers, and ``ppr allocate --frame N`` shows the draw of its frame N."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

from bench import bundled_path
from firmware_bridge.keystore import KeyStore
from router.cli import main
from router.journal import read_records, verify_journal
from router.mqtt import StageAccount
from tests import mec_bench as bench
from tests.bench_process import ppr
from tests.mosquitto import Broker
from tests.mqtt_support import listening

pytestmark = pytest.mark.timeout(300)

TREE = "ppr/bench-4-mec"
FRAMES = 3
METER = 0.005  # the twin's meters and slot timing: within 0.5% of the planned energy


def _frame(record) -> int:
    assert record.frame is not None  # plan, stage and meters records belong to a frame
    return record.frame


@pytest.fixture
def broker(tmp_path: Path):
    with Broker(tmp_path / "broker") as b:
        yield b


async def test_mec_frames_on_the_twin(tmp_path: Path, broker: Broker, capsys):
    out, keys = tmp_path / "out", tmp_path / "keys"
    async with listening(broker, f"{TREE}/#") as dash:
        proc = await asyncio.create_subprocess_exec(
            *ppr("run", "--scenario", str(bundled_path("bench-4-mec")), "--frames", str(FRAMES),
                 "--mqtt", broker.url(), "--out", str(out), "--keys", str(keys)),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        try:
            text = (await asyncio.wait_for(proc.communicate(), 240))[0].decode()
        finally:
            if proc.returncode is None:
                proc.kill()
        assert proc.returncode == 0, text
        await dash.wait(lambda: len(dash.on(f"{TREE}/stage/mec")) == FRAMES, "stage accounts")
    journal = out / "journal.sqlite"
    store = KeyStore.open(keys)
    assert verify_journal(journal, store.signing_public_key()).ok
    records = list(read_records(journal))
    plans = [r for r in records if r.kind == "plan"]
    stages = {_frame(r): r.payload for r in records if r.kind == "stage"}
    assert len(plans) == FRAMES and sorted(stages) == [_frame(p) for p in plans]
    # the meters: energy attributed to each sink terminal, by its wire id
    sink_name = {p.index: p.name for p in store.parties() if p.kind == "terminal"}
    metered: dict[int, dict[str, float]] = {}
    for r in records:
        if r.kind == "meters":
            at_sinks = metered.setdefault(_frame(r), {})
            for attributions in r.payload.values():
                for a in attributions or []:
                    name = sink_name[a["sink"]]
                    at_sinks[name] = at_sinks.get(name, 0.0) + a["energy_j"]
    assert [_frame(p) for p in plans] == [1, 2, 3]  # a fresh folder and key store
    for plan in plans:  # each frame's draw is keyed by its number
        frame = _frame(plan)
        demand, sent, packets = bench.demands(frame), bench.pick(frame), bench.packets(frame)
        account = stages[frame]
        assert account["stage"] == "mec"
        assert {s: row["packets"] for s, row in account["servers"].items()} == packets
        for server, d in demand.items():
            row = account["servers"][server]
            lossy = 1 - bench.loss_of(server)
            assert row["demand_j"] == pytest.approx(d)
            assert row["allocated_j"] == pytest.approx(sent[server] * lossy, rel=1e-6)
            # the meters agree with the whole packets' energy, which is within one
            # packet of the allocation's
            planned = packets[server] * bench.E * lossy
            assert abs(planned - row["allocated_j"]) <= bench.E * lossy
            got = metered[frame][server]
            assert planned * (1 - METER) <= got <= planned * (1 + METER)
            assert row["delivered_j"] == pytest.approx(got, rel=1e-9)
            assert row["satisfaction"] == pytest.approx(min(1.0, got / d), rel=1e-12)
    # PV1 is short in frames 1-3; R4 passes all its cap in frame 2
    assert all(stages[f]["min_satisfaction"] < 1 for f in (1, 2, 3))
    assert stages[2]["servers"]["MEC3"]["sent_j"] == pytest.approx(bench.R4_CAP)
    # MQTT: one account per frame, the journal's stage record
    accounts = [StageAccount.model_validate_json(p) for p in dash.payloads(f"{TREE}/stage/mec")]
    assert [a.frame for a in accounts] == [_frame(p) for p in plans]
    for a in accounts:
        assert {"stage": "mec", **a.account} == stages[a.frame]
    # the run summary: each server's satisfaction over the run
    assert "MEC allocation (servers propose; pick rule by LP): 3 frames, the first " in text
    for server in ("MEC1", "MEC2", "MEC3"):
        row = next(line.split() for line in text.splitlines() if line.startswith(f"  {server} "))
        sat = [stages[_frame(p)]["servers"][server]["satisfaction"] for p in plans]
        assert float(row[1]) == pytest.approx(np.mean(sat), abs=5e-4)
    # a second run on the same folder journals frame 4, drawn as frame 4, which is what
    # ppr allocate --frame 4 shows
    again = await asyncio.create_subprocess_exec(
        *ppr("run", "--scenario", str(bundled_path("bench-4-mec")), "--frames", "1",
             "--out", str(out), "--keys", str(keys)),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    text = (await asyncio.wait_for(again.communicate(), 240))[0].decode()
    assert again.returncode == 0, text
    later = {_frame(r): r.payload for r in read_records(journal) if r.kind == "stage"}
    assert sorted(later) == [1, 2, 3, 4]
    assert main(["allocate", "--frame", "4", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    for server, row in later[4]["servers"].items():
        assert row["demand_j"] == pytest.approx(bench.demands(4)[server])
        assert shown["servers"][server]["demand_j"] == row["demand_j"]
        assert shown["servers"][server]["sent_j"] == pytest.approx(row["sent_j"], abs=1e-6)
