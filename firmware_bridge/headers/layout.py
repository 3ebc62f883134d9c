"""Byte layout of sealed slot-table headers, as data (layout version 1).

Every record below is a sequence of big-endian unsigned integers (plus one fixed-size
byte string, the nested inner entry). Physical quantities travel as fixed-point counts,
``value = count * scale``; ``encode`` refuses a value outside ``0 .. max_value`` with a
``FieldRangeError`` that names the field and the range. ``docs/headers.md`` renders these
tables (``render_tables``) and a test keeps it in step.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

from firmware_bridge.headers.errors import FieldRangeError

LAYOUT_VERSION = 1
TAG_BYTES = 16  # AES-GCM-SIV tag, never truncated
NONCE_BYTES = 12
KEY_BYTES = 32  # AES-256-GCM-SIV
STORE_PORT = 0xFF  # in_port / out_port meaning "the router's packet store", not a port
LAYER_OUTER = 0x01  # first nonce byte: keeps the two layers' nonce spaces apart
LAYER_INNER = 0x02
MAX_EPOCH = 0xFFFF


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    code: str  # struct code: B (u8), H (u16), I (u32) or Ns (N bytes)
    doc: str
    scale: float = 1.0  # physical units per count (1: a plain integer)
    unit: str = ""
    fixed: int | None = None  # a constant, not a variable

    @property
    def size(self) -> int:
        return struct.calcsize(">" + self.code)

    @property
    def is_bytes(self) -> bool:
        return self.code.endswith("s")

    @property
    def max_count(self) -> int:
        return (1 << (8 * self.size)) - 1

    @property
    def max_value(self) -> float:
        return self.max_count * self.scale

    def range_text(self) -> str:
        if self.fixed is not None:
            return f"always {self.fixed:#04x}"
        if self.scale == 1.0:
            return f"0..{self.max_count}"
        return (
            f"0..{self.max_value:.{_decimals(self.scale)}f} {self.unit} (steps of {self.scale:g})"
        )


@dataclass(frozen=True)
class Record:
    name: str
    fields: tuple[Field, ...]
    doc: str
    struct: struct.Struct = field(init=False, repr=False)

    def __post_init__(self) -> None:
        codes = "".join(f.code for f in self.fields)
        object.__setattr__(self, "struct", struct.Struct(">" + codes))

    @property
    def size(self) -> int:
        return self.struct.size

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    def offsets(self) -> list[tuple[int, Field]]:
        out, at = [], 0
        for f in self.fields:
            out.append((at, f))
            at += f.size
        return out


def _decimals(scale: float) -> int:
    return max(0, -math.floor(math.log10(scale)))


VERSION = Field("version", "B", "layout version", fixed=LAYOUT_VERSION)
EPOCH = Field("epoch", "H", "key epoch (1.. ; a rotation adds one)")
ROUTER = Field("router", "H", "router wire id (index in the key store)")
FRAME = Field("frame", "I", "frame number, strictly increasing per router")
FRAME_LO = Field("frame_lo", "B", "frame number mod 256")
SLOT = Field("slot", "H", "slot of the frame the entry is for")
INDEX = Field("index", "B", "entry index within (router, slot)")
SOURCE = Field("source", "H", "source terminal wire id")
SINK = Field("sink", "H", "sink terminal wire id")
VOLTAGE = Field("voltage", "H", "packet voltage", 0.01, "V")

INNER_HEADER = Record(
    "inner clear header", (SOURCE,), "sent in clear, authenticated (part of the AD)"
)
INNER_BODY = Record(
    "inner plaintext",
    (
        Field("transfer", "H", "transfer wire id (index in the scenario's transfers)"),
        Field("packet", "H", "packet number within its transfer in this frame"),
        Field("energy", "I", "packet energy at the source", 1e-4, "J"),
        VOLTAGE,
        Field("price", "I", "price reference: per-packet price of the trade", 1e-6, "units"),
    ),
    "encrypted end to end for the sink terminal's meter",
)
INNER_ENTRY_BYTES = INNER_HEADER.size + INNER_BODY.size + TAG_BYTES

OUTER_HEADER = Record(
    "outer clear header",
    (VERSION, EPOCH, ROUTER, FRAME_LO, SLOT, INDEX),
    "sent in clear, authenticated (expanded into the AD)",
)
OUTER_BODY = Record(
    "outer plaintext",
    (
        Field("in_port", "B", f"gate the packet enters by ({STORE_PORT}: from the store)"),
        Field("out_port", "B", f"gate the packet leaves by ({STORE_PORT}: into the store)"),
        VOLTAGE,
        Field("current_limit", "H", "current limit of the packet", 0.01, "A"),
        Field("inner", f"{INNER_ENTRY_BYTES}s", "the sealed inner entry, passed on unread"),
    ),
    "encrypted for the one router that executes the entry",
)
OUTER_AD = Record(
    "outer associated data",
    (VERSION, EPOCH, ROUTER, FRAME, SLOT, INDEX),
    "never sent: rebuilt by the router from the header and its table position",
)
OUTER_NONCE = Record(
    "outer nonce",
    (Field("layer", "B", "layer tag", fixed=LAYER_OUTER), EPOCH, FRAME, SLOT, INDEX, ROUTER),
    "never sent: derived, unique per (key, epoch, frame, slot, index)",
)
INNER_AD = Record(
    "inner associated data",
    (VERSION, EPOCH, FRAME, Field("slot", "H", "delivery slot (the sink's access)"), SOURCE, SINK),
    "never sent: rebuilt by the meter",
)
INNER_NONCE = Record(
    "inner nonce",
    (
        Field("layer", "B", "layer tag", fixed=LAYER_INNER),
        EPOCH,
        FRAME,
        Field("slot", "H", "delivery slot"),
        SINK,
        Field("zero", "B", "padding", fixed=0),
    ),
    "never sent: derived, unique per (sink key, epoch, frame, delivery slot)",
)

COMMAND_PREFIX = Record(
    "command message prefix",
    (
        VERSION,
        Field("kind", "B", "command kind (the register map's enum `command`)"),
        ROUTER,
        EPOCH,
    ),
    "never sent: both ends put it before the command block's registers to make the message",
)

OUTER_ENTRY_BYTES = OUTER_HEADER.size + OUTER_BODY.size + TAG_BYTES

RECORDS = (
    OUTER_HEADER,
    OUTER_BODY,
    OUTER_AD,
    OUTER_NONCE,
    INNER_HEADER,
    INNER_BODY,
    INNER_AD,
    INNER_NONCE,
    COMMAND_PREFIX,
)


def encode(
    f: Field,
    value: float,
    *,
    label: str | None = None,
    router_id: str | None = None,
    frame: int | None = None,
) -> int:
    """The fixed-point count of ``value``; ``FieldRangeError`` (naming ``label`` or the
    field) outside the field's range."""
    count = value if f.scale == 1.0 else _scaled(value, f.scale)
    if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= f.max_count:
        raise FieldRangeError(
            label or f.name, value, f.range_text(), router_id=router_id, frame=frame
        )
    return count


def _scaled(value: float, scale: float) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return math.nan  # not a count: refused by the caller
    return round(value / scale)


def decode(f: Field, count: int) -> float:
    return count * f.scale


def render_tables() -> str:
    """Markdown tables of every record: offset, size, field, meaning, range."""
    parts = []
    for rec in RECORDS:
        parts.append(f"**{rec.name}** ({rec.size} bytes): {rec.doc}\n")
        parts.append("| offset | bytes | field | meaning | range |")
        parts.append("| ---: | ---: | --- | --- | --- |")
        for at, f in rec.offsets():
            span = "bytes" if f.is_bytes else f.range_text()
            parts.append(f"| {at} | {f.size} | `{f.name}` | {f.doc} | {span} |")
        parts.append("")
    return "\n".join(parts).rstrip() + "\n"
