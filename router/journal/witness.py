"""The journal's witness: its head (record count and last hash), signed with the
journal's key and kept outside the file, so that records cut off its end are seen.

A run writes the witness into the key store's frame reservation (``sealed-frame``) in
the same write that reserves each frame, and once more at its end; it also retains it
on MQTT (``journal``) and prints it in the run summary. ``ppr journal verify`` then
tells apart:

- a journal *shorter* than its witness, or whose record at the witnessed count is
  another: records were cut off (or rewritten);
- a journal that holds every witnessed record but not the frame reserved with the last
  witness: the controller stopped between reserving a frame and journaling it (a crash,
  a power cut), and nothing is missing.

Records appended after the last witness (at most those of one frame after a crash) are
not covered: cutting exactly those is indistinguishable from such a crash.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bench.text import plural
from router.journal.errors import JournalCorruptError
from router.journal.records import canonical_payload
from router.journal.verify import VerifyReport, read_records

if TYPE_CHECKING:
    from firmware_bridge.keystore import KeyStore
    from router.journal.store import Journal

DOMAIN = b"ppr-journal-witness/1\n"
HEX32 = r"^[0-9a-f]{64}$"


class Witness(BaseModel):
    """A journal's head, signed: what a verifier compares the file against."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    journal: str = Field(pattern=HEX32, description="hash of its genesis record: which journal")
    records: int = Field(ge=1, description="records in the journal when witnessed")
    head: str = Field(pattern=HEX32, description="hash of the last of those records")
    frame: int | None = Field(
        ge=0, description="the frame reserved in the same write (null: the end of a run)"
    )
    time: str = Field(description="when it was witnessed, UTC (ISO 8601)")
    signature: str = Field(
        pattern=r"^[0-9a-f]{128}$", description="Ed25519, by the journal's key, over the rest"
    )

    def short(self) -> str:
        """For the run summary: the count and the head's first hex digits."""
        return f"{self.records} records, head {self.head[:16]}"


def make_witness(journal: Journal, frame: int | None) -> Witness:
    """The journal's head as it stands now, signed with its key (any thread)."""
    tail = journal.tail()
    fields: dict[str, Any] = {
        "journal": journal.genesis_hash.hex(),
        "records": tail.seq,
        "head": tail.hash.hex(),
        "frame": frame,
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }
    return Witness(**fields, signature=journal.sign(_message(fields)).hex())


def _message(fields: Mapping[str, Any]) -> bytes:
    unsigned = {k: v for k, v in fields.items() if k != "signature"}
    return DOMAIN + canonical_payload(unsigned).encode()


@dataclass(frozen=True)
class WitnessCheck:
    ok: bool
    text: str  # one clause, for the verify line


def parse_witness(data: Mapping[str, Any] | str | bytes) -> Witness | None:
    """A stored or published witness; None if it is not one."""
    try:
        if isinstance(data, str | bytes):
            return Witness.model_validate_json(data)
        return Witness.model_validate(data)
    except ValidationError:
        return None


def check_witness(report: VerifyReport, witness: Witness, public_key: bytes) -> WitnessCheck:
    """Compare a journal that verified (``report``) with its witness."""
    try:
        key = Ed25519PublicKey.from_public_bytes(public_key)
        key.verify(bytes.fromhex(witness.signature), _message(witness.model_dump()))
    except (InvalidSignature, ValueError):
        return WitnessCheck(False, "its witness does not verify under the journal's key")
    if report.genesis_hash is None or witness.journal != report.genesis_hash.hex():
        return WitnessCheck(False, "the witness is another journal's")
    made = f"written {witness.time} " + (
        "at the end of a run"
        if witness.frame is None
        else f"with frame {witness.frame}'s reservation"
    )
    if report.records < witness.records:
        first, last = report.records + 1, witness.records
        missing = f"record {last} is" if first == last else f"records {first}..{last} are"
        return WitnessCheck(
            False,
            f"cut off: {plural(report.records, 'record')}, but its witness ({made}) counts "
            f"{last}: {missing} missing",
        )
    record = next(read_records(report.path, witness.records - 1), None)
    if record is None or record.hash.hex() != witness.head:
        return WitnessCheck(
            False, f"record {witness.records} is not the one its witness ({made}) names: rewritten"
        )
    if witness.frame is not None and (report.last_frame or 0) < witness.frame:
        return WitnessCheck(
            True,
            f"witnessed to record {witness.records}; frame {witness.frame} was reserved but "
            f"never journaled: the controller stopped between the reservation and the "
            f"journal write, and no record is missing",
        )
    return WitnessCheck(True, f"its end matches its witness (record {witness.records}, {made})")


def check_not_cut(journal: Journal, store: KeyStore) -> None:
    """Refuse to append to a journal that is shorter than the witness the key store keeps
    for it, or whose witnessed record is another (``JournalCorruptError``)."""
    stored = store.witness(journal.genesis_hash.hex())
    witness = None if stored is None else parse_witness(stored)
    if witness is None:
        return
    tail = journal.tail()
    report = VerifyReport(
        journal.path, tail.seq, journal.public_key, None, journal.last_frame(), None,
        journal.genesis_hash,
    )  # fmt: skip
    verdict = check_witness(report, witness, journal.public_key)
    if not verdict.ok:
        raise JournalCorruptError(
            journal.path,
            f"{verdict.text}; refusing to append (see ppr journal verify {journal.path}; "
            f"start a new one with another --out)",
            seq=min(tail.seq, witness.records),
        )
