"""``ppr run --dayahead FILE --hour H``: the hour's day-ahead trades as a frame stage."""

from __future__ import annotations

from pathlib import Path

from bench.dayahead import load_dayahead
from router.cli import UsageError
from router.controller.dayahead_stage import DayAheadStage, HourTrade
from scheduler.dayahead import build_problem, solve_dayahead
from scheduler.dayahead.document import pair_trades

_MIN_KWH = 1e-6  # below this a trade is solver round-off


def dayahead_stage(path: Path | None, hour: int | None, framework: str) -> DayAheadStage:
    if path is None or hour is None:
        raise UsageError("--dayahead FILE and --hour H go together; give both")
    day = load_dayahead(path)
    m = day.dayahead
    hours = m.periods * m.period_h
    if not 0 <= hour < hours:
        raise UsageError(f"--hour {hour}: {path} covers hours 0 to {hours:g} (exclusive)")
    periods = [t for t in range(m.periods) if hour <= t * m.period_h < hour + 1]
    problem = build_problem(day)
    result = solve_dayahead(problem, framework)
    ids = problem.ids
    trades = []
    for a, z, kw in pair_trades(problem, result):
        kwh = float(sum(kw[t] for t in periods)) * m.period_h
        if kwh > _MIN_KWH:
            trades.append(HourTrade(ids[a], ids[z], kwh))
    if not trades:
        raise UsageError(
            f"--hour {hour}: no day-ahead trades between prosumers in that hour of {path}; "
            f"pick another hour (ppr dayahead {path} shows them)"
        )
    return DayAheadStage(tuple(trades), hour)
