"""The day in one picture: clearing prices, P2P trades and states of charge per period."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; the bench PC may have no display
import matplotlib.pyplot as plt
import numpy as np


def _steps(ax: Any, values: Any, **style: Any) -> None:
    """A price per period as a step over [t, t + 1): the last period drawn to its end."""
    v = np.asarray(values, dtype=float)
    ax.step(np.arange(len(v) + 1), np.append(v, v[-1]), where="post", **style)


def draw_day(doc: dict[str, Any], buy: list[float], sell: list[float], path: Path) -> None:
    T = len(buy)
    hours = np.arange(T)
    fig, (ax_p, ax_t, ax_e) = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    _steps(ax_p, buy, label="grid buy", color="tab:red")
    _steps(ax_p, sell, label="grid sell", color="tab:green")
    prices = doc["prices"]
    if isinstance(prices, dict):  # bilateral: the mean over the links
        mean = np.mean(np.asarray(list(prices.values())), axis=0) if prices else np.zeros(T)
        _steps(ax_p, mean, label="P2P (link mean)", color="tab:blue")
    else:
        _steps(ax_p, prices, label="pool price", color="tab:blue")
    ax_p.set_ylabel("price per kWh")
    ax_p.legend(loc="upper left", fontsize=8)
    traded = np.sum([t["kw"] for t in doc["trades"]], axis=0) if doc["trades"] else np.zeros(T)
    ax_t.bar(hours + 0.5, traded, width=0.9, color="tab:blue", label="P2P traded kW")
    g_in = np.sum([p["g_in"] for p in doc["prosumers"].values()], axis=0)
    g_out = np.sum([p["g_out"] for p in doc["prosumers"].values()], axis=0)
    ax_t.plot(hours + 0.5, g_in, color="tab:red", label="grid import kW")
    ax_t.plot(hours + 0.5, -g_out, color="tab:green", label="grid export kW (negative)")
    ax_t.legend(loc="upper left", fontsize=8)
    for pid, p in doc["prosumers"].items():
        if max(p["e"]) > 0:
            ax_e.plot(np.arange(T + 1), p["e"], linewidth=0.8, label=pid)
    ax_e.set_ylabel("state of charge kWh")
    ax_e.set_xlabel("period")
    alone = doc["grid_alone_cost"]
    shown = f"{alone:.2f}" if alone is not None else "n/a"
    fig.suptitle(
        f"{doc['name']}: {doc['framework']}, cost {doc['total_cost']:.2f} "
        f"(grid alone {shown}), gap {100 * doc['gap']:.2f} %"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
