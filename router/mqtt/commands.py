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
    WithdrawCommand,
)

MODELS: dict[CommandName, type[Command]] = {
    "estop": EstopCommand,
    "transfer": TransferCommand,
    "withdraw": WithdrawCommand,
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
    retained: bool = False  # published with the retain flag (an e-stop: carried out)


def error_reply(received: Received, message: str) -> CommandReply:
    cmd = received.command
    return _error(command_name(cmd), cmd.id, message, received.user)


def ok_reply(received: Received, detail: str = "") -> CommandReply:
    cmd = received.command
    return CommandReply(
        id=cmd.id, command=command_name(cmd), user=received.user, ok=True, detail=detail
    )


def command_kind(topic_name: str) -> CommandName:
    """The command a subscribed topic (``TOPICS`` name: ``estop``, ``cmd_transfer``...)
    carries."""
    kind = topic_name.removeprefix("cmd_")
    assert kind in MODELS, topic_name
    return kind  # type: ignore[return-value]


def command_name(command: Command) -> CommandName:
    return next(name for name, model in MODELS.items() if isinstance(command, model))


def apply_transfer(scenario: Scenario, command: TransferCommand) -> Scenario:
    """The scenario with the commanded transfer added, checked as a scenario file is, and
    asking for no more packets than one frame can carry of it (it is requested anew every
    frame: more would only slow every frame's plan); ``CommandError`` if it does not fit."""
    t = command.transfer
    if any(other.id == t.id for other in scenario.transfers):
        raise CommandError(f"transfer '{t.id}' already exists")
    frame = scenario.frame
    most = max(0, min(t.deadline(frame), frame.slots - 1) - t.release_slot + 1)
    if t.packets > most:
        raise CommandError(
            f"transfer '{t.id}': {t.packets} packets, but a frame carries at most {most} of "
            f"it (one a slot, slots {t.release_slot}..{t.release_slot + most - 1}); it is "
            f"requested again every frame: ask for at most {most}"
        )
    updated = scenario.model_copy(update={"transfers": (*scenario.transfers, command.transfer)})
    try:
        check_scenario(updated)
    except ScenarioError as exc:
        raise CommandError(str(exc)) from exc
    return updated


def withdraw_transfer(scenario: Scenario, transfer_id: str, commanded: set[str]) -> Scenario:
    """The scenario without the transfer ``transfer_id``, which a command added (one of
    ``commanded``); ``CommandError`` for any other."""
    if transfer_id not in commanded:
        known = any(t.id == transfer_id for t in scenario.transfers)
        raise CommandError(
            f"transfer '{transfer_id}' "
            + ("is the scenario's, not a command's: only a commanded transfer can be "
               "withdrawn" if known else "is not a transfer a command added")
        )  # fmt: skip
    kept = tuple(t for t in scenario.transfers if t.id != transfer_id)
    return scenario.model_copy(update={"transfers": kept})


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
