"""What a twin router keeps across power-up, in a file per router (docs/register-map.md,
"Power-up"): its boot count, its replay mark and key epoch state, and a latched e-stop.

A real router keeps these in non-volatile memory (FRAM, or flash with wear levelling).
The twin keeps them in ``<dir>/router-<id>.json``; ``ppr twin`` (routers that outlive
controllers, as on a real bench) uses ``KEYS/twin-nv``, next to the key store's keys.
A file is replaced whole on every change: a twin killed at any instant restarts with
the old state or the new one. A twin made without a directory (``ppr run``'s own, which
lives and dies with the run) keeps them in memory: a factory-new router every time.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from sim_hw.errors import TwinError

NV_FOLDER = "twin-nv"  # ppr twin keeps its routers' state in KEYS/twin-nv/


@dataclass
class NvState:
    boot_count: int = 0  # power-ups so far: the high half of every claim challenge
    replay_mark: int | None = None  # last committed frame
    epoch: int | None = None  # current key epoch, the one before it, and since when
    previous: int | None = None
    epoch_since: int | None = None
    estop: bool = False  # an e-stop latched before the power went


class NvMemory:
    def __init__(self, directory: Path | None, router_id: str) -> None:
        self.path = None if directory is None else directory / f"router-{router_id}.json"

    def load(self) -> NvState:
        if self.path is None or not self.path.exists():
            return NvState()
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return NvState(**data)
        except (OSError, ValueError, TypeError) as exc:
            raise TwinError(
                f"{self.path}: not a twin router's saved state ({exc}); delete it to start "
                f"the router factory-new"
            ) from None

    def save(self, state: NvState) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        # no fsync: the twin's power cut is its process ending, which the page cache survives
        tmp.write_text(json.dumps(asdict(state)), encoding="utf-8")
        os.replace(tmp, self.path)
