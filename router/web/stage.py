"""The web book as a frame stage: every market interval (or when the operator asks) the
book is cleared by the operator's mechanism and the clearing's trades become the frame's
transfers; after the frame, its settlement goes back to the orders (``settle``).

A clearing is stored as pending before its frame is planned, and settled only from its
frame's meters. A clearing whose frame did not run (skipped on commit, the run stopped,
the process killed) runs on a later frame: within a run, found two frames on; after a
restart, at the first frame, unless the controller's journal shows its frame settled
before the crash (then it is settled from that record). One clearing runs per frame:
those waiting go first, oldest first, and a new clearing waits for a free frame.

``prepare`` runs in the controller's planning thread, ``settled`` on the event loop; the
store serialises them with its lock.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import Scenario, Topology
from bench.errors import BenchError
from router.controller.stages import StageOutput
from router.journal.verify import connect_read_only
from router.web import clearing as clearings
from router.web.settle import settle
from router.web.terminal import WebTerminal
from scheduler.market import MarketError

if TYPE_CHECKING:
    from router.controller.outcome import FrameOutcome
    from router.settlement import FrameSettlement

log = logging.getLogger(__name__)


@dataclass
class BookStage:
    terminal: WebTerminal
    # the controller's journal: where a restart finds the settlements of frames that ran
    journal_path: Path | None = None
    name: str = "web-book"
    _in_flight: dict[int, int] = field(default_factory=dict)  # clearing id -> frame index
    _recovered: bool = False
    _quiet_book: int | None = None  # book version that last cleared to no trade

    def prepare(self, index: int, frame: int, base: Scenario, topology: Topology) -> StageOutput:
        t = self.terminal
        t.next_frame = frame + 1  # an order placed from now on is for the frames after
        if not self._recovered:
            self._recover()
            self._recovered = True
        for cid, at in list(self._in_flight.items()):
            if at <= index - 2:  # its frame has ended and never settled: run it again
                clearings.requeue(t.store, cid)
                del self._in_flight[cid]
        waiting = clearings.queued(t.store)
        cleared = waiting[0] if waiting else self._clear(frame, base, topology)
        if cleared is None:
            return StageOutput(base)
        try:
            market = clearings.result_of(t.store, cleared.id)
            output = StageOutput(base, market, {"clearing": cleared.id, "cleared_frame":
                                                cleared.frame, "mechanism": cleared.mechanism,
                                                "welfare": cleared.welfare})  # fmt: skip
            output.scenario  # noqa: B018  # its transfers checked here, not in the planner
        except (MarketError, BenchError) as exc:  # the bench changed under a stored clearing
            why = f"clearing {cleared.id} cannot run on this bench: {exc}"
            clearings.void(t.store, cleared.id, why)
            self._say(why)
            return StageOutput(base)
        clearings.mark_executing(t.store, cleared.id, frame)
        self._in_flight[cleared.id] = index
        t.touch()
        return output

    def _clear(self, frame: int, base: Scenario, topology: Topology) -> clearings.Clearing | None:
        t = self.terminal
        settings = t.settings()
        asked = t.take_clear_request()
        if not asked and (frame % settings["interval"] or t.book_version == self._quiet_book):
            return None
        version = t.book_version
        try:
            done = clearings.clear_book(t.store, base, topology, settings["mechanism"], frame)
        except MarketError as exc:
            self._say(f"frame {frame}: the book cannot clear: {exc}")
            return None
        if done is None:
            self._quiet_book = version
            if asked:
                self._say(f"frame {frame}: nothing to clear (no offer meets a bid)")
        return done

    def _recover(self) -> None:
        """After a restart: clearings given to a frame of the run before settle from
        that frame's journaled settlement, or wait for a frame again."""
        store = self.terminal.store
        for c in clearings.executing(store):
            record = _settlement_record(self.journal_path, c.exec_frame)
            if record is not None and c.exec_frame is not None:
                settle(store, self.terminal.journal, c.id, c.exec_frame, record)
            else:
                clearings.requeue(store, c.id)

    def settled(self, output: StageOutput, settlement: FrameSettlement) -> Mapping[str, Any] | None:
        if output.market is None:
            return None
        cid = int(output.record["clearing"])
        self._in_flight.pop(cid, None)
        account = settle(
            self.terminal.store, self.terminal.journal, cid, settlement.frame, settlement.to_json()
        )
        self.terminal.touch()
        return account

    def summary(self, outcomes: Sequence[FrameOutcome]) -> list[str]:
        return []

    def _say(self, note: str) -> None:
        log.info("web book: %s", note)
        self.terminal.note = note
        self.terminal.touch()


def _settlement_record(journal: Path | None, frame: int | None) -> dict[str, Any] | None:
    """The controller journal's settlement of ``frame`` (the journal was verified when
    the run opened it), or None."""
    if journal is None or frame is None or not journal.exists():
        return None
    conn = connect_read_only(journal)
    try:
        row = conn.execute(
            "SELECT payload FROM records WHERE kind = 'settlement' AND frame = ? "
            "ORDER BY seq DESC LIMIT 1",
            (frame,),
        ).fetchone()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    if row is None:
        return None
    data: dict[str, Any] = json.loads(row[0])
    return data
