"""``ppr run`` on the bundled bench-4-mec, on the twin, with a real Mosquitto broker: every
frame the MEC stage allocates, the packets run, and each server's metered energy is its
demand within the packet rounding (demands, losses and packets worked out by hand); the
satisfaction goes to the journal, the run summary and MQTT (``stage/mec``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from bench import bundled_path
from firmware_bridge.keystore import KeyStore
from router.journal import read_records, verify_journal
from router.mqtt import StageAccount
from tests.bench_process import ppr
from tests.mosquitto import Broker
from tests.mqtt_support import listening

pytestmark = pytest.mark.timeout(300)

TREE = "ppr/bench-4-mec"
FRAMES = 3
E = 48 * 6 * 0.0049  # J a packet takes from its source: 6 A, 48 V, 5 ms less 100 us
LOSS = {"MEC1": 6 * 0.05 / 48, "MEC2": 6 * 0.05 / 48, "MEC3": 6 * 0.14 / 48}  # I R / V
METER = 0.005  # the twin's meters and slot timing: within 0.5% of the planned energy


def _demands(index: int) -> dict[str, float]:
    """The run's index-th frame: MEC1 40 x 0.5 J, then Poisson(60) x 0.5 J and
    Poisson(50) x 0.4 J from a generator seeded by ([mec] seed 7, index)."""
    rng = np.random.default_rng([7, index])
    return {"MEC1": 20.0, "MEC2": rng.poisson(60) * 0.5, "MEC3": rng.poisson(50) * 0.4}


def _frame(record) -> int:
    assert record.frame is not None  # plan, stage and meters records belong to a frame
    return record.frame


@pytest.fixture
def broker(tmp_path: Path):
    with Broker(tmp_path / "broker") as b:
        yield b


async def test_mec_frames_on_the_twin(tmp_path: Path, broker: Broker):
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
    for index, plan in enumerate(plans):  # the run's frames in order
        demand = _demands(index)
        account = stages[_frame(plan)]
        assert account["stage"] == "mec"
        # packets per server: the energy is there, so D_j / (1 - l_j) rounded up
        packets = {s: int(np.ceil(d / (1 - LOSS[s]) / E)) for s, d in demand.items()}
        assert {s: row["packets"] for s, row in account["servers"].items()} == packets
        for server, d in demand.items():
            row = account["servers"][server]
            # the allocation's delivered energy is the demand; the meters agree with it
            # within the packet rounding (one packet's delivered energy, up)
            assert row["allocated_j"] == pytest.approx(d, rel=1e-6)
            one = E * (1 - LOSS[server])
            got = metered[_frame(plan)][server]
            assert d * (1 - METER) <= got <= (d + one) * (1 + METER)
            assert row["delivered_j"] == pytest.approx(got, rel=1e-9)
            assert row["satisfaction"] == pytest.approx(min(1.0, got / d), rel=1e-12)
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
