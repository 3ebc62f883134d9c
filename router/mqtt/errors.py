"""Errors of the MQTT feed.

Raised only for what the caller asked wrongly (a broker URL that cannot work, a prefix
with wildcards). A broker that is down, refuses the login or goes away is not raised:
the feed keeps retrying in the background and reports it in ``FeedStats``, because the
frame loop must never stall on telemetry.
"""

from __future__ import annotations


class MqttFeedError(Exception):
    """Root of every error of ``router.mqtt``."""


class BrokerUrlError(MqttFeedError):
    """A ``--mqtt`` URL or option that cannot describe a broker connection."""


class CommandError(MqttFeedError):
    """A command that is well formed but cannot be applied (an unknown terminal, a
    transfer the bench cannot route); the frame loop answers it with an error reply."""
