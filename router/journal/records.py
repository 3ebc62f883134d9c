"""Journal records: their canonical encoding, hash chain and signature.

A record is (seq, time_ns, kind, frame, payload). Its hash is SHA-256 over a domain tag,
the previous record's hash and a length-prefixed binary encoding of those fields, so no
two different records encode alike (no separator games, no float formatting: the payload
is hashed as the exact UTF-8 JSON text that is stored). The controller signs that hash
with Ed25519. The first record (``genesis``) carries the signing public key; every later
record must verify under it.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel

from router.journal.errors import RecordError

FORMAT = 1
DOMAIN = b"ppr-journal/1\n"
GENESIS_PREV = bytes(32)  # what the first record chains to
HASH_BYTES, SIGNATURE_BYTES, PUBLIC_KEY_BYTES = 32, 64, 32
MAX_FRAME = 0xFFFF_FFFF  # frame numbers travel as 32-bit fields in headers

Kind = Literal[
    "genesis",  # the first record: format and signing public key (written by the journal)
    "start",  # a controller (re)started on this journal
    "plan",  # a frame's plan; journaled before it is sealed, so its number is burned
    "upload",
    "commit",
    "frame",  # a frame's summary
    "meters",
    "settlement",
    "stage",  # a frame stage's account of a frame (MEC satisfaction, day-ahead trades)
    "alarm",
    "command",  # a command received (MQTT, CLI) and what was done with it
    "estop",
    "stop",  # a clean shutdown
]
KINDS: tuple[str, ...] = get_args(Kind)

Payload = Mapping[str, Any] | BaseModel


@dataclass(frozen=True, slots=True)
class Record:
    seq: int
    time_ns: int
    kind: str
    frame: int | None
    payload_text: str  # canonical JSON, exactly as hashed and stored
    prev_hash: bytes
    hash: bytes
    signature: bytes

    @property
    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.payload_text)
        return data

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.time_ns / 1e9, UTC)

    def describe(self) -> str:
        frame = "" if self.frame is None else f", frame {self.frame}"
        return f"record {self.seq} ({self.kind}{frame})"


def canonical_payload(payload: Payload) -> str:
    """Sorted keys, no spaces, UTF-8, no NaN: one text per value."""
    data = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload
    if not isinstance(data, Mapping):
        raise RecordError(None, f"a payload is a JSON object, not {type(data).__name__}")
    try:
        return json.dumps(
            data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise RecordError(None, f"payload is not JSON: {exc}") from exc


def check_fields(kind: str, frame: int | None) -> None:
    if kind not in KINDS:
        raise RecordError(None, f"unknown record kind '{kind}' (choose from {', '.join(KINDS)})")
    if frame is not None and (isinstance(frame, bool) or not 0 <= frame <= MAX_FRAME):
        raise RecordError(None, f"frame {frame!r} is outside 0..{MAX_FRAME}")


def digest(
    seq: int, time_ns: int, kind: str, frame: int | None, payload_text: str, prev_hash: bytes
) -> bytes:
    kind_b, payload_b = kind.encode(), payload_text.encode()
    h = hashlib.sha256(DOMAIN)
    h.update(prev_hash)
    h.update(struct.pack(">QqBQ", seq, time_ns, frame is not None, frame or 0))
    h.update(struct.pack(">H", len(kind_b)) + kind_b)
    h.update(struct.pack(">Q", len(payload_b)) + payload_b)
    return h.digest()


def genesis_key(record: Record) -> bytes:
    """The signing public key a genesis record announces (``ValueError`` if it has none)."""
    if record.kind != "genesis":
        raise ValueError(f"record {record.seq} is a '{record.kind}' record, not the genesis")
    key = bytes.fromhex(str(record.payload.get("signing_key", "")))
    if len(key) != PUBLIC_KEY_BYTES:
        raise ValueError(f"record {record.seq}: genesis names no 32-byte signing key")
    return key


def problem(record: Record, previous_hash: bytes, key: Ed25519PublicKey) -> str | None:
    """Why ``record`` does not belong after a record hashed ``previous_hash`` in a journal
    signed by ``key``; ``None`` if it does."""
    if record.prev_hash != previous_hash:
        return (
            "its link to the previous record is broken (a record before it was removed, "
            "reordered or altered)"
        )
    try:
        json.loads(record.payload_text)
    except ValueError:
        return "its payload is not JSON"
    expected = digest(
        record.seq,
        record.time_ns,
        record.kind,
        record.frame,
        record.payload_text,
        record.prev_hash,
    )
    if record.hash != expected:
        return "its hash does not match its content (altered, or written incompletely)"
    try:
        key.verify(record.signature, record.hash)
    except InvalidSignature:
        return "its signature does not verify under the journal's key"
    return None


def row_to_record(row: tuple[Any, ...]) -> Record | str:
    """A stored row as a record, or why it cannot be one (wrong column types or sizes:
    SQLite stores whatever it is given, so a tampered file can hold anything)."""
    seq, time_ns, kind, frame, payload, prev_hash, hash_, signature = row
    checks = [
        (isinstance(seq, int), "seq is not an integer"),
        (isinstance(time_ns, int), "time is not an integer"),
        (isinstance(kind, str), "kind is not text"),
        (frame is None or isinstance(frame, int), "frame is not an integer"),
        (isinstance(payload, str), "payload is not text"),
        (isinstance(prev_hash, bytes) and len(prev_hash) == HASH_BYTES, "bad previous hash"),
        (isinstance(hash_, bytes) and len(hash_) == HASH_BYTES, "bad hash"),
        (isinstance(signature, bytes) and len(signature) == SIGNATURE_BYTES, "bad signature"),
    ]
    for ok, why in checks:
        if not ok:
            return why
    if not (0 <= time_ns < 2**63) or (frame is not None and not 0 <= frame <= MAX_FRAME):
        return "time or frame out of range"
    return Record(seq, time_ns, kind, frame, payload, prev_hash, hash_, signature)
