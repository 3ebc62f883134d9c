"""The feed's outbox: bounded for telemetry, last-value for retained states.

Telemetry (frames, ports, transfers, alarms, replies) waits in a FIFO of ``capacity``
messages; when it is full the *oldest* is dropped and counted, so a long broker outage
costs the oldest history, never the newest, and never memory. Retained topics (status,
router states) are states, not history: only the latest value per topic is kept, it is
never dropped, and all of them are sent again after every reconnect (a restarted broker
may have lost them). Messages taken for sending and not confirmed go back to the front.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    qos: int
    retain: bool


class Outbox:
    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity = {capacity} must be >= 1")
        self.capacity = capacity
        self._fifo: deque[Message] = deque()
        self._retained: dict[str, Message] = {}  # latest value per topic
        self._unsent: OrderedDict[str, None] = OrderedDict()  # retained topics to (re)send
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._fifo) + len(self._unsent)

    def put(self, msg: Message) -> None:
        if msg.retain:
            self._retained[msg.topic] = msg
            self._unsent[msg.topic] = None
            self._unsent.move_to_end(msg.topic)
            return
        self._fifo.append(msg)
        self._trim()

    def take(self, limit: int) -> list[Message]:
        """Up to ``limit`` messages: retained states first, then telemetry in order."""
        out: list[Message] = []
        while self._unsent and len(out) < limit:
            topic, _ = self._unsent.popitem(last=False)
            out.append(self._retained[topic])
        while self._fifo and len(out) < limit:
            out.append(self._fifo.popleft())
        return out

    def requeue(self, messages: list[Message]) -> None:
        """Put unconfirmed messages back at the front, in their order."""
        for msg in reversed(messages):
            if not msg.retain:
                self._fifo.appendleft(msg)
            elif self._retained.get(msg.topic) is msg and msg.topic not in self._unsent:
                self._unsent[msg.topic] = None
                self._unsent.move_to_end(msg.topic, last=False)
            # a retained message superseded meanwhile is not worth sending
        self._trim()

    def resend_retained(self) -> None:
        """After a (re)connect: every retained state is sent again."""
        for topic in self._retained:
            self._unsent.setdefault(topic, None)

    def _trim(self) -> None:
        while len(self._fifo) > self.capacity:
            self._fifo.popleft()
            self.dropped += 1
