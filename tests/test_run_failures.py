"""A failure inside a frame ends the run safely: every gate opened (an e-stop the routers
latch), a ``stop`` record that names the failure, the journal closed, one error line and
a non-zero exit. The failure is real: the frame stage raises while the second frame is
planned, the first one armed on routers that outlive the controller (``ppr twin``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bench.errors import ScenarioError
from firmware_bridge.keystore import KeyStore
from router.cli import main
from router.controller.stages import MarketStage
from router.journal import Journal, read_records, verify_journal
from tests.bench_process import TwinProcess, router_states
from tests.controller_support import bench

pytestmark = pytest.mark.timeout(180)


@pytest.mark.parametrize(
    ("failure", "said", "status"),
    [
        # a bug: named by its type; exit 1
        (ZeroDivisionError("division by zero"), "ZeroDivisionError: division by zero", 1),
        # one of the project's refusals, raised late: its own message; exit 2
        (ScenarioError("transfers[X1].sink", "unknown terminal 'MEC9'"),
         "transfers[X1].sink: unknown terminal 'MEC9'", 2),
    ],
)  # fmt: skip
def test_a_failure_inside_a_frame_opens_every_gate_and_closes_the_journal(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    failure: Exception,
    said: str,
    status: int,
):
    keys, out = tmp_path / "keys", tmp_path / "out"
    store = KeyStore.init(keys, bench())
    prepare = MarketStage.prepare

    def fails_on_the_second_frame(self, index, frame, base, topology):  # type: ignore[no-untyped-def]
        if index == 1:
            raise failure
        return prepare(self, index, frame, base, topology)

    monkeypatch.setattr(MarketStage, "prepare", fails_on_the_second_frame)
    with TwinProcess(keys) as twin:
        scenario = twin.scenario_file(tmp_path / "bench.toml")
        code = main(
            ["run", "--hardware", "--scenario", str(scenario), "--keys", str(keys),
             "--out", str(out), "--frames", "3"]
        )  # fmt: skip
        # e-stopped, not merely timed out: the routers latch "fault" until cleared
        states = asyncio.run(router_states(twin.addresses))
    assert code == status
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert errors == [
        f"error: {said}; the run stopped at frame 2: every gate was opened (e-stop), the "
        "journal has a stop record and is closed"
    ]
    assert set(states.values()) == {"fault"}
    path = out / "journal.sqlite"
    assert verify_journal(path, store.signing_public_key()).ok
    records = list(read_records(path))
    (estop,) = [r.payload for r in records if r.kind == "estop"]
    assert estop == {"reason": f"failed: {said}", "failed": {}}  # every router confirmed
    last = records[-1]
    assert last.kind == "stop" and last.payload["reason"] == f"failed: {said}"
    assert last.payload["frame"] == 2 and "fails_on_the_second_frame" in last.payload["traceback"]
    with Journal.open(path, store.signing_key()):  # closed: another writer may open it
        pass
