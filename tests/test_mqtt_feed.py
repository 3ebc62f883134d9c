"""The MQTT feed against a real Mosquitto broker on a free loopback port."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from bench import bundled_path, load_scenario
from router.mqtt import (
    Alarm,
    Backoff,
    CommandError,
    CommandReply,
    EstopCommand,
    FrameSummary,
    MqttFeed,
    PortTelemetry,
    RouterState,
    Topics,
    TransferCommand,
    TransferTelemetry,
    apply_transfer,
    error_reply,
    ok_reply,
    parse_broker_url,
)
from router.mqtt.models import RouterStateName
from tests.mosquitto import Broker
from tests.mqtt_support import listening, persistent_frames, until

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).parents[1]
FAST = Backoff(first_s=0.05, factor=2.0, cap_s=0.3)
TOPICS = Topics.for_scenario("bench-4")
WAIT_S = 10.0


@pytest.fixture
def broker(tmp_path: Path):
    with Broker(tmp_path / "broker") as b:
        yield b


def feed_for(url: str, **kwargs: object) -> MqttFeed:
    return MqttFeed(parse_broker_url(url), TOPICS, backoff=FAST, **kwargs)  # type: ignore[arg-type]


def frame(n: int) -> FrameSummary:
    return FrameSummary(
        scenario="bench-4", frame=n, slots=200, slot_ms=5.0, packets_planned=240,
        packets_undelivered=0, packets_delivered=240.0, energy_planned_j=500.0,
        energy_delivered_j=499.0, loss_j=10.0, objective=1.1, lower_bound=1.0, gap=0.09,
        plan_ms=50.0, seal_ms=5.0, upload_ms=20.0, commit_ms=2.0, skipped=False,
        routers_down=(), alarms=0, mqtt_dropped=0,
    )  # fmt: skip


def state(router: str, name: RouterStateName = "running") -> RouterState:
    return RouterState(
        router=router,
        state=name,
        frame=7,
        alarms=(),
        clock_offset_us=12.0,
        clock_uncertainty_us=3.0,
    )


# --- the topic tree -------------------------------------------------------------------


async def test_every_topic_of_the_tree_carries_its_model(broker: Broker):
    summary, r1 = frame(7), state("R1")
    async with listening(broker) as dash, feed_for(broker.url()) as feed:
        feed.publish_frame(summary)
        feed.publish_router_state(r1)
        feed.publish_port(
            PortTelemetry(
                router="R2", port=3, frame=7, energy_j=-12.5, voltage_v=47.9, current_a=-8.0
            )
        )
        feed.publish_transfer(
            TransferTelemetry(
                transfer="S1-B2",
                frame=7,
                seller="S1",
                buyer="B2",
                packets_planned=60,
                packets_delivered=60.0,
                energy_planned_j=134.4,
                energy_delivered_j=134.2,
                shortfall_j=0.0,
                compensation=0.0,
            )
        )
        feed.publish_alarm(
            Alarm(
                frame=7, severity="warning", source="R3", code="router_offline", message="R3 down"
            )
        )
        assert await feed.flush(WAIT_S)
        await dash.wait(lambda: len(dash.messages) >= 6, "six messages")
        assert dash.payloads("ppr/bench-4/status") == [b"online"]
        assert FrameSummary.model_validate_json(dash.payloads("ppr/bench-4/frame")[0]) == summary
        got = RouterState.model_validate_json(dash.payloads("ppr/bench-4/router/R1/state")[0])
        assert got == r1
        port = json.loads(dash.payloads("ppr/bench-4/router/R2/port/3")[0])
        assert (port["energy_j"], port["current_a"]) == (-12.5, -8.0)
        assert json.loads(dash.payloads("ppr/bench-4/transfer/S1-B2")[0])["seller"] == "S1"
        assert json.loads(dash.payloads("ppr/bench-4/alarm")[0])["code"] == "router_offline"
        assert all(m.qos == 1 for m in dash.messages)
        assert feed.stats.sent == 5 and feed.stats.dropped == 0


async def test_a_late_dashboard_gets_the_retained_states_only(broker: Broker):
    async with feed_for(broker.url()) as feed:
        feed.publish_router_state(state("R1", "armed"))
        feed.publish_router_state(state("R1", "running"))  # the latest value wins
        feed.publish_router_state(state("R2", "safe"))
        feed.publish_frame(frame(1))
        assert await feed.flush(WAIT_S)
        async with listening(broker) as late:
            await late.wait(lambda: len(late.messages) >= 3, "the retained states")
            await asyncio.sleep(0.1)  # anything else would have come by now
            got = {str(m.topic): m for m in late.messages}
            assert set(got) == {
                "ppr/bench-4/status",
                "ppr/bench-4/router/R1/state",
                "ppr/bench-4/router/R2/state",
            }
            assert all(m.retain for m in late.messages)
            assert got["ppr/bench-4/status"].payload == b"online"
            r1 = RouterState.model_validate_json(got["ppr/bench-4/router/R1/state"].payload)  # type: ignore[arg-type]
            assert r1.state == "running"
    async with listening(broker, "ppr/bench-4/status") as after:
        await after.wait(lambda: after.messages, "the status after a clean stop")
        assert after.payloads("ppr/bench-4/status") == [b"offline"]


async def test_the_prefix_is_configurable(broker: Broker):
    topics = Topics("lab/bench-a/")
    async with listening(broker, "lab/#") as dash:
        async with MqttFeed(parse_broker_url(broker.url()), topics, backoff=FAST) as feed:
            feed.publish_frame(frame(1))
            assert await feed.flush(WAIT_S)
        await dash.wait(lambda: len(dash.messages) >= 3, "status, frame, status")
    assert [str(m.topic) for m in dash.messages] == [
        "lab/bench-a/status",
        "lab/bench-a/frame",
        "lab/bench-a/status",
    ]


async def test_last_will_when_the_controller_is_killed(broker: Broker):
    async with listening(broker, "ppr/killed/status") as dash:
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.mqtt_child", broker.url(), "ppr/killed"],
            stdout=subprocess.PIPE, cwd=ROOT, text=True,
        )  # fmt: skip
        try:
            assert child.stdout is not None
            line = await asyncio.to_thread(child.stdout.readline)
            assert line == "connected\n"
            await dash.wait(lambda: dash.payloads("ppr/killed/status") == [b"online"], "online")
            child.send_signal(signal.SIGKILL)
        finally:
            child.kill()
            child.wait()
            if child.stdout:
                child.stdout.close()
        await dash.wait(lambda: len(dash.messages) >= 2, "the last will")
        assert dash.payloads("ppr/killed/status") == [b"online", b"offline"]
    async with listening(broker, "ppr/killed/status") as late:
        await late.wait(lambda: late.messages, "the retained will")
        assert late.messages[0].retain and late.messages[0].payload == b"offline"


# --- commands -------------------------------------------------------------------------


async def test_command_round_trip_and_error_replies(broker: Broker):
    scenario = load_scenario(bundled_path())
    async with listening(broker, "ppr/bench-4/cmd/reply") as dash, feed_for(broker.url()) as feed:
        await until(lambda: feed.stats.connected, "the feed to connect")
        async with aiomqtt.Client("127.0.0.1", broker.port) as operator:

            async def send(topic: str, payload: bytes) -> None:
                await operator.publish(f"ppr/bench-4/cmd/op-1/{topic}", payload, qos=1)

            good: dict[str, Any] = {"id": "c-1", "transfer": {
                "id": "X1", "source": "PV1", "sink": "MEC3", "packets": 5,
                "voltage_v": 48.0, "current_a": 8.0, "value": 1.0}}  # fmt: skip
            await send("transfer", json.dumps(good).encode())
            received = await asyncio.wait_for(feed.commands.get(), WAIT_S)
            command = received.command
            assert isinstance(command, TransferCommand) and command.transfer.id == "X1"
            assert received.user == "op-1"  # the topic's user level
            updated = apply_transfer(scenario, command)
            assert updated.transfers[-1].id == "X1"
            feed.reply(ok_reply(received, "X1 planned from the next frame"))

            unknown = dict(good, id="c-2", transfer=dict(good["transfer"], sink="MEC9"))
            await send("transfer", json.dumps(unknown).encode())
            received = await asyncio.wait_for(feed.commands.get(), WAIT_S)
            with pytest.raises(CommandError) as info:
                apply_transfer(scenario, received.command)  # type: ignore[arg-type]
            feed.reply(error_reply(received, str(info.value)))

            await send("transfer", b'{"id": "c-3", "transfer": {"id": "X1"}}')  # incomplete
            await send("transfer", b"{not json")
            await send("estop", b'{"id": "c-4", "reason": 3}')  # reason must be text
            await send("estop", b"")  # the easiest e-stop: an empty message
            received = await asyncio.wait_for(feed.commands.get(), WAIT_S)
            assert received.command == EstopCommand()
            feed.reply(ok_reply(received, "gates open"))
            await dash.wait(lambda: len(dash.messages) >= 6, "six replies")
        replies = [
            CommandReply.model_validate_json(p) for p in dash.payloads("ppr/bench-4/cmd/reply")
        ]  # type: ignore[arg-type]
        assert {r.user for r in replies} == {"op-1"}  # every reply says whom it answers
        assert [(r.id, r.command, r.ok) for r in replies] == [
            ("c-1", "transfer", True),
            ("c-2", "transfer", False),
            ("c-3", "transfer", False),
            (None, "transfer", False),
            ("c-4", "estop", False),
            (None, "estop", True),
        ]
        assert replies[0].detail == "X1 planned from the next frame"
        assert replies[1].error == "transfers[X1].sink: unknown terminal 'MEC9'"
        assert replies[2].error == "transfer.source: Field required"
        assert replies[3].error is not None and replies[3].error.startswith("not JSON: ")
        assert replies[4].error == "reason: Input should be a valid string"
        assert feed.commands.empty()  # the bad ones never reached the frame loop
        assert feed.stats.commands == 6


# --- a broker that is down, goes away, or refuses us ------------------------------------


async def test_broker_restarted_mid_stream_loses_only_the_counted_drops(broker: Broker):
    """A persistent dashboard, frames 0-399; the broker is down for frames 100-399 and
    the outbox holds 100: frames 100-299 are dropped (oldest first) and counted, every
    other frame arrives."""
    seen: set[int] = set()
    async with feed_for(broker.url(), buffer_messages=100) as feed:
        stop = asyncio.Event()
        dashboard = asyncio.create_task(persistent_frames(broker, seen, stop))
        await until(lambda: feed.stats.connected, "the feed to connect")
        for n in range(100):
            feed.publish_frame(frame(n))
        assert await feed.flush(WAIT_S)
        await until(lambda: len(seen) == 100, "frames 0-99")
        broker.stop()
        await until(lambda: not feed.stats.connected, "the feed to notice")
        for n in range(100, 400):
            feed.publish_frame(frame(n))  # returns at once: nothing to wait for
        assert feed.stats.pending == 100 and feed.stats.dropped == 200
        broker.start()
        assert await feed.flush(WAIT_S)
        await until(lambda: 399 in seen, "the last frame")
        stop.set()
        await dashboard
        assert feed.stats.connects == 2 and feed.stats.dropped == 200
    assert seen == set(range(100)) | set(range(300, 400))


async def test_no_broker_at_all_never_blocks_and_close_returns(tmp_path: Path):
    silent = Broker(tmp_path / "never-started")  # a free port nobody listens on
    feed = feed_for(silent.url(), buffer_messages=10)
    async with feed:
        for n in range(25):
            feed.publish_frame(frame(n))
        await until(lambda: feed.stats.last_error, "a connection error")
        assert not feed.stats.connected
        assert (feed.stats.pending, feed.stats.dropped) == (10, 15)
        assert "Connection refused" in str(feed.stats.last_error)
    assert feed.stats.sent == 0


async def test_password_login(tmp_path: Path):
    with Broker(tmp_path / "broker", users={"ppr": "s3cret:/@"}) as broker:
        url = f"mqtt://ppr:s3cret%3A%2F%40@127.0.0.1:{broker.port}"
        async with feed_for(url) as feed:
            feed.publish_frame(frame(1))
            assert await feed.flush(WAIT_S)
            assert feed.stats.sent == 1
        async with feed_for(broker.url("ppr", "wrong")) as refused:
            refused.publish_frame(frame(2))
            await until(lambda: refused.stats.last_error, "the refusal")
            assert not refused.stats.connected and refused.stats.pending == 1
            assert "authori" in str(refused.stats.last_error).lower()


async def test_tls_with_the_broker_ca_and_refusal_without_it(tmp_path: Path):
    with Broker(tmp_path / "broker", tls=True) as broker:
        async with feed_for(broker.url()) as feed:
            feed.publish_frame(frame(1))
            assert await feed.flush(WAIT_S)
            assert feed.stats.sent == 1 and parse_broker_url(broker.url()).tls
        async with feed_for(f"mqtts://localhost:{broker.port}") as untrusted:
            await until(lambda: untrusted.stats.last_error, "the certificate refusal")
            assert "CERTIFICATE_VERIFY_FAILED" in str(untrusted.stats.last_error)
            assert not untrusted.stats.connected
