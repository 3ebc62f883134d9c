"""The controller's journal: every plan, upload, commit, meter reading, settlement and
alarm, hash-chained and signed with the controller's Ed25519 key, in one SQLite file.

``Journal`` appends (durably, one writer at a time) and tells a restarted controller its
next frame number; ``verify_journal`` checks a file and names the first bad record.
"""

from router.journal.errors import (
    JournalCorruptError,
    JournalError,
    JournalKeyError,
    JournalLockedError,
    RecordError,
)
from router.journal.records import KINDS, MAX_FRAME, Kind, Record
from router.journal.store import DEFAULT_JOURNAL, FIRST_FRAME, Entry, Journal
from router.journal.verify import (
    BadRecord,
    VerifyReport,
    journal_last_frame,
    read_records,
    verify_journal,
)

__all__ = [
    "DEFAULT_JOURNAL",
    "FIRST_FRAME",
    "KINDS",
    "MAX_FRAME",
    "BadRecord",
    "Entry",
    "Journal",
    "JournalCorruptError",
    "JournalError",
    "JournalKeyError",
    "JournalLockedError",
    "Kind",
    "Record",
    "RecordError",
    "VerifyReport",
    "journal_last_frame",
    "read_records",
    "verify_journal",
]
