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
    """Answer every command on ``cmd/reply``; a bad one changes nothing."""
    while True:
        command = await feed.commands.get()
        ctl = session.controller
        if isinstance(command, EstopCommand):
            session.stop(f"MQTT e-stop{': ' + command.reason if command.reason else ''}")
            feed.reply(ok_reply(command, "every gate opened; the run stops"))
        elif isinstance(command, TransferCommand) and ctl is not None:
            try:
                updated = apply_transfer(ctl.scenario, command)
            except CommandError as exc:
                feed.reply(error_reply(command, str(exc)))
                continue
            ctl.scenario, ctl.topology = updated, Topology(updated)
            await ctl.journal.append_async(
                "command", {"command": "transfer", "transfer": command.transfer.model_dump()}
            )
            feed.reply(
                ok_reply(command, f"transfer {command.transfer.id} planned from the next frame")
            )
