"""The register map, loaded from ``register_map.toml`` into frozen, typed models.

Everything that knows an address asks this module: the drivers pack and unpack through
``Block.decode`` / ``Field.encode``, the twin serves the same blocks, and
``docs/register-map.md`` is rendered from it (``firmware_bridge.register_doc``).
"""

from __future__ import annotations

import functools
import itertools
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

Table = Literal["coil", "holding"]
Access = Literal["r", "w", "rw"]

# registers per type; "bytes" fields say their own size
_WIDTH = {"bool": 1, "u16": 1, "u32": 2, "u64": 4, "i32": 2, "i64": 4}
_SIGNED = {"i32", "i64"}


class RegisterMapError(Exception):
    """The register map file is inconsistent (a packaging bug, not a user mistake)."""


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    type: str
    address: int  # of the first register (or the coil), for repeat 0
    registers: int
    access: Access
    doc: str
    unit: str = ""
    scale: float = 1.0
    enum: str | None = None
    bits: str | None = None

    def encode(self, value: int | float) -> list[int]:
        """Registers (high word first) of a value in the field's unit."""
        count = round(value / self.scale) if self.scale != 1.0 else int(value)
        limit = 1 << (16 * self.registers)
        if self.type in _SIGNED:
            if not -limit // 2 <= count < limit // 2:
                raise ValueError(f"{self.name} = {value!r} does not fit {self.type}")
            count &= limit - 1
        if not 0 <= count < limit:
            raise ValueError(f"{self.name} = {value!r} does not fit {self.type}")
        return [(count >> (16 * (self.registers - 1 - i))) & 0xFFFF for i in range(self.registers)]

    def decode(self, regs: Sequence[int]) -> int | float:
        count = 0
        for r in regs[: self.registers]:
            count = (count << 16) | (r & 0xFFFF)
        if self.type in _SIGNED and count >> (16 * self.registers - 1):
            count -= 1 << (16 * self.registers)
        return count * self.scale if self.scale != 1.0 else count


@dataclass(frozen=True)
class Block:
    name: str
    table: Table
    start: int
    doc: str
    fields: tuple[Field, ...]
    repeat: int = 1
    stride: int = 0
    twin_only: bool = False

    @property
    def size(self) -> int:
        """Registers (or coils) of one instance."""
        return sum(f.registers for f in self.fields)

    @property
    def end(self) -> int:
        """One past the last address of the block, all instances included."""
        return self.start + (self.repeat - 1) * self.stride + self.size

    def base(self, instance: int = 0) -> int:
        if not 0 <= instance < self.repeat:
            raise IndexError(f"{self.name} has {self.repeat} instances, not {instance + 1}")
        return self.start + instance * self.stride

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"block {self.name} has no field {name}")

    def decode(self, regs: Sequence[int]) -> dict[str, int | float]:
        """Fields of one instance from its registers (read from ``base(i)``)."""
        out = {}
        for f in self.fields:
            off = f.address - self.start
            out[f.name] = f.decode(regs[off : off + f.registers])
        return out


@dataclass(frozen=True)
class RegisterMap:
    magic: int
    version: int
    params: Mapping[str, int]
    enums: Mapping[str, Mapping[str, int]]
    bits: Mapping[str, Mapping[str, int]]
    exceptions: Mapping[str, int]
    blocks: tuple[Block, ...]
    docs: Mapping[str, str] = field(default_factory=dict)  # enum / bits / exceptions docs

    def block(self, name: str) -> Block:
        for b in self.blocks:
            if b.name == name:
                return b
        raise KeyError(f"no register block {name}")

    def field(self, name: str) -> Field:
        """A field by name, searched over every block (names are unique)."""
        for b in self.blocks:
            for f in b.fields:
                if f.name == name:
                    return f
        raise KeyError(f"no register {name}")

    def enum_name(self, enum: str, value: int) -> str:
        for name, v in self.enums[enum].items():
            if v == value:
                return name
        return f"unknown({value})"

    def code(self, enum: str, name: str) -> int:
        return self.enums[enum][name]

    def bit_names(self, bits: str, value: int) -> list[str]:
        return [n for n, b in self.bits[bits].items() if value >> b & 1]

    def to_json(self) -> dict[str, Any]:
        return {
            "magic": self.magic,
            "version": self.version,
            "params": dict(self.params),
            "enums": {k: dict(v) for k, v in self.enums.items()},
            "bits": {k: dict(v) for k, v in self.bits.items()},
            "exceptions": dict(self.exceptions),
            "blocks": [
                {
                    "name": b.name,
                    "table": b.table,
                    "start": b.start,
                    "repeat": b.repeat,
                    "stride": b.stride,
                    "twin_only": b.twin_only,
                    "doc": b.doc,
                    "fields": [
                        {
                            "name": f.name,
                            "address": f.address,
                            "registers": f.registers,
                            "type": f.type,
                            "access": f.access,
                            "unit": f.unit,
                            "scale": f.scale,
                            "enum": f.enum,
                            "bits": f.bits,
                            "doc": f.doc,
                        }
                        for f in b.fields
                    ],
                }
                for b in self.blocks
            ],
        }


def parse_map(data: Mapping[str, Any]) -> RegisterMap:
    params = dict(data["map"])
    magic, version = params.pop("magic"), params.pop("version")
    blocks = []
    for raw in data["blocks"]:
        address, fields = raw["start"], []
        for f in raw["fields"]:
            width = f.get("registers", _WIDTH.get(f["type"]))
            if width is None:
                raise RegisterMapError(f"{raw['name']}.{f['name']}: unknown type {f['type']}")
            fields.append(
                Field(
                    name=f["name"],
                    type=f["type"],
                    address=address,
                    registers=width,
                    access=f["access"],
                    doc=f["doc"],
                    unit=f.get("unit", ""),
                    scale=float(f.get("scale", 1.0)),
                    enum=f.get("enum"),
                    bits=f.get("bits"),
                )
            )
            address += width
        blocks.append(
            Block(
                name=raw["name"],
                table=raw["table"],
                start=raw["start"],
                doc=raw["doc"],
                fields=tuple(fields),
                repeat=raw.get("repeat", 1),
                stride=raw.get("stride", 0),
                twin_only=raw.get("twin_only", False),
            )
        )
    rmap = RegisterMap(
        magic=magic,
        version=version,
        params=params,
        enums={k: v["values"] for k, v in data["enums"].items()},
        bits={k: v["values"] for k, v in data["bits"].items()},
        exceptions=data["exceptions"]["values"],
        blocks=tuple(blocks),
        docs={k: v["doc"] for k, v in (*data["enums"].items(), *data["bits"].items())},
    )
    _check(rmap)
    return rmap


def _check(rmap: RegisterMap) -> None:
    """No two blocks of one table overlap; strides fit their block."""
    for table in ("coil", "holding"):
        spans = sorted((b.start, b.end, b.name) for b in rmap.blocks if b.table == table)
        for (_, end, name), (start, _, other) in itertools.pairwise(spans):
            if start < end:
                raise RegisterMapError(f"blocks {name} and {other} overlap")
    for b in rmap.blocks:
        if b.repeat > 1 and b.stride < b.size:
            raise RegisterMapError(f"block {b.name}: stride {b.stride} < size {b.size}")
        if b.end > 0x10000:
            raise RegisterMapError(f"block {b.name} ends past 0xFFFF")


@functools.cache
def register_map() -> RegisterMap:
    """The packaged register map (parsed once)."""
    text = (resources.files("firmware_bridge") / "register_map.toml").read_text(encoding="utf-8")
    return parse_map(tomllib.loads(text))
