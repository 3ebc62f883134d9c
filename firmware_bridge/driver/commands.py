"""Authenticated commands as the driver writes them: a session, numbered blocks, tags.

A controller run is one *session* (a random 32-bit id). Its first command to a router
is a claim quoting the router's challenge; every later one carries the session and a
sequence number above the last, and each block ends with the tag of
``firmware_bridge.headers.commands`` under the router's command key. A block is written
in one request, so nothing else on the bus can slip between its fields.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from firmware_bridge.headers.commands import CommandKey
from firmware_bridge.registers import RegisterMap


@dataclass(frozen=True)
class Credentials:
    """What a driver needs to command its router: the command key and the session."""

    key: CommandKey
    session: int


def new_session() -> int:
    """A fresh session id: random, never 0 (0 means 'no owner')."""
    return secrets.randbits(32) or 1


def command_registers(rmap: RegisterMap, key: CommandKey, kind: str, **values: int) -> list[int]:
    """The registers of ``cmd_<kind>``: its fields (named without their prefix: ``seq``
    for ``arm_seq``), then the tag over them."""
    block = rmap.block(f"cmd_{kind}")
    *fields, tag_field = block.fields
    regs: list[int] = []
    for f in fields:
        regs += f.encode(values[f.name.split("_", 1)[1]])
    body = b"".join(r.to_bytes(2, "big") for r in regs)
    tag = key.tag(rmap.code("command", kind), body)
    assert len(tag) == 2 * tag_field.registers
    return regs + [int.from_bytes(tag[i : i + 2], "big") for i in range(0, len(tag), 2)]
