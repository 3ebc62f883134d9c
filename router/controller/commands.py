"""MQTT commands, served while the frame loop runs: e-stop and add a transfer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench import Topology
from router.mqtt import MqttFeed, apply_transfer, error_reply, ok_reply
from router.mqtt.errors import CommandError
from router.mqtt.models import EstopCommand, TransferCommand

if TYPE_CHECKING:
    from router.controller.session import Session


async def serve_commands(feed: MqttFeed, session: Session) -> None:
    """Answer every command on ``cmd/reply``; a bad one changes nothing. What changes the
    bench is journaled with the user the broker vouched for (the topic's user level)."""
    while True:
        received = await feed.commands.get()
        command, user = received.command, received.user
        ctl = session.controller
        if isinstance(command, EstopCommand):
            why = f": {command.reason}" if command.reason else ""
            session.stop(f"MQTT e-stop by {user}{why}")
            feed.reply(ok_reply(received, "every gate opened; the run stops"))
        elif isinstance(command, TransferCommand) and ctl is not None:
            try:
                updated = apply_transfer(ctl.scenario, command)
            except CommandError as exc:
                feed.reply(error_reply(received, str(exc)))
                continue
            ctl.scenario, ctl.topology = updated, Topology(updated)
            await ctl.journal.append_async(
                "command",
                {"command": "transfer", "user": user, "transfer": command.transfer.model_dump()},
            )
            feed.reply(
                ok_reply(received, f"transfer {command.transfer.id} planned from the next frame")
            )
