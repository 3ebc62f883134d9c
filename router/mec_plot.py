"""The MEC allocation's fronts in one picture: loss against mean and against minimum
satisfaction, NSGA-II's points coloured by the third objective, the epsilon-constraint
grid's exact points behind them, and the pick rule's point marked."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; the bench PC may have no display
import matplotlib.pyplot as plt

from scheduler.mec.study import Study


def draw_fronts(s: Study, title: str, path: Path) -> None:
    nsga, exact = -s.front_matrix(), -s.exact_matrix()  # mean, min > 0; loss < 0
    chosen = nsga[s.chosen]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), sharex=True)
    panels = ((0, 1, "mean satisfaction", "min"), (1, 0, "min satisfaction", "mean"))
    for ax, (y, colour, label, other) in zip(axes, panels, strict=True):
        dots = ax.scatter(
            -nsga[:, 2], nsga[:, y], s=5, c=nsga[:, colour], cmap="viridis", vmin=0, vmax=1,
            label=f"NSGA-II ({len(nsga)})",
        )  # fmt: skip
        ax.scatter(
            -exact[:, 2], exact[:, y], s=9, marker="+", c="0.25", linewidths=0.6, zorder=3,
            label=f"epsilon grid ({len(exact)})",
        )  # fmt: skip
        ax.scatter(
            [-chosen[2]], [chosen[y]], s=180, marker="*", c="tab:red", edgecolors="black",
            zorder=5, label="chosen",
        )  # fmt: skip
        ax.set_xlabel("transmission loss J")
        ax.set_ylabel(label)
        ax.set_ylim(-0.02, 1.02)
        ax.legend(loc="lower right", fontsize=8)
        fig.colorbar(dots, ax=ax, label=f"{other} satisfaction")
    fig.suptitle(
        f"{title}: chosen mean {chosen[0]:.3f}, min {chosen[1]:.3f}, loss {-chosen[2]:.3f} J; "
        f"hypervolume {100 * s.hv_ratio:.1f}% of the epsilon grid's front's"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)
