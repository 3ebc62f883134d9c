"""Seal and open the two header layers: pure functions, no I/O, no state.

Outer entry (63 bytes) = clear header (9) || AEAD(outer key, nonce, outer plaintext (38),
AD) (38 + 16 tag). The plaintext ends with the inner entry (32 bytes) = source (2) ||
AEAD(sink key, nonce, inner plaintext (14), AD) (14 + 16 tag). Nonces and ADs are never
sent; both sides rebuild them from the clear header and what they know (``layout``).

Opening checks, cheapest first: length and version (``HeaderFormatError``), the clear
router field (``MisplacedEntryError``, unverified), a key for the claimed epoch
(``KeyEpochError``), then the tag (``HeaderAuthError``). The tag is verified under the
*claimed* frame (from ``frame_lo``), slot and index, so an authentic entry of an earlier
frame is told apart as a ``ReplayError`` and one moved to another slot or index as a
``MisplacedEntryError``, instead of both looking like forgeries.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import NamedTuple

from cryptography.exceptions import InvalidTag

from firmware_bridge.headers import layout as L
from firmware_bridge.headers.errors import (
    FieldRangeError,
    HeaderAuthError,
    HeaderFormatError,
    KeyEpochError,
    MisplacedEntryError,
    ReplayError,
)
from firmware_bridge.headers.keys import KeyRing, LayerKey

_HEADER, _BODY, _AD, _NONCE = L.OUTER_HEADER, L.OUTER_BODY, L.OUTER_AD, L.OUTER_NONCE
_IHEADER, _IBODY, _IAD, _INONCE = L.INNER_HEADER, L.INNER_BODY, L.INNER_AD, L.INNER_NONCE
_V, _I = L.VOLTAGE, L.OUTER_BODY.field("current_limit")
_E, _P = L.INNER_BODY.field("energy"), L.INNER_BODY.field("price")
# bound once: sealing and opening run per entry, hundreds of thousands of times a second
_pack_header, _unpack_header = _HEADER.struct.pack, _HEADER.struct.unpack_from
_pack_body, _unpack_body = _BODY.struct.pack, _BODY.struct.unpack
_pack_ad, _pack_nonce = _AD.struct.pack, _NONCE.struct.pack
_HSIZE, _OUTER_BYTES, _VERSION = _HEADER.size, L.OUTER_ENTRY_BYTES, L.LAYOUT_VERSION
_V_SCALE, _I_SCALE = _V.scale, _I.scale


@dataclass(frozen=True, slots=True)
class Position:
    """Where an outer entry sits: the router's slot table of ``frame``, row ``slot``,
    entry ``index`` within that slot."""

    frame: int
    slot: int
    index: int = 0


class OuterFields(NamedTuple):
    in_port: int
    out_port: int
    voltage_v: float
    current_a: float  # the current limit
    inner: bytes


# Opened entries are built once per entry opened, hundreds of thousands a second: a plain
# slots dataclass (or a named tuple) costs a fifth of a frozen dataclass to construct.
@dataclass(slots=True)
class OuterEntry:
    """An opened outer entry: what the router executes."""

    epoch: int
    frame: int
    slot: int
    index: int
    in_port: int
    out_port: int
    voltage_v: float
    current_a: float
    inner: bytes


class InnerFields(NamedTuple):
    transfer: int
    packet: int
    energy_j: float
    voltage_v: float
    price: float


class InnerEntry(NamedTuple):
    """An opened inner entry: what the sink's meter attributes."""

    epoch: int
    frame: int
    slot: int
    source: int
    sink: int
    fields: InnerFields


def seal_outer(key: LayerKey, at: Position, fields: OuterFields) -> bytes:
    """Seal one gate command for the router ``key`` belongs to."""
    router_id, frame = key.router_id, at.frame
    v = L.encode(_V, fields.voltage_v, router_id=router_id, frame=frame)
    i = L.encode(_I, fields.current_a, router_id=router_id, frame=frame)
    if len(fields.inner) != L.INNER_ENTRY_BYTES:
        raise FieldRangeError(
            "inner", len(fields.inner), f"exactly {L.INNER_ENTRY_BYTES} bytes", router_id=router_id
        )
    return seal_outer_counts(
        key, frame, at.slot, at.index, fields.in_port, fields.out_port, v, i, fields.inner
    )


def seal_outer_counts(
    key: LayerKey,
    frame: int,
    slot: int,
    index: int,
    in_port: int,
    out_port: int,
    v: int,
    i: int,
    inner: bytes,
) -> bytes:
    """``seal_outer`` with voltage and current already encoded (the frame sealer's loop)."""
    epoch, router = key.epoch, key.party.index
    try:
        header = _pack_header(_VERSION, epoch, router, frame & 0xFF, slot, index)
        body = _pack_body(in_port, out_port, v, i, inner)
        ad = _pack_ad(_VERSION, epoch, router, frame, slot, index)
        nonce = _pack_nonce(L.LAYER_OUTER, epoch, frame, slot, index, router)
    except struct.error:  # name the field that does not fit
        _check_ints(key.router_id, frame, {"frame": frame, "slot": slot, "index": index})
        _check_ints(key.router_id, frame, {"in_port": in_port, "out_port": out_port})
        raise
    return header + key.aead.encrypt(nonce, body, ad)


def open_outer(ring: KeyRing, blob: bytes, at: Position) -> OuterEntry:
    """Authenticate and decrypt an entry found at ``at`` in the table of ``ring``'s router."""
    return open_outer_at(ring, blob, at.frame, at.slot, at.index)


def open_outer_at(
    ring: KeyRing, blob: bytes, frame: int, at_slot: int, at_index: int
) -> OuterEntry:
    """``open_outer`` with the position as plain ints (the router's table loop)."""
    if len(blob) != _OUTER_BYTES:
        raise HeaderFormatError(
            f"an outer entry is {_OUTER_BYTES} bytes, got {len(blob)}",
            router_id=ring.router_id,
            frame=frame,
        )
    version, epoch, router, frame_lo, slot, index = _unpack_header(blob)
    if version != _VERSION:
        raise HeaderFormatError(
            f"layout version {version} (this router speaks {_VERSION})",
            router_id=ring.router_id,
            frame=frame,
        )
    if router != ring.party.index:
        raise MisplacedEntryError(
            f"entry addressed to router wire id {router}, this router is {ring.party.index}",
            verified=False,
            router_id=ring.router_id,
            frame=frame,
        )
    key = ring.keys.get(epoch)
    if key is None:
        raise KeyEpochError(f"no key for epoch {epoch}", router_id=ring.router_id, frame=frame)
    # the most recent frame <= this one whose low byte matches: replays of the last 255
    # frames authenticate, so they can be told apart from forgeries
    claimed = frame - ((frame - frame_lo) & 0xFF)
    if not (0 <= frame < 2**32 and 0 <= at_slot < 2**16):
        raise _out_of_range(ring.router_id, frame)  # nothing was ever sealed there
    try:
        if claimed < 0:  # no such frame: cannot be authentic
            raise InvalidTag
        ad = _pack_ad(version, epoch, router, claimed, slot, index)
        nonce = _pack_nonce(L.LAYER_OUTER, epoch, claimed, slot, index, router)
        body = key.aead.decrypt(nonce, blob[_HSIZE:], ad)
    except InvalidTag:
        raise HeaderAuthError(
            "outer tag does not verify (forged, corrupted or sealed for another key)",
            layer="outer",
            router_id=ring.router_id,
            frame=frame,
        ) from None
    if claimed != frame:
        raise ReplayError(
            f"authentic entry of frame {claimed} replayed", router_id=ring.router_id, frame=frame
        )
    if slot != at_slot or index != at_index:
        raise MisplacedEntryError(
            f"entry sealed for slot {slot} index {index} found at slot {at_slot} index {at_index}",
            verified=True,
            router_id=ring.router_id,
            frame=frame,
        )
    in_port, out_port, v, i, inner = _unpack_body(body)
    return OuterEntry(
        epoch, frame, slot, index, in_port, out_port, v * _V_SCALE, i * _I_SCALE, inner
    )


def seal_inner(key: LayerKey, frame: int, slot: int, source: int, fields: InnerFields) -> bytes:
    """Seal what the sink's meter (``key``'s party) needs, bound to the delivery slot."""
    rid = key.router_id
    energy = L.encode(_E, fields.energy_j, router_id=rid, frame=frame)
    volts = L.encode(_V, fields.voltage_v, router_id=rid, frame=frame)
    price = L.encode(_P, fields.price, router_id=rid, frame=frame)
    return seal_inner_counts(
        key, frame, slot, source, fields.transfer, fields.packet, energy, volts, price
    )


def seal_inner_counts(
    key: LayerKey,
    frame: int,
    slot: int,
    source: int,
    transfer: int,
    packet: int,
    energy: int,
    volts: int,
    price: int,
) -> bytes:
    epoch, sink = key.epoch, key.party.index
    try:
        body = _IBODY.struct.pack(transfer, packet, energy, volts, price)
        ad = _IAD.struct.pack(L.LAYOUT_VERSION, epoch, frame, slot, source, sink)
        nonce = _INONCE.struct.pack(L.LAYER_INNER, epoch, frame, slot, sink, 0)
    except struct.error:
        _check_ints(key.router_id, frame, {"frame": frame, "slot": slot, "source": source})
        _check_ints(key.router_id, frame, {"transfer": transfer, "packet": packet})
        raise
    return _IHEADER.struct.pack(source) + key.aead.encrypt(nonce, body, ad)


def open_inner(ring: KeyRing, blob: bytes, *, epoch: int, frame: int, slot: int) -> InnerEntry:
    """Open an inner entry at the sink's meter. ``epoch`` comes from the authenticated
    outer entry that carried it, ``slot`` is the slot the energy arrived in."""
    router_id, sink = ring.router_id, ring.party.index
    if len(blob) != L.INNER_ENTRY_BYTES:
        raise HeaderFormatError(
            f"an inner entry is {L.INNER_ENTRY_BYTES} bytes, got {len(blob)}",
            router_id=router_id,
            frame=frame,
        )
    key = ring.keys.get(epoch)
    if key is None:
        raise KeyEpochError(f"meter has no key for epoch {epoch}", router_id=router_id, frame=frame)
    (source,) = _IHEADER.struct.unpack_from(blob)
    if not (0 <= frame < 2**32 and 0 <= slot < 2**16):
        raise _out_of_range(router_id, frame)  # nothing was ever sealed there
    try:
        ad = _IAD.struct.pack(L.LAYOUT_VERSION, epoch, frame, slot, source, sink)
        nonce = _INONCE.struct.pack(L.LAYER_INNER, epoch, frame, slot, sink, 0)
        body = key.aead.decrypt(nonce, blob[_IHEADER.size :], ad)
    except InvalidTag:
        raise HeaderAuthError(
            f"inner tag does not verify for sink {ring.party.name}",
            layer="inner",
            router_id=router_id,
            frame=frame,
        ) from None
    transfer, packet, energy, volts, price = _IBODY.struct.unpack(body)
    fields = InnerFields(transfer, packet, energy * _E.scale, volts * _V.scale, price * _P.scale)
    return InnerEntry(epoch, frame, slot, source, sink, fields)


def _out_of_range(router_id: str, frame: int) -> HeaderFormatError:
    return HeaderFormatError(
        "the receiver's frame or slot is outside the wire format (frame < 2**32, slot < 2**16)",
        router_id=router_id,
        frame=frame,
    )


def _check_ints(router_id: str, frame: int, values: dict[str, int]) -> None:
    fields = {f.name: f for rec in L.RECORDS for f in rec.fields}
    for name, value in values.items():
        L.encode(fields[name], value, router_id=router_id, frame=frame)
