"""Gantt picture of a plan: resources x slots, each packet coloured by its transfer."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; the bench PC may have no display
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap, to_hex
from matplotlib.patches import Patch

from bench import Scenario
from scheduler.plan import Plan

MAX_ROWS = 80  # beyond this the picture shows the busiest resources only


def draw_gantt(scenario: Scenario, plan: Plan, path: Path, frame: int | None = None) -> None:
    kinds = {t.id: "terminal" for t in scenario.terminals}
    kinds |= {x.id: "line" for x in scenario.lines} | {x.id: "SOP" for x in scenario.sops}
    order = [x.id for x in scenario.lines] + [x.id for x in scenario.sops]
    order += [t.id for t in scenario.terminals]
    transfers = [t.id for t in scenario.transfers]
    colour_of = {tid: i + 1 for i, tid in enumerate(transfers)}
    busy: dict[str, int] = {}
    for p in plan.packets:
        for rid in p.route:
            busy[rid] = busy.get(rid, 0) + 1
    rows = [rid for rid in order if busy.get(rid)]
    note = ""
    if len(rows) > MAX_ROWS:
        rows = sorted(rows, key=lambda r: -busy[r])[:MAX_ROWS]
        note = f" (busiest {MAX_ROWS} of {len(busy)} resources)"
    index = {rid: i for i, rid in enumerate(rows)}
    grid = np.zeros((max(1, len(rows)), scenario.frame.slots), dtype=np.int32)
    for p in plan.packets:
        for rid, slot in zip(p.route, p.slots, strict=True):
            if rid in index:
                grid[index[rid], slot] = colour_of[p.transfer]
    tab20 = matplotlib.colormaps["tab20"]
    palette = [to_hex(tab20(i)) for i in range(20)]
    colours: list[str] = ["#ffffff"] + [palette[i % len(palette)] for i in range(len(transfers))]
    height = 1.5 + 0.28 * len(rows)
    fig, ax = plt.subplots(figsize=(12, min(height, 40)))
    ax.imshow(
        grid,
        aspect="auto",
        interpolation="nearest",
        cmap=ListedColormap(colours),
        vmin=0,
        vmax=len(transfers),
    )
    ax.set_yticks(range(len(rows)), [f"{r} ({kinds[r]})" for r in rows], fontsize=7)
    ax.set_xlabel(f"slot ({scenario.frame.slot_ms:g} ms each)")
    gap = "" if plan.gap is None else f", gap {100 * plan.gap:.2f} %"
    which = f"frame {frame}, " if frame is not None else ""
    ax.set_title(
        f"{scenario.name}: {which}{plan.solver} plan, {plan.delivered} packets, "
        f"objective {plan.objective:.5g}{gap}{note}",
        fontsize=9,
    )
    if len(transfers) <= 24:
        handles = [Patch(color=colours[colour_of[t]], label=t) for t in transfers]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
