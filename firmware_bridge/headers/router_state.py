"""What a router remembers between frames to enforce the refusal rules.

* A table is committed for one frame number, strictly above the last committed one;
  otherwise the whole table is refused (``ReplayError``, raised).
* Each entry must authenticate under this router's key for the table's frame and sit at
  the (slot, index) it was sealed for; a bad entry is refused and counted, the rest of
  the table stands (``TableResult.refused``, values).
* Key epochs: the router acts on its current epoch and on newer ones it has been
  provisioned with; the first committed table that holds an authentic entry of a newer
  epoch makes that epoch current. The epoch it replaced stays acceptable for
  ``grace_frames`` frames after that table, then ``KeyEpochError``; older epochs never.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from firmware_bridge.headers.errors import HeaderRefusal, KeyEpochError, ReplayError
from firmware_bridge.headers.frame import TableEntry
from firmware_bridge.headers.keys import KeyRing, LayerKey
from firmware_bridge.headers.layout import OUTER_HEADER
from firmware_bridge.headers.seal import OuterEntry, open_outer_at

# Two table banks mean at most two frames sealed under the old epoch are in flight when
# the controller rotates; eight leaves room for a controller restart or a slow upload.
DEFAULT_GRACE_FRAMES = 8


@dataclass(frozen=True)
class TableResult:
    frame: int
    accepted: tuple[OuterEntry, ...]
    refused: tuple[tuple[int, int, HeaderRefusal], ...] = field(default=())  # (slot, index, why)


class RouterHeaderState:
    """Replay and epoch state of one router. Only ``commit`` changes it."""

    def __init__(
        self,
        ring: KeyRing,
        *,
        grace_frames: int = DEFAULT_GRACE_FRAMES,
        last_committed: int | None = None,
    ) -> None:
        self.ring = ring
        self.grace_frames = grace_frames
        self.last_committed = last_committed
        epochs = sorted(ring.keys)
        self.epoch: int | None = epochs[-1] if epochs else None
        # the epoch before the current one, acceptable until the grace window ends
        self.previous: int | None = epochs[-2] if len(epochs) > 1 else None
        self.epoch_since: int | None = None  # frame of the table that made ``epoch`` current

    @property
    def router_id(self) -> str:
        return self.ring.router_id

    def provision(self, key: LayerKey) -> None:
        """Add the key of another epoch (delivered out of band, ``ppr keys``)."""
        keys = dict(self.ring.keys)
        keys[key.epoch] = key
        self.ring = KeyRing(self.ring.party, self.ring.router_id, keys)
        if self.epoch is None:
            self.epoch = key.epoch

    def acceptable_epochs(self, frame: int) -> set[int]:
        current = self.epoch if self.epoch is not None else 0
        ok = {e for e in self.ring.keys if e >= current}
        since = self.epoch_since if self.epoch_since is not None else frame
        if self.previous is not None and frame < since + self.grace_frames:
            ok.add(self.previous)
        return ok

    def open_entry(self, frame: int, slot: int, index: int, blob: bytes) -> OuterEntry:
        """Open one entry as it would be for a table of ``frame``; raises a refusal."""
        self._check_frame(frame)
        ring = self.ring.only(self.acceptable_epochs(frame))
        try:
            return open_outer_at(ring, blob, frame, slot, index)
        except KeyEpochError as why:
            raise self._explain(why, blob, frame) from None

    def commit(self, frame: int, entries: Iterable[TableEntry]) -> TableResult:
        """Commit the table of ``frame``: ``(slot, index, blob)`` per written position."""
        self._check_frame(frame)
        ring = self.ring.only(self.acceptable_epochs(frame))
        accepted: list[OuterEntry] = []
        refused: list[tuple[int, int, HeaderRefusal]] = []
        for slot, index, blob in entries:
            try:
                accepted.append(open_outer_at(ring, blob, frame, slot, index))
            except KeyEpochError as why:
                refused.append((slot, index, self._explain(why, blob, frame)))
            except HeaderRefusal as why:
                refused.append((slot, index, why))
        newest = max((e.epoch for e in accepted), default=None)
        if newest is not None and (self.epoch is None or newest > self.epoch):
            self.previous, self.epoch, self.epoch_since = self.epoch, newest, frame
        elif self.epoch_since is None:
            self.epoch_since = frame
        if accepted:
            # only a table the controller sealed moves the replay mark: the commit
            # registers are writable by anyone on the bus, and a forged commit of frame
            # 2**32 - 16 must not make every later genuine frame a "replay"
            self.last_committed = frame
        return TableResult(frame, tuple(accepted), tuple(refused))

    def _check_frame(self, frame: int) -> None:
        if self.last_committed is not None and frame <= self.last_committed:
            raise ReplayError(
                f"frame {frame} is not after the last committed frame {self.last_committed}",
                router_id=self.router_id,
                frame=frame,
            )

    def _explain(self, why: KeyEpochError, blob: bytes, frame: int) -> KeyEpochError:
        """Say that a held epoch is retired, rather than merely 'no key'."""
        epoch = OUTER_HEADER.struct.unpack_from(blob)[1]
        if epoch not in self.ring.keys:
            return why
        return KeyEpochError(
            f"epoch {epoch} is retired (current epoch {self.epoch}, grace of "
            f"{self.grace_frames} frames from frame {self.epoch_since})",
            router_id=self.router_id,
            frame=frame,
        )
