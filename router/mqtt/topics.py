"""The topic tree of docs/design.md, as data: the feed publishes by it, the doc is made of it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from router.journal.witness import Witness
from router.mqtt.errors import MqttFeedError
from router.mqtt.models import (
    Alarm,
    CommandReply,
    EstopCommand,
    FrameSummary,
    PortTelemetry,
    RouterState,
    StageAccount,
    TransferCommand,
    TransferTelemetry,
)

QOS = 1  # at least once everywhere: the feed removes a message only when the broker has it
ONLINE, OFFLINE = b"online", b"offline"
_LEVEL = re.compile(r"^[^+#/\x00]+$")  # one topic level without wildcards
# the user level of a command topic: a broker user name (as Mosquitto's %u would give it)
USER = re.compile(r"^[A-Za-z0-9_.@\-]{1,64}$")


@dataclass(frozen=True, slots=True)
class TopicSpec:
    pattern: str  # below the prefix; {router} {port} {transfer} {stage} are filled in
    direction: Literal["publish", "subscribe"]
    retain: bool
    model: type[BaseModel] | None  # None: the plain-text status
    summary: str


TOPICS: dict[str, TopicSpec] = {
    "status": TopicSpec(
        "status", "publish", True, None,
        "`online` while the controller runs; `offline` on a clean stop, and as its last "
        "will when it dies or loses the broker",
    ),
    "frame": TopicSpec("frame", "publish", False, FrameSummary, "one summary per frame"),
    "router_state": TopicSpec(
        "router/{router}/state", "publish", True, RouterState, "each router's state"
    ),
    "port": TopicSpec(
        "router/{router}/port/{port}", "publish", False, PortTelemetry,
        "each port's meter readings, per frame",
    ),
    "transfer": TopicSpec(
        "transfer/{transfer}", "publish", False, TransferTelemetry,
        "each transfer's settlement, per frame",
    ),
    "stage": TopicSpec(
        "stage/{stage}", "publish", False, StageAccount,
        "a frame stage's account of each frame that ran (MEC: each server's satisfaction)",
    ),
    "alarm": TopicSpec("alarm", "publish", False, Alarm, "alarms as they happen"),
    "estop": TopicSpec(
        "cmd/{user}/estop", "subscribe", False, EstopCommand,
        "e-stop: open every gate, stop (`{user}`: the broker user who sends it)",
    ),
    "cmd_transfer": TopicSpec(
        "cmd/{user}/transfer", "subscribe", False, TransferCommand,
        "request a transfer (`{user}` as for `estop`)",
    ),
    "reply": TopicSpec("cmd/reply", "publish", False, CommandReply, "the reply to each command"),
    "journal": TopicSpec(
        "journal", "publish", True, Witness,
        "the journal's signed head (its witness), at every frame reservation and at the end",
    ),
}  # fmt: skip


class Topics:
    """Full topic names under one prefix (default ``ppr/<scenario>``)."""

    def __init__(self, prefix: str) -> None:
        prefix = prefix.strip("/")
        if not prefix or not all(_LEVEL.match(level) for level in prefix.split("/")):
            raise MqttFeedError(
                f"MQTT prefix '{prefix}': needs non-empty levels without '+', '#' or NUL"
            )
        self.prefix = prefix

    @classmethod
    def for_scenario(cls, scenario: str) -> Topics:
        return cls(f"ppr/{scenario}")

    def topic(self, name: str, **fields: object) -> str:
        return f"{self.prefix}/{TOPICS[name].pattern.format(**fields)}"

    @property
    def status(self) -> str:
        return self.topic("status")

    @property
    def commands(self) -> dict[str, str]:
        """Subscription (a ``+`` for the user level) -> spec name, for the topics the
        controller listens to."""
        return {self.topic(n, user="+"): n for n, s in TOPICS.items() if s.direction == "subscribe"}

    def command_of(self, topic: str) -> tuple[str, str] | None:
        """(spec name, user) of a command topic ``<prefix>/cmd/<user>/<command>``; None if
        ``topic`` is not one, or its user level is not a user name."""
        head = f"{self.prefix}/cmd/"
        if not topic.startswith(head):
            return None
        user, _, rest = topic[len(head) :].partition("/")
        names = {s.pattern.rsplit("/", 1)[1]: n for n, s in TOPICS.items()
                 if s.direction == "subscribe"}  # fmt: skip
        if rest not in names or not USER.match(user):
            return None
        return names[rest], user
