"""Short benches and sessions for the controller's end-to-end tests."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from bench import Scenario, bundled_path, load_scenario
from router.controller.outcome import RunOptions
from router.controller.session import SessionConfig
from scheduler import LrOptions

FAST_LR = LrOptions(max_iterations=60)


def bench(name: str = "bench-4") -> Scenario:
    """A bundled bench as shipped: 200 slots of 5 ms. Frames run in real time; shorter
    slots would make the clocks' residual skew (tens of microseconds between routers,
    which shortens conduction by as much) a larger share of each packet's energy."""
    return load_scenario(bundled_path(name))


def config(tmp: Path, scenario: Scenario, frames: int = 4, **kw: object) -> SessionConfig:
    options = RunOptions(frames=frames, lr=FAST_LR, telemetry=bool(kw.get("mqtt")))
    return SessionConfig(
        scenario=scenario,
        out_dir=tmp / "out",
        keys_dir=tmp / "keys",
        options=options,
        **kw,  # type: ignore[arg-type]
    )


# Whether a frame starts late depends on how busy the machine is, and tests never assert
# timing: the alarms a test expects none of are the others.
LATE_FRAME = re.compile(r"frame \d+ starts \d+ ms after frame \d+ ended")


def untimed(alarms: Iterable[str]) -> list[str]:
    """``alarms`` (texts) but the ``frame_late`` ones."""
    return [a for a in alarms if not LATE_FRAME.match(a)]


def alarms_only_late(summary: str, stderr: str) -> bool:
    """A run's output: the summary's alarm count is the late frames it reported, if any."""
    m = re.search(r"skipped, (\d+) alarms?", summary)
    return m is not None and int(m.group(1)) == len(LATE_FRAME.findall(stderr))
