"""``ppr dayahead --realtime``: deviations between VPPs per period, cleared by VCG."""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.dayahead import DayAhead
from scheduler.dayahead.realtime import clear_deviations, draw_quotes


def realtime(day: DayAhead, n_vpps: int, seed: int, limit_s: float) -> dict[str, Any]:
    """The prosumers in ``n_vpps`` contiguous groups, each a VPP; one VCG clearing a period."""
    m = day.dayahead
    groups = np.array_split(np.arange(len(day.prosumers)), n_vpps)
    names = [f"vpp{k + 1}" for k in range(n_vpps)]
    pv = np.asarray([p.pv_kw for p in day.prosumers])
    load = np.asarray([p.load_kw for p in day.prosumers])
    paid = dict.fromkeys(names, 0.0)
    periods = []
    worst = 0.0
    for t in range(m.periods):
        surplus = np.asarray([float((pv[g, t] - load[g, t]).sum()) for g in groups])
        quotes = draw_quotes(
            names, surplus, m.grid_buy_price[t], m.grid_sell_price[t], seed * 100_003 + t
        )
        r = clear_deviations(quotes)
        worst = max(worst, r.elapsed_s)
        for q, pay in zip(r.quotes, r.payment, strict=True):
            paid[q.vpp] += pay
        periods.append(
            {
                "period": t,
                "welfare": r.welfare,
                "elapsed_s": r.elapsed_s,
                "quotes": [
                    {"vpp": q.vpp, "units": q.units, "price": q.price, "traded": n,
                     "payment": pay}
                    for q, n, pay in zip(r.quotes, r.traded, r.payment, strict=True)
                ],
            }
        )  # fmt: skip
    return {
        "seed": seed,
        "vpps": {n: [day.prosumers[i].id for i in g] for n, g in zip(names, groups, strict=True)},
        "payments": paid,
        "welfare": sum(p["welfare"] for p in periods),
        "time_limit_s": limit_s,
        "worst_s": worst,
        "within_limit": worst <= limit_s,
        "periods": periods,
    }


def realtime_lines(rt: dict[str, Any]) -> list[str]:
    lines = [f"  real time (seed {rt['seed']}): VCG between {len(rt['vpps'])} VPPs per period"]
    for name, pay in rt["payments"].items():
        verb = "pays" if pay >= 0 else "is paid"
        lines.append(f"    {name} ({len(rt['vpps'][name])} prosumers) {verb} {abs(pay):.4f}")
    state = "within" if rt["within_limit"] else "OVER"
    lines.append(
        f"    welfare {rt['welfare']:.4f}; slowest clearing {1000 * rt['worst_s']:.1f} ms, "
        f"{state} the limit of {rt['time_limit_s']:g} s"
    )
    return lines
