"""``ppr run --dayahead FILE --hour H``: the hour's day-ahead trades as a frame stage.

The day ahead is solved exactly as ``ppr dayahead FILE --framework F`` solves it (the
same iterations), so both show the same trades. Hour H takes from each period the part
of it that falls in [H, H + 1): a whole quarter-hour, or half of a two-hour period.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.dayahead import Market, load_dayahead
from router.cli import UsageError
from router.controller.dayahead_stage import DayAheadStage, HourTrade, net_flows
from scheduler.dayahead.document import pair_trades

_MIN_KWH = 1e-6  # below this a trade is solver round-off


def hour_share(periods: int, period_h: float, hour: int) -> np.ndarray:
    """Hours of each period that fall in [hour, hour + 1)."""
    start = np.arange(periods) * period_h
    return np.clip(np.minimum(start + period_h, hour + 1) - np.maximum(start, hour), 0.0, None)


def dayahead_stage(path: Path | None, hour: int | None, framework: str | None) -> DayAheadStage:
    if path is None or hour is None:
        if framework is not None and path is None and hour is None:
            raise UsageError(f"--framework {framework}: applies to --dayahead only; add it")
        raise UsageError("--dayahead FILE and --hour H go together; give both")
    framework = framework or "pool"
    day = load_dayahead(path)
    m = day.dayahead
    hours = m.periods * m.period_h
    if not 0 <= hour < hours:
        raise UsageError(f"--hour {hour}: {path} covers hours 0 to {hours:g} (exclusive)")
    if framework == "bilateral" and not day.links():
        raise UsageError(f"{path}: no prosumer lists peers; bilateral trades need them")
    from router.cli.dayahead_solve import solve_file
    from router.kernels import DAYAHEAD, ensure_kernels

    ensure_kernels(DAYAHEAD)
    problem, result = solve_file(day, path, framework)
    return stage_for_hour(problem.ids, pair_trades(problem, result), m, hour, path)


def stage_for_hour(
    ids: list[str],
    trades: list[tuple[int, int, np.ndarray]],
    market: Market,
    hour: int,
    path: Path,
) -> DayAheadStage:
    """The stage of hour ``hour`` from the day's pair trades (seller, buyer, kW per period)."""
    share = hour_share(market.periods, market.period_h, hour)
    kwh = []
    for a, z, kw in trades:
        energy = float(np.asarray(kw) @ share)
        if energy > _MIN_KWH:
            kwh.append(HourTrade(ids[a], ids[z], energy))
    flows = net_flows(tuple(kwh), _MIN_KWH)
    if not flows:
        raise UsageError(
            f"--hour {hour}: no day-ahead trades between prosumers in that hour of {path}; "
            f"pick another hour (ppr dayahead {path} shows them)"
        )
    return DayAheadStage(flows, hour)
