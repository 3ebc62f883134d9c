"""A dashboard for tests: a real MQTT client subscribed to the controller's tree."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import aiomqtt
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from router.mqtt import FrameSummary
from tests.mosquitto import Broker

WAIT_S = 10.0


class Listener:
    """A dashboard: every message under ``ppr/#``, in arrival order."""

    def __init__(self) -> None:
        self.messages: list[aiomqtt.Message] = []

    def on(self, topic: str) -> list[aiomqtt.Message]:
        return [m for m in self.messages if str(m.topic) == topic]

    def payloads(self, topic: str) -> list[bytes]:
        return [m.payload for m in self.on(topic)]  # type: ignore[misc]

    async def wait(self, check: Callable[[], object], what: str) -> None:
        await until(check, what)


async def until(check: Callable[[], object], what: str, timeout: float = WAIT_S) -> None:
    async def poll() -> None:
        while not check():
            await asyncio.sleep(0.01)

    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        pytest.fail(f"timed out waiting for {what}")


@asynccontextmanager
async def listening(
    broker: Broker,
    topic: str = "ppr/#",
    *,
    client_id: str | None = None,
    user: str | None = None,
    password: str | None = None,
) -> AsyncIterator[Listener]:
    listener = Listener()
    async with aiomqtt.Client(
        "127.0.0.1", broker.port, identifier=client_id, username=user, password=password
    ) as client:
        await client.subscribe(topic, qos=1)

        async def collect() -> None:
            async for message in client.messages:
                listener.messages.append(message)

        task = asyncio.create_task(collect())
        try:
            yield listener
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def persistent_frames(
    broker: Broker, seen: set[int], stop: asyncio.Event, topic: str = "ppr/bench-4/frame"
) -> None:
    """A dashboard with a persistent session (clean_session off) that reconnects after
    the broker restarts, so the broker keeps what arrives meanwhile: the frame numbers
    of every summary go into ``seen`` until ``stop``."""
    while not stop.is_set():
        try:
            async with aiomqtt.Client(
                "127.0.0.1", broker.port, identifier="dashboard", clean_session=False
            ) as client:
                await client.subscribe(topic, qos=1)
                receiving = asyncio.create_task(_frames(client, seen))
                stopping = asyncio.create_task(stop.wait())
                await asyncio.wait({receiving, stopping}, return_when=asyncio.FIRST_COMPLETED)
                for task in (receiving, stopping):
                    task.cancel()
                await asyncio.gather(receiving, stopping, return_exceptions=True)
        except aiomqtt.MqttError:
            await asyncio.sleep(0.05)


async def _frames(client: aiomqtt.Client, seen: set[int]) -> None:
    async for message in client.messages:
        seen.add(FrameSummary.model_validate_json(message.payload).frame)  # type: ignore[arg-type]


def publish_v5(broker: Broker, user: str, password: str, topic: str, payload: bytes) -> int:
    """Publish once with QoS 1 over MQTT 5 and return the reason code of the broker's
    PUBACK (0: accepted, 16: accepted with no subscriber, 135: not authorized). MQTT
    3.1.1 acknowledges a refused publish like an accepted one, and aiomqtt drops the
    code, so this is paho's own client (blocking: run it in a thread)."""
    done = threading.Event()
    codes: list[int] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.username_pw_set(user, password)
    client.on_publish = lambda c, userdata, mid, code, props: (codes.append(code.value), done.set())
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1).wait_for_publish(WAIT_S)
        assert done.wait(WAIT_S), f"no PUBACK for {topic}"
    finally:
        client.disconnect()
        client.loop_stop()
    return codes[0]
