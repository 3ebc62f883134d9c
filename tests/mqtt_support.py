"""A dashboard for tests: a real MQTT client subscribed to the controller's tree."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import aiomqtt
import pytest

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
    broker: Broker, topic: str = "ppr/#", *, client_id: str | None = None
) -> AsyncIterator[Listener]:
    listener = Listener()
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier=client_id) as client:
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
