"""The MQTT feed of docs/design.md: telemetry and retained states out, commands in.

``MqttFeed`` never blocks its caller: it enqueues into a bounded outbox that a
background task drains into the broker, reconnecting as needed. Topics and payloads are
data (``topics.TOPICS``, ``models``); ``docs/mqtt.md`` is generated from them.
"""

from router.mqtt.buffer import Message, Outbox
from router.mqtt.commands import (
    Received,
    apply_transfer,
    error_reply,
    ok_reply,
    parse_command,
)
from router.mqtt.errors import BrokerUrlError, CommandError, MqttFeedError
from router.mqtt.feed import BUFFER_MESSAGES, Backoff, FeedStats, MqttFeed
from router.mqtt.models import (
    Alarm,
    Command,
    CommandReply,
    EstopCommand,
    FrameSummary,
    PortTelemetry,
    RouterState,
    StageAccount,
    TransferCommand,
    TransferTelemetry,
)
from router.mqtt.topics import TOPICS, Topics, TopicSpec
from router.mqtt.url import BrokerConfig, parse_broker_url

__all__ = [
    "BUFFER_MESSAGES",
    "TOPICS",
    "Alarm",
    "Backoff",
    "BrokerConfig",
    "BrokerUrlError",
    "Command",
    "CommandError",
    "CommandReply",
    "EstopCommand",
    "FeedStats",
    "FrameSummary",
    "Message",
    "MqttFeed",
    "MqttFeedError",
    "Outbox",
    "PortTelemetry",
    "Received",
    "RouterState",
    "StageAccount",
    "TopicSpec",
    "Topics",
    "TransferCommand",
    "TransferTelemetry",
    "apply_transfer",
    "error_reply",
    "ok_reply",
    "parse_broker_url",
    "parse_command",
]
