"""``ppr dayahead --realtime``: deviations between VPPs per period, cleared by VCG.

The prosumers form ``n_vpps`` VPPs (contiguous groups). Each VPP's forecast error is drawn
around its day-ahead schedule: its scheduled surplus in a period is what its prosumers
planned to have over from PV and batteries after their loads (pv + d - load - c, summed),
and the error is normal with 10 % of that (at least 0.5 kW) as its deviation.

The time limit is enforced per period: a clearing that takes longer than the limit is not
used; that period's deviations are settled with the grid instead (each VPP sells its
surplus at the grid's sell price or buys its deficit at the grid's buy price, no VCG
payment between VPPs), and the report names the period.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.dayahead import DayAhead
from scheduler.dayahead.realtime import clear_deviations, draw_quotes


def scheduled_surplus(day: DayAhead, doc: dict[str, Any], groups: list[np.ndarray]) -> np.ndarray:
    """(VPPs, T): per VPP and period, pv + d - load - c of its prosumers' schedules."""
    rows = []
    for p in day.prosumers:
        own = doc["prosumers"][p.id]
        rows.append(
            np.asarray(p.pv_kw)
            + np.asarray(own["d"])
            - np.asarray(p.load_kw)
            - np.asarray(own["c"])
        )
    per = np.asarray(rows)
    return np.asarray([per[g].sum(axis=0) for g in groups])


def realtime(
    day: DayAhead, doc: dict[str, Any], n_vpps: int, seed: int, limit_s: float
) -> dict[str, Any]:
    """One VCG clearing per period between the VPPs, within ``limit_s`` seconds each."""
    m = day.dayahead
    groups = np.array_split(np.arange(len(day.prosumers)), n_vpps)
    names = [f"vpp{k + 1}" for k in range(n_vpps)]
    surplus = scheduled_surplus(day, doc, groups)
    paid = dict.fromkeys(names, 0.0)
    periods = []
    worst = 0.0
    over: list[int] = []
    for t in range(m.periods):
        quotes = draw_quotes(
            names, surplus[:, t], m.grid_buy_price[t], m.grid_sell_price[t], seed * 100_003 + t
        )
        r = clear_deviations(quotes)
        worst = max(worst, r.elapsed_s)
        late = r.elapsed_s > limit_s
        if late:
            over.append(t)
        rows = []
        for q, n, pay in zip(r.quotes, r.traded, r.payment, strict=True):
            if late:  # the clearing came too late: nothing traded between the VPPs
                n, pay = 0, 0.0
            paid[q.vpp] += pay
            rows.append(
                {"vpp": q.vpp, "units": q.units, "price": q.price, "traded": n, "payment": pay}
            )
        periods.append(
            {
                "period": t,
                "welfare": 0.0 if late else r.welfare,
                "elapsed_s": r.elapsed_s,
                "settled": "grid" if late else "vcg",
                "quotes": rows,
            }
        )
    return {
        "seed": seed,
        "vpps": {n: [day.prosumers[i].id for i in g] for n, g in zip(names, groups, strict=True)},
        "payments": paid,
        "welfare": sum(p["welfare"] for p in periods),
        "time_limit_s": limit_s,
        "worst_s": worst,
        "within_limit": not over,
        "over_limit_periods": over,
        "periods": periods,
    }


def realtime_lines(rt: dict[str, Any]) -> list[str]:
    lines = [f"  real time (seed {rt['seed']}): VCG between {len(rt['vpps'])} VPPs per period"]
    for name, pay in rt["payments"].items():
        verb = "pays" if pay >= 0 else "is paid"
        lines.append(f"    {name} ({len(rt['vpps'][name])} prosumers) {verb} {abs(pay):.4f}")
    lines.append(
        f"    welfare {rt['welfare']:.4f}; slowest clearing {1000 * rt['worst_s']:.1f} ms "
        f"against the limit of {rt['time_limit_s']:g} s"
    )
    over = rt["over_limit_periods"]
    if over:
        lines.append(
            f"    {len(over)} periods over the limit, settled with the grid instead: "
            + " ".join(str(t) for t in over)
        )
    return lines
