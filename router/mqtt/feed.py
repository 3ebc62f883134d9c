"""The MQTT feed: telemetry out, commands in, and never a stall for the frame loop.

``publish_*`` and ``reply`` only enqueue (``Outbox``: bounded, oldest dropped first,
counted) and return at once, whatever the broker does. A background task connects,
announces ``online`` (retained; ``offline`` is the last will), subscribes to the
commands, re-sends the retained states, and drains the outbox with QoS 1: a message
leaves the outbox only when the broker has acknowledged it, and whatever was in flight
when the connection broke goes back to the front, so delivery is at least once. After a
failure it reconnects with exponential backoff (``Backoff``).

Call every method from the event loop's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from types import TracebackType

import aiomqtt

from firmware_bridge.tasks import stop_tasks
from router.journal.witness import Witness
from router.mqtt.buffer import Message, Outbox
from router.mqtt.commands import Received, parse_command
from router.mqtt.models import (
    Alarm,
    CommandReply,
    EstopCommand,
    FrameSummary,
    PortTelemetry,
    RouterState,
    StageAccount,
    TransferTelemetry,
)
from router.mqtt.topics import OFFLINE, ONLINE, QOS, TOPICS, Topics
from router.mqtt.url import BrokerConfig

log = logging.getLogger(__name__)

# about 344 frames of bench-4's telemetry (a summary, 12 transfers, 16 ports: 29 a frame)
BUFFER_MESSAGES = 10_000
BATCH = 64  # publishes in flight at once
MAX_INFLIGHT = BATCH  # paho's window of unacknowledged QoS 1 messages
KEEPALIVE_S = 10  # the broker declares us dead (and sends the will) after 1.5x this
OPERATION_TIMEOUT_S = 5.0  # connect, subscribe, publish: longer means the broker is gone
CLOSE_TIMEOUT_S = 2.0  # how long close() waits to flush and say "offline"
MAX_QUEUED_COMMANDS = 64  # transfer commands waiting for the frame loop; e-stops always pass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Reconnect delays: ``first``, then times ``factor`` per failure, at most ``cap``."""

    first_s: float = 0.5
    factor: float = 2.0
    cap_s: float = 10.0

    def delays(self) -> Iterator[float]:
        delay = self.first_s
        while True:
            yield delay
            delay = min(delay * self.factor, self.cap_s)


@dataclass(frozen=True, slots=True)
class FeedStats:
    connected: bool
    connects: int  # successful connections so far
    sent: int  # messages the broker acknowledged
    pending: int  # waiting in the outbox
    dropped: int  # dropped from a full outbox (oldest first)
    commands: int  # commands received, good or bad
    last_error: str | None


class MqttFeed:
    """``async with MqttFeed(config, topics) as feed:`` then publish; ``feed.commands``
    yields validated commands (malformed ones were already answered)."""

    def __init__(
        self,
        config: BrokerConfig,
        topics: Topics,
        *,
        buffer_messages: int = BUFFER_MESSAGES,
        backoff: Backoff | None = None,
        keepalive_s: int = KEEPALIVE_S,
    ) -> None:
        self.config = config
        self.topics = topics
        self.commands: asyncio.Queue[Received] = asyncio.Queue()
        self._outbox = Outbox(buffer_messages)
        self._backoff = backoff or Backoff()
        self._keepalive_s = keepalive_s
        self._tls = config.tls_context()  # reads certificate files once, up front
        self._wake = asyncio.Event()  # something to send
        self._idle = asyncio.Event()  # outbox empty and nothing in flight
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._client: aiomqtt.Client | None = None
        self._connects = self._sent = self._received = 0
        self._last_error: str | None = None

    # --- publishing: never blocks ---------------------------------------------------

    def publish_frame(self, summary: FrameSummary) -> None:
        self._put("frame", summary.model_dump_json().encode())

    def publish_router_state(self, state: RouterState) -> None:
        self._put("router_state", state.model_dump_json().encode(), router=state.router)

    def publish_port(self, port: PortTelemetry) -> None:
        self._put("port", port.model_dump_json().encode(), router=port.router, port=port.port)

    def publish_transfer(self, transfer: TransferTelemetry) -> None:
        self._put("transfer", transfer.model_dump_json().encode(), transfer=transfer.transfer)

    def publish_stage(self, account: StageAccount) -> None:
        self._put("stage", account.model_dump_json().encode(), stage=account.stage)

    def publish_alarm(self, alarm: Alarm) -> None:
        self._put("alarm", alarm.model_dump_json().encode())

    def publish_witness(self, witness: Witness) -> None:
        self._put("journal", witness.model_dump_json().encode())

    def reply(self, reply: CommandReply) -> None:
        self._put("reply", reply.model_dump_json().encode())

    def _put(self, name: str, payload: bytes, **fields: object) -> None:
        spec = TOPICS[name]
        self._outbox.put(Message(self.topics.topic(name, **fields), payload, QOS, spec.retain))
        self._idle.clear()
        self._wake.set()

    # --- state ----------------------------------------------------------------------

    @property
    def stats(self) -> FeedStats:
        return FeedStats(
            connected=self._client is not None,
            connects=self._connects,
            sent=self._sent,
            pending=len(self._outbox),
            dropped=self._outbox.dropped,
            commands=self._received,
            last_error=self._last_error,
        )

    async def flush(self, timeout_s: float) -> bool:
        """Wait until the broker has everything enqueued so far; False on timeout."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    # --- life cycle -----------------------------------------------------------------

    async def __aenter__(self) -> MqttFeed:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="mqtt-feed")

    async def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Flush what the broker will take within ``timeout_s``, publish ``offline``,
        disconnect cleanly. Returns within about ``timeout_s`` even with no broker."""
        if self._task is None:
            return
        if self._client is not None:
            await self.flush(timeout_s)
        client = self._client
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                await asyncio.wait_for(
                    client.publish(self.topics.status, OFFLINE, qos=QOS, retain=True),
                    timeout_s,
                )
        failed = await stop_tasks(self._task)
        self._task = None
        if failed:
            raise failed[0]

    # --- the background task --------------------------------------------------------

    async def _run(self) -> None:
        delays = self._backoff.delays()
        while True:
            connects = self._connects
            try:
                await self._connection()  # returns only by raising: the connection ended
            except aiomqtt.MqttError as exc:
                self._last_error = str(exc) or type(exc).__name__
                log.info("mqtt %s: %s", self.config.redacted(), self._last_error)
            if self._connects != connects:
                delays = self._backoff.delays()  # it had worked: start again from the shortest
            await asyncio.sleep(next(delays))

    async def _connection(self) -> None:
        client = aiomqtt.Client(
            self.config.host,
            self.config.port,
            username=self.config.username,
            password=self.config.password,
            identifier=self.config.client_id,
            will=aiomqtt.Will(self.topics.status, OFFLINE, qos=QOS, retain=True),
            tls_context=self._tls,
            tls_insecure=self.config.tls_insecure if self._tls else None,
            keepalive=self._keepalive_s,
            timeout=OPERATION_TIMEOUT_S,
            clean_session=True,
            max_inflight_messages=MAX_INFLIGHT,
        )
        # a full batch in flight is normal here, not the leak aiomqtt warns about
        client.pending_calls_threshold = BATCH + len(self.topics.commands) + 1
        async with _connected(client):
            await client.publish(self.topics.status, ONLINE, qos=QOS, retain=True)
            for topic in self.topics.commands:
                await client.subscribe(topic, qos=QOS)
            self._connects += 1
            self._last_error = None
            self._outbox.resend_retained()
            self._client = client
            try:
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(self._receive(client))
                    tg.create_task(self._send(client))
            except* aiomqtt.MqttError as group:
                raise group.exceptions[0] from None
            finally:
                self._client = None

    async def _send(self, client: aiomqtt.Client) -> None:
        while True:
            batch = self._outbox.take(BATCH)
            if not batch:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            confirmed: set[int] = set()
            try:
                results = await asyncio.gather(
                    *(_publish(client, m, i, confirmed) for i, m in enumerate(batch)),
                    return_exceptions=True,
                )
            finally:  # cancelled or failed: what the broker did not confirm goes back
                self._outbox.requeue([m for i, m in enumerate(batch) if i not in confirmed])
                self._sent += len(confirmed)
            errors = [r for r in results if isinstance(r, BaseException)]
            if errors:
                raise (
                    errors[0]
                    if isinstance(errors[0], aiomqtt.MqttError)
                    else aiomqtt.MqttError(str(errors[0]))
                )

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:  # raises MqttError when the connection ends
            found = self.topics.command_of(str(message.topic))
            if found is None:
                continue
            name, user = found
            self._received += 1
            payload = message.payload if isinstance(message.payload, bytes) else b""
            parsed = parse_command("estop" if name == "estop" else "transfer", payload, user)
            if isinstance(parsed, CommandReply):
                self.reply(parsed)  # malformed: answered here, nothing reaches the loop
            elif (
                not isinstance(parsed, EstopCommand)
                and self.commands.qsize() >= MAX_QUEUED_COMMANDS
            ):
                self.reply(
                    CommandReply(
                        id=parsed.id,
                        command="transfer",
                        user=user,
                        ok=False,
                        error=f"{MAX_QUEUED_COMMANDS} commands are waiting; try again later",
                    )
                )
            else:
                self.commands.put_nowait(Received(user, parsed))


async def _publish(client: aiomqtt.Client, msg: Message, i: int, confirmed: set[int]) -> None:
    await client.publish(msg.topic, msg.payload, qos=msg.qos, retain=msg.retain)
    confirmed.add(i)  # the broker acknowledged it (QoS 1)


@contextlib.asynccontextmanager
async def _connected(client: aiomqtt.Client) -> AsyncIterator[aiomqtt.Client]:
    """``async with client``, safe to cancel while connecting: aiomqtt connects in a
    worker thread that cannot be stopped, and a cancel that lands before the CONNACK
    would leave its socket open. The connect is shielded, allowed to finish (bounded by
    the client's timeout), and what it opened is closed."""
    enter = asyncio.ensure_future(client.__aenter__())
    try:
        await asyncio.shield(enter)
    except asyncio.CancelledError:
        await asyncio.wait([enter])
        if not enter.cancelled() and enter.exception() is None:
            await _disconnect(client)
        raise
    try:
        yield client
    finally:
        await _disconnect(client)


async def _disconnect(client: aiomqtt.Client) -> None:
    with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
        await client.__aexit__(None, None, None)
