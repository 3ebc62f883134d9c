"""Solve a VPP file's day ahead as ``ppr dayahead`` and ``ppr run --dayahead`` both do
(the same iterations, so both see the same trades), and turn a file that cannot
balance into a located one-line error.

A file cannot balance when some prosumer's load, in some period, exceeds what its PV, its
battery, its grid connection and every trade open to it can bring. The decomposition
finds out when no prosumer can cover itself at any price or when its repair cannot
balance the quotes; then the centralised LP's least uncovered load (``shortfall``) tells
a bad file (exit 2, naming the prosumer and period) from a repair that ran out of rounds
(exit 1: the file is fine, more iterations may help).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.dayahead import DayAhead
from bench.errors import ScenarioError
from bench.loader import _locate
from scheduler.dayahead import (
    ITERATIONS,
    DayAheadResult,
    Problem,
    RepairError,
    UncoveredError,
    build_problem,
    shortfall,
    solve_dayahead,
)
from scheduler.dayahead.solver import Progress

_UNMET = 1e-6  # kWh of uncovered load that is round-off
GIVE_UP = 3  # repairs in a row without a schedule before the file itself is checked


def solve_file(
    day: DayAhead,
    path: Path,
    framework: str,
    iterations: int = ITERATIONS,
    progress: Progress | None = None,
) -> tuple[Problem, DayAheadResult]:
    problem = build_problem(day)
    try:
        return problem, solve_dayahead(
            problem, framework, iterations, progress=progress, give_up=GIVE_UP
        )
    except (UncoveredError, RepairError):
        check_balance(problem, framework, path)  # a file that cannot balance: exit 2
    try:  # it can: the repairs were unlucky early on; all the iterations this time
        return problem, solve_dayahead(problem, framework, iterations, progress=progress)
    except (UncoveredError, RepairError) as exc:
        raise RepairError(
            f"{path}: the file can balance, but the repair found no feasible schedule in "
            f"{iterations} iterations ({exc}); try more --iterations"
        ) from None


def check_balance(problem: Problem, framework: str, path: Path) -> None:
    """A located ``ScenarioError`` naming the prosumer and period with the most load no
    trade can cover; nothing when every load can be covered."""
    least = shortfall(problem, framework == "bilateral")
    assert least.unmet is not None
    if least.cost <= _UNMET:
        return
    i, t = np.unravel_index(int(np.argmax(least.unmet)), least.unmet.shape)
    p = problem.prosumers[i]
    h = problem.market.period_h
    where = f"prosumers[{p.id}].grid_kw"
    trades = "every trade in the pool" if framework == "pool" else "every trade its peers allow"
    more = int((least.unmet.max(axis=1) > _UNMET).sum()) - 1
    others = ""
    if more > 0:
        others = f" ({more} more prosumer{'s are' if more > 1 else ' is'} short too)"
    err = ScenarioError(
        where,
        f"period {t} ({_clock(t * h)}-{_clock((t + 1) * h)}): {least.unmet[i, t]:.3g} kW of "
        f"its load cannot be covered by its PV, battery, grid_kw {p.grid_kw:g} and "
        f"{trades}{others}; raise its grid_kw, or give it a battery or more peers",
    )
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        text = ""
    raise err.located(str(path), _locate(text, where)) from None


def _clock(hours: float) -> str:
    minutes = round(hours * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
