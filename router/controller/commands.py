"""MQTT commands, served while the frame loop runs: e-stop, add or withdraw a transfer."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from bench import Topology
from router.mqtt import (
    MqttFeed,
    Received,
    apply_transfer,
    error_reply,
    ok_reply,
    withdraw_transfer,
)
from router.mqtt.errors import CommandError
from router.mqtt.models import EstopCommand, TransferCommand, WithdrawCommand

if TYPE_CHECKING:
    from router.controller.session import Session


async def serve_commands(feed: MqttFeed, session: Session) -> None:
    """Answer every command on ``cmd/reply``; a bad one changes nothing. What changes the
    bench is journaled with the user the broker vouched for (the topic's user level)."""
    commanded: set[str] = set()  # transfers added by command in this run: withdrawable
    while True:
        received = await feed.commands.get()
        command, user = received.command, received.user
        ctl = session.controller
        if isinstance(command, EstopCommand):
            why = f": {command.reason}" if command.reason else ""
            session.stop(
                f"MQTT e-stop by {user}{why}",
                then=functools.partial(_estop_done, feed, received),  # answered once it ran
            )
        elif isinstance(command, TransferCommand) and ctl is not None:
            try:
                updated = apply_transfer(ctl.scenario, command)
            except CommandError as exc:
                feed.reply(error_reply(received, str(exc)))
                continue
            ctl.scenario, ctl.topology = updated, Topology(updated)
            commanded.add(command.transfer.id)
            await ctl.journal.append_async(
                "command",
                {"command": "transfer", "user": user, "transfer": command.transfer.model_dump()},
            )
            feed.reply(
                ok_reply(received, f"transfer {command.transfer.id} planned from the next frame")
            )
        elif isinstance(command, WithdrawCommand) and ctl is not None:
            try:
                updated = withdraw_transfer(ctl.scenario, command.transfer, commanded)
            except CommandError as exc:
                feed.reply(error_reply(received, str(exc)))
                continue
            ctl.scenario, ctl.topology = updated, Topology(updated)
            commanded.discard(command.transfer)
            await ctl.journal.append_async(
                "command", {"command": "withdraw", "user": user, "transfer": command.transfer}
            )
            feed.reply(
                ok_reply(received, f"transfer {command.transfer} withdrawn from the next frame")
            )


def _estop_done(feed: MqttFeed, received: Received, unconfirmed: dict[str, str]) -> None:
    done = "every gate opened" + (
        f", but {', '.join(unconfirmed)} did not confirm it" if unconfirmed else ""
    )
    if received.retained:
        done += (
            "; it was published retained: delete it from the broker (an empty retained "
            "message on the same topic)"
        )
    feed.reply(ok_reply(received, f"{done}; the run stops"))
