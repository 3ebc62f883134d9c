"""The web book as a frame stage: every market interval (or when the operator asks) the
book is cleared by the operator's mechanism and the clearing's trades become a frame's
transfers; after the frame, its settlement goes back to the orders (``settle``).

The clearing itself runs in a thread of its own, a frame ahead: VCG on a book of a few
hundred orders takes a second (one re-solve per trading order), which in the planning
thread would make the next frame start late. ``prepare`` of frame f starts the clearing
for frame f + 1 when f + 1 is a clearing frame (its number a multiple of the interval,
or the operator asked); ``prepare`` of the next frame gives the stored clearing its
trades, or the frame after if the clearing is not done yet.

A clearing is stored as pending before its frame is planned, and settled only from its
frame's meters. A clearing whose frame did not run (skipped on commit, the run stopped,
the process killed) runs on a later frame: within a run, found two frames on; after a
restart, at the first frame, unless the controller's journal shows its frame settled
before the crash (then it is settled from that record). One clearing runs per frame:
those waiting go first, oldest first; while more than one waits, no new clearing is made
(it would run behind them, late), and one that fell due meanwhile is made once they ran.

``prepare`` runs in the controller's planning thread, ``settled`` on the event loop; the
store serialises them with its lock.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
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
    _owed: bool = False  # a clearing was due while older ones waited: made when they ran
    _quiet_book: tuple[int, int] | None = None  # the book (_book_now) that cleared to nothing
    _clearing: Future[None] | None = None  # the clearing being computed
    _worker: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="ppr-clearing")
    )

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
        waiting = clearings.queued(t.store)  # before a new clearing may add one
        self._start_clearing(frame + 1, base, topology, backlog=len(waiting) > 1)
        if not waiting:
            return StageOutput(base)
        cleared = waiting[0]
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

    def _start_clearing(
        self, frame: int, base: Scenario, topology: Topology, *, backlog: bool
    ) -> None:
        """Clear for ``frame`` in the clearing thread, if it is a clearing frame (or the
        operator asked, or a clearing is owed) and no clearing is being computed. With a
        ``backlog`` (clearings waiting behind the one this frame runs) a due clearing is
        owed instead: made now, it would run behind them, late, and every later one too."""
        t = self.terminal
        if self._clearing is not None and not self._clearing.done():
            return  # the operator's request, if any, waits for the next frame
        settings = t.settings()
        due = not (frame % settings["interval"] or self._book_now() == self._quiet_book)
        if backlog:
            self._owed = self._owed or due
            return
        asked = t.take_clear_request()
        if not (asked or due or self._owed):
            return
        self._owed = False
        self._clearing = self._worker.submit(
            self._clear, frame, base, topology, settings["mechanism"], asked
        )

    def _clear(
        self, frame: int, base: Scenario, topology: Topology, mechanism: str, asked: bool
    ) -> None:
        t = self.terminal
        version = self._book_now()
        try:
            done = clearings.clear_book(t.store, base, topology, mechanism, frame)
        except MarketError as exc:
            self._say(f"frame {frame}: the book cannot clear: {exc}")
            return
        except Exception:  # a bug: said on the page and logged, the bench runs on
            log.exception("web book: clearing for frame %d failed", frame)
            self._say(f"frame {frame}: the clearing failed (a bug; see the log)")
            return
        if done is None:
            self._quiet_book = version
            if asked:
                self._say(f"frame {frame}: nothing to clear (no offer meets a bid)")
        else:
            t.say("")

    def _book_now(self) -> tuple[int, int]:
        """Changes when an order is placed or cancelled (by the page, or by another
        program writing the store: the newest order's id)."""
        newest = self.terminal.store.rows("SELECT MAX(id) AS n FROM orders")[0]["n"]
        return self.terminal.book_version, int(newest or 0)

    def wait_idle(self) -> None:
        """Until the clearing being computed (if any) is stored."""
        if self._clearing is not None:
            self._clearing.result()

    def close(self) -> None:
        self._worker.shutdown(wait=True, cancel_futures=True)

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
        self.terminal.say(note)


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
