"""A journal writer to kill: ``python -m tests.journal_writer JOURNAL STORE``.

Resumes the journal, then for frame after frame appends a ``plan`` record and a
``meters`` + ``settlement`` batch, printing ``frame seq`` once each append has returned
(so the parent knows what was committed when it sends SIGKILL).
"""

from __future__ import annotations

import sys
from pathlib import Path

from firmware_bridge.keystore import KeyStore
from router.journal import Entry, Journal


def main(journal_path: str, store: str) -> None:
    journal = Journal.open(Path(journal_path), KeyStore.open(Path(store)).signing_key())
    journal.append("start", {"resumed_after": journal.last_frame()})
    while True:
        frame = journal.next_frame()
        journal.append("plan", {"packets": frame % 7, "note": "x" * (frame % 300)}, frame=frame)
        last = journal.append_many(
            [
                Entry("meters", {"energy_j": frame * 0.5}, frame),
                Entry("settlement", {"net": -frame / 3}, frame),
            ]
        )[-1]
        print(frame, last.seq, flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:3])
