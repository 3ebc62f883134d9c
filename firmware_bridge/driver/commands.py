"""Authenticated commands as the driver writes them: a session, numbered blocks, tags.

A controller run is one *session* (a random 32-bit id). Its first command to a router
is a claim quoting the router's challenge; every later one carries the session and a
sequence number above the last, and each block holds the tag of
``firmware_bridge.headers.commands`` under the router's command key (over the rest of
the write). A block is written in one request, so nothing else on the bus can slip
between its fields; even the slot-table rows travel in commands (``cmd_upload``).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
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


def command_registers(
    rmap: RegisterMap, key: CommandKey, kind: str, **values: int | Sequence[int]
) -> list[int]:
    """The registers of one ``cmd_<kind>`` write: its fields (named without their prefix:
    ``seq`` for ``arm_seq``; a ``bytes`` field as its registers, ``data`` of cmd_upload
    as its rows' registers), the tag in its place, over every other register written."""
    block = rmap.block(f"cmd_{kind}")
    tag_field = block.tag
    before: list[int] = []
    after: list[int] = []
    for f in block.fields:
        if f is tag_field:
            continue
        value = values[f.name.split("_", 1)[1]]
        regs = list(value) if isinstance(value, Sequence) else f.encode(value)
        if f.type == "bytes" and not (
            len(regs) <= f.registers
            if f is block.fields[-1] and block.rows
            else len(regs) == f.registers
        ):
            raise ValueError(f"{f.name}: {len(regs)} registers do not fit {f.registers}")
        (before if f.address < tag_field.address else after).extend(regs)
    body = b"".join(r.to_bytes(2, "big") for r in before + after)
    tag = key.tag(rmap.code("command", kind), body)
    assert len(tag) == 2 * tag_field.registers
    return before + [int.from_bytes(tag[i : i + 2], "big") for i in range(0, len(tag), 2)] + after
