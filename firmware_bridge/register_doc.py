"""The generated parts of ``docs/register-map.md`` (and ``ppr registers``' text).

Regenerate with ``python -m firmware_bridge.register_doc docs/register-map.md``; a test
fails when the document and ``register_map.toml`` disagree.
"""

from __future__ import annotations

import sys
from pathlib import Path

from firmware_bridge import docblocks
from firmware_bridge.registers import Block, Field, RegisterMap, register_map


def _type(f: Field) -> str:
    if f.type == "bytes":
        return f"{f.registers} registers"
    if f.enum:
        return f"{f.type} enum `{f.enum}`"
    if f.bits:
        return f"{f.type} bits `{f.bits}`"
    return f.type


def _unit(f: Field) -> str:
    if f.scale != 1.0:
        return f"{f.scale:g} {f.unit}"
    return f.unit


def render_summary(rmap: RegisterMap | None = None) -> str:
    m = rmap or register_map()
    p = m.params
    rows = [
        ("magic", f"`{m.magic:#010x}`"),
        ("map version", str(m.version)),
        *((k, str(v)) for k, v in p.items()),
    ]
    return "| constant | value |\n| --- | ---: |\n" + "".join(f"| {k} | {v} |\n" for k, v in rows)


def _block(b: Block) -> str:
    table = "coil" if b.table == "coil" else "holding register"
    head = f"### `{b.name}`: {table}s {b.start:#06x}..{b.end - 1:#06x}"
    if b.repeat > 1:
        head += f" ({b.repeat} instances, stride {b.stride})"
    if b.twin_only:
        head += " (twin only)"
    lines = [head, "", b.doc, ""]
    lines += ["| address | regs | name | type | unit | access | meaning |"]
    lines += ["| --- | ---: | --- | --- | --- | --- | --- |"]
    for f in b.fields:
        addr = f"{f.address:#06x}" if b.repeat == 1 else f"{f.address:#06x} + {b.stride} n"
        regs = str(f.registers) if b.table == "holding" else "-"
        lines.append(
            f"| {addr} | {regs} | `{f.name}` | {_type(f)} | {_unit(f)} | {f.access} | {f.doc} |"
        )
    return "\n".join(lines) + "\n"


def render_blocks(rmap: RegisterMap | None = None) -> str:
    m = rmap or register_map()
    return "\n".join(_block(b) for b in m.blocks)


def render_enums(rmap: RegisterMap | None = None) -> str:
    m = rmap or register_map()
    parts = []
    for kind, table in (("enum", m.enums), ("bits", m.bits)):
        for name, values in table.items():
            what = "value" if kind == "enum" else "bit"
            parts.append(f"**`{name}`** ({kind}): {m.docs.get(name, '')}\n")
            parts.append(f"| {what} | name |\n| ---: | --- |")
            parts += [f"| {v} | `{k}` |" for k, v in sorted(values.items(), key=lambda kv: kv[1])]
            parts.append("")
    parts.append("**Exception codes** (Modbus, and the framed protocol's error replies)\n")
    parts.append("| code | name |\n| ---: | --- |")
    parts += [f"| {v} | `{k}` |" for k, v in sorted(m.exceptions.items(), key=lambda kv: kv[1])]
    return "\n".join(parts) + "\n"


def render_text() -> str:
    """What ``ppr registers`` prints."""
    m = register_map()
    parts = [
        f"register map version {m.version}\n",
        render_summary(),
        render_blocks(),
        render_enums(),
    ]
    return "\n".join(parts)


GENERATED = {"summary": render_summary, "registers": render_blocks, "enums": render_enums}


def main(argv: list[str]) -> int:
    for name in argv:
        path = Path(name)
        doc = path.read_text(encoding="utf-8")
        path.write_text(docblocks.refresh(doc, GENERATED), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
