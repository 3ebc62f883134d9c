"""``ppr run --mqtt`` against a real Mosquitto broker: what a dashboard sees, the
commands an operator sends, the last will, and a broker that goes away mid-run."""

from __future__ import annotations

import asyncio
import json
import signal
import tomllib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiomqtt
import pytest

from bench import bundled_path
from firmware_bridge.keystore import KeyStore
from router.journal import read_records, verify_journal
from router.mqtt import (
    BUFFER_MESSAGES,
    CommandReply,
    FrameSummary,
    PortTelemetry,
    RouterState,
    TransferTelemetry,
)
from tests.bench_process import ppr
from tests.mosquitto import Broker
from tests.mqtt_support import Listener, listening, persistent_frames, until

pytestmark = pytest.mark.timeout(180)

TREE = "ppr/bench-4"
BENCH = tomllib.loads(bundled_path().read_text())
REQUESTED = {t["id"]: t["packets"] for t in BENCH["transfers"]}  # from the file, by hand
PORTS = {(r["id"], p) for r in BENCH["routers"] for p in range(r["ports"])}
MQTT_DOC = (Path(__file__).parents[1] / "docs" / "mqtt.md").read_text(encoding="utf-8")
FIRST_FRAME_S = 120.0  # start-up: imports, the twin, the first plan, the clocks' baseline


@pytest.fixture
def broker(tmp_path: Path):
    with Broker(tmp_path / "broker") as b:
        yield b


@asynccontextmanager
async def controller(tmp_path: Path, broker: Broker, *args: str) -> AsyncIterator[Run]:
    proc = await asyncio.create_subprocess_exec(
        *ppr("run", "--mqtt", broker.url(), "--out", str(tmp_path / "out"),
             "--keys", str(tmp_path / "keys"), *args),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    run = Run(proc, tmp_path)
    try:
        yield run
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


class Run:
    def __init__(self, proc: asyncio.subprocess.Process, tmp: Path) -> None:
        self.proc, self.journal, self.keys = proc, tmp / "out" / "journal.sqlite", tmp / "keys"

    async def exit_code(self, timeout: float = 120.0) -> tuple[int, str]:
        assert self.proc.stdout is not None
        out = await asyncio.wait_for(self.proc.stdout.read(), timeout)
        return await self.proc.wait(), out.decode()

    def verified(self) -> bool:
        return verify_journal(self.journal, KeyStore.open(self.keys).signing_public_key()).ok


def in_fifo(message: aiomqtt.Message) -> bool:
    """Telemetry that waits in the feed's outbox (not a retained state)."""
    name = str(message.topic)
    return not (name.endswith(("/state", "/journal")) or name == f"{TREE}/status")


def frame_of(message: aiomqtt.Message) -> int | None:
    """The frame a telemetry message is about (None: a state, status or reply)."""
    try:
        value = json.loads(message.payload).get("frame")  # type: ignore[arg-type]
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, int) else None


def frames(dash: Listener) -> list[FrameSummary]:
    return [FrameSummary.model_validate_json(p) for p in dash.payloads(f"{TREE}/frame")]


def transfers(dash: Listener, frame: int) -> dict[str, TransferTelemetry]:
    got = (
        TransferTelemetry.model_validate_json(m.payload)  # type: ignore[arg-type]
        for m in dash.messages
        if str(m.topic).startswith(f"{TREE}/transfer/")
    )
    return {t.transfer: t for t in got if t.frame == frame}


def replies(dash: Listener) -> list[CommandReply]:
    return [CommandReply.model_validate_json(p) for p in dash.payloads(f"{TREE}/cmd/reply")]


async def test_a_run_feeds_the_documented_tree(tmp_path: Path, broker: Broker):
    async with listening(broker, f"{TREE}/#") as dash:
        async with controller(tmp_path, broker, "--frames", "3") as run:
            code, out = await run.exit_code()
        assert code == 0, out
        await dash.wait(lambda: dash.payloads(f"{TREE}/status")[-1:] == [b"offline"], "offline")
    assert dash.payloads(f"{TREE}/status") == [b"online", b"offline"]
    summaries = frames(dash)
    done = [r.frame for r in read_records(run.journal) if r.kind == "frame"
            and r.payload.get("phase") == "done"]  # fmt: skip
    assert [s.frame for s in summaries] == done and len(done) == 3
    for s in summaries:  # a healthy twin: everything requested is planned and delivered
        assert not s.skipped and s.mqtt_dropped == 0 and s.routers_down == ()
        assert s.packets_planned == sum(REQUESTED.values()) == s.packets_delivered
        per_transfer = transfers(dash, s.frame)
        assert {t: v.packets_planned for t, v in per_transfer.items()} == REQUESTED
        assert all(v.packets_delivered == v.packets_planned for v in per_transfer.values())
        assert all(v.shortfall_j == 0 and v.compensation == 0 for v in per_transfer.values())
        # the topics agree: the frame's delivered energy is its transfers' sum
        assert s.energy_delivered_j == pytest.approx(
            sum(v.energy_delivered_j for v in per_transfer.values()), rel=1e-9
        )
        ports = [
            PortTelemetry.model_validate_json(m.payload)  # type: ignore[arg-type]
            for m in dash.messages
            if str(m.topic).startswith(f"{TREE}/router/") and "/port/" in str(m.topic)
        ]
        assert {(p.router, p.port) for p in ports if p.frame == s.frame} == PORTS
        telemetry = [m for m in dash.messages if in_fifo(m) and frame_of(m) == s.frame]
        assert len(telemetry) == 1 + len(REQUESTED) + len(PORTS)  # summary, transfers, ports
    # what docs/mqtt.md says the outbox holds: BUFFER_MESSAGES of those frames' messages
    per_frame = 1 + len(REQUESTED) + len(PORTS)
    assert per_frame == 29 and BUFFER_MESSAGES // per_frame == 344
    assert "so the FIFO holds about 344 frames of bench-4" in " ".join(MQTT_DOC.split())
    assert run.verified()
    # a dashboard that connects afterwards still sees each router's last state, retained
    async with listening(broker, f"{TREE}/router/+/state") as late:
        await late.wait(lambda: len(late.messages) == 4, "four retained router states")
    states = {RouterState.model_validate_json(m.payload).router: m for m in late.messages}  # type: ignore[arg-type]
    assert sorted(states) == ["R1", "R2", "R3", "R4"]
    assert all(m.retain for m in states.values())
    last = [RouterState.model_validate_json(m.payload) for m in states.values()]  # type: ignore[arg-type]
    assert {s.frame for s in last} == {done[-1]}
    assert all(s.clock_uncertainty_us is not None for s in last)


async def test_commands_change_the_next_plan_or_nothing_and_the_will_says_offline(
    tmp_path: Path, broker: Broker
):
    async with (
        listening(broker, f"{TREE}/#") as dash,
        controller(tmp_path, broker, "--frames", "60") as run,
        aiomqtt.Client("127.0.0.1", broker.port) as operator,
    ):
        await until(lambda: frames(dash), "the first frame", FIRST_FRAME_S)

        async def send(topic: str, payload: bytes) -> None:
            await operator.publish(f"{TREE}/cmd/op/{topic}", payload, qos=1)

        x1 = {"id": "X1", "source": "PV1", "sink": "MEC3", "packets": 5,
              "voltage_v": 48.0, "current_a": 8.0, "value": 1.0}  # fmt: skip
        await send("transfer", json.dumps({"id": "op-1", "transfer": x1}).encode())
        await send("transfer", b"{not json")
        unknown_sink = {"id": "op-3", "transfer": dict(x1, id="X2", sink="MEC9")}
        await send("transfer", json.dumps(unknown_sink).encode())
        await dash.wait(lambda: len(replies(dash)) == 3, "three replies")
        # the malformed one is answered by the feed at once, the others by the frame loop
        by_id = {r.id: r for r in replies(dash)}
        first, bad_json, unknown = by_id["op-1"], by_id[None], by_id["op-3"]
        assert (first.id, first.ok) == ("op-1", True)
        assert not bad_json.ok and bad_json.error.startswith("not JSON")  # type: ignore[union-attr]
        assert (unknown.id, unknown.ok) == ("op-3", False)
        assert unknown.error == "transfers[X2].sink: unknown terminal 'MEC9'"
        # X1 is planned from a later frame, and delivered
        await until(
            lambda: any("X1" in transfers(dash, s.frame) for s in frames(dash)), "X1 planned"
        )
        with_x1 = next(s for s in frames(dash) if "X1" in transfers(dash, s.frame))
        await until(lambda: len(transfers(dash, with_x1.frame)) == 13, "the frame's transfers")
        x1_telemetry = transfers(dash, with_x1.frame)["X1"]
        assert x1_telemetry.packets_planned == x1_telemetry.packets_delivered == 5
        assert with_x1.packets_planned == sum(REQUESTED.values()) + 5
        run.proc.send_signal(signal.SIGKILL)
        await run.proc.wait()
        await dash.wait(lambda: dash.payloads(f"{TREE}/status")[-1:] == [b"offline"], "the will")
    assert dash.payloads(f"{TREE}/status") == [b"online", b"offline"]
    records = list(read_records(run.journal))
    commands = [r.payload for r in records if r.kind == "command"]
    assert [c["command"] for c in commands] == ["transfer"]  # the bad ones left no trace
    assert commands[0]["transfer"].items() >= x1.items()
    assert run.verified()


async def test_an_mqtt_estop_opens_every_gate_and_ends_the_run(tmp_path: Path, broker: Broker):
    async with (
        listening(broker, f"{TREE}/#") as dash,
        controller(tmp_path, broker, "--frames", "60") as run,
        aiomqtt.Client("127.0.0.1", broker.port) as operator,
    ):
        await until(lambda: frames(dash), "the first frame", FIRST_FRAME_S)
        # bad luck and attacks first: json's recursion limit, volts no header can carry,
        # and volts above the terminals' 48 V; each is answered, none changes anything
        await operator.publish(f"{TREE}/cmd/op/transfer", b"[" * 16_000, qos=1)
        x1 = {"id": "X1", "source": "PV1", "sink": "MEC3", "packets": 5,
              "voltage_v": 48_000.0, "current_a": 8.0, "value": 1.0}  # fmt: skip
        for cid, volts in (("op-1", 48_000.0), ("op-2", 400.0)):
            command = {"id": cid, "transfer": dict(x1, voltage_v=volts)}
            await operator.publish(f"{TREE}/cmd/op/transfer", json.dumps(command).encode(), qos=1)
        await dash.wait(lambda: len(replies(dash)) == 3, "three replies")
        deep, too_high, over_terminal = replies(dash)
        assert (deep.id, deep.ok, deep.error) == (None, False, "JSON nested 16000 deep; at most 16")
        assert (too_high.id, too_high.ok) == ("op-1", False)
        assert too_high.error.startswith("transfer.voltage_v: ")  # type: ignore[union-attr]
        assert (over_terminal.id, over_terminal.ok) == ("op-2", False)
        assert over_terminal.error == (
            "transfers[X1].voltage_v: 400 V exceeds terminal PV1's voltage_v (48 V) (and 1 "
            "more problem)"
        )  # MEC3's 48 V too
        seen = len(frames(dash))  # the feed lives on: more frames, then an MQTT e-stop works
        await until(lambda: len(frames(dash)) > seen, "a frame after the bad commands")
        await operator.publish(f"{TREE}/cmd/op/estop", b'{"id": "op-9", "reason": "drill"}', qos=1)
        code, out = await run.exit_code()
        assert code == 130, out
        await dash.wait(lambda: dash.payloads(f"{TREE}/status")[-1:] == [b"offline"], "offline")
    reply = replies(dash)[-1]
    assert (reply.id, reply.command, reply.ok) == ("op-9", "estop", True)
    alarms = [json.loads(p) for p in dash.payloads(f"{TREE}/alarm")]
    assert any(a["code"] == "estop" and a["severity"] == "critical" for a in alarms)
    records = list(read_records(run.journal))
    (stop,) = [r.payload for r in records if r.kind == "estop"]
    assert stop["reason"] == "MQTT e-stop by op: drill" and stop["failed"] == {}
    assert not [r for r in records if r.kind == "command"]  # the bad commands left no trace
    assert len(frames(dash)) < 60 and run.verified()


async def test_the_broker_going_away_never_stalls_the_frames(tmp_path: Path, broker: Broker):
    seen: set[int] = set()
    stop = asyncio.Event()
    dashboard = asyncio.create_task(persistent_frames(broker, seen, stop))
    try:
        async with controller(tmp_path, broker, "--frames", "8") as run:
            await until(lambda: len(seen) >= 2, "two frames", FIRST_FRAME_S)
            broker.stop()
            await asyncio.sleep(2.5)  # more than two frames with nobody to publish to
            broker.start()
            code, out = await run.exit_code()
            assert code == 0, out
        await until(lambda: len(seen) == 8, "every frame's summary")
    finally:
        stop.set()
        await dashboard
    records = list(read_records(run.journal))
    done = [r for r in records if r.kind == "frame" and r.payload.get("phase") == "done"]
    # every frame ran while the broker was away, and its summary arrived afterwards
    assert len(done) == 8 and not any(r.payload["skipped"] for r in done)
    assert seen == {r.frame for r in done}
