"""Commands from MQTT: parsed and validated, or answered with an error reply at once.

A malformed command never reaches the frame loop: the feed replies with the first
validation error and nothing changes. A well-formed one is queued; the frame loop then
applies it (``apply_transfer`` checks a transfer against the bench) and replies.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pydantic import ValidationError

from bench import Scenario, ScenarioError
from bench.validate import check_scenario
from router.mqtt.errors import CommandError
from router.mqtt.models import (
    Command,
    CommandName,
    CommandReply,
    EstopCommand,
    TransferCommand,
)

MODELS: dict[CommandName, type[EstopCommand] | type[TransferCommand]] = {
    "estop": EstopCommand,
    "transfer": TransferCommand,
}
MAX_COMMAND_BYTES = 16_384
MAX_COMMAND_DEPTH = 16  # a transfer nests 4 deep; json's recursion must never be reached


def parse_command(
    name: CommandName, payload: bytes, user: str | None = None
) -> Command | CommandReply:
    """The command, or the error reply that answers it (to ``user``)."""
    if len(payload) > MAX_COMMAND_BYTES:
        return _error(
            name, None, f"payload of {len(payload)} bytes; at most {MAX_COMMAND_BYTES}", user
        )
    if name == "estop" and not payload.strip():
        return EstopCommand()  # the easiest possible e-stop: an empty message
    depth = nesting_depth(payload)
    if depth > MAX_COMMAND_DEPTH:
        return _error(name, None, f"JSON nested {depth} deep; at most {MAX_COMMAND_DEPTH}", user)
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return _error(name, None, f"not JSON: {exc}", user)
    raw_id = data.get("id") if isinstance(data, dict) else None
    try:
        return MODELS[name].model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        cid = raw_id if isinstance(raw_id, str) and _valid_id(raw_id) else None
        return _error(name, cid, f"{where}: {first['msg']}", user)


def nesting_depth(payload: bytes) -> int:
    """How deep ``[`` and ``{`` nest outside strings: checked before ``json.loads``, whose
    recursion a few thousand brackets exhaust (a RecursionError would kill the feed)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in payload:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


@dataclass(frozen=True, slots=True)
class Received:
    """A valid command and the user it came from: the ``{user}`` level of its topic,
    which the broker's ACL lets only that authenticated user write (docs/mqtt.md)."""

    user: str
    command: Command


def error_reply(received: Received, message: str) -> CommandReply:
    cmd = received.command
    return _error(command_name(cmd), cmd.id, message, received.user)


def ok_reply(received: Received, detail: str = "") -> CommandReply:
    cmd = received.command
    return CommandReply(
        id=cmd.id, command=command_name(cmd), user=received.user, ok=True, detail=detail
    )


def command_name(command: Command) -> CommandName:
    return "estop" if isinstance(command, EstopCommand) else "transfer"


def apply_transfer(scenario: Scenario, command: TransferCommand) -> Scenario:
    """The scenario with the commanded transfer added, checked as a scenario file is;
    ``CommandError`` (with the scenario checker's message) if it does not fit."""
    if any(t.id == command.transfer.id for t in scenario.transfers):
        raise CommandError(f"transfer '{command.transfer.id}' already exists")
    updated = scenario.model_copy(update={"transfers": (*scenario.transfers, command.transfer)})
    try:
        check_scenario(updated)
    except ScenarioError as exc:
        raise CommandError(str(exc)) from exc
    return updated


def _error(
    name: CommandName, cid: str | None, message: str, user: str | None = None
) -> CommandReply:
    return CommandReply(id=cid, command=name, user=user, ok=False, error=message)


def _valid_id(text: str) -> bool:
    try:
        EstopCommand(id=text)
    except ValidationError:
        return False
    return True
