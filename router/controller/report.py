"""What the lab engineer reads: one line per frame, a summary table at the end."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from bench.text import plural
from router.controller.outcome import FrameOutcome
from router.settlement import OPERATOR, TransferTotal, run_totals

if TYPE_CHECKING:
    from sim_hw.twin import FrameTiming

MAX_TRANSFER_ROWS = 30  # beyond this, the transfers that fell shortest


def _transfer_table(transfers: Sequence[TransferTotal]) -> list[str]:
    """Per transfer over the run: packets planned, energy due at the sink, metered, short."""
    if not transfers:
        return []
    shown = list(transfers)
    if len(shown) > MAX_TRANSFER_ROWS:
        shown = sorted(shown, key=lambda t: -t.shortfall_j)[:MAX_TRANSFER_ROWS]
    lines = [
        "",
        "  transfer      frames   packets   due at sink J   metered J   short J",
    ]
    for t in shown:
        lines.append(
            f"  {t.transfer:<12} {t.frames:>7} {t.planned_packets:>9} {t.planned_sink_j:>15.2f}"
            f" {t.delivered_j:>11.2f} {t.shortfall_j:>9.2f}"
        )
    if len(transfers) > len(shown):
        lines.append(f"  ... and {len(transfers) - len(shown)} more, none shorter")
    return lines


def frame_line(o: FrameOutcome, alarms: int) -> str:
    if o.skipped:
        why = o.problems[0] if o.problems else "commit failed"
        return f"frame {o.frame:>6}  SKIPPED on every router ({why})"
    gap = "   -  " if o.gap is None else f"{100 * o.gap:5.2f}%"
    down = f"  down: {','.join(o.routers_down)}" if o.routers_down else ""
    late = f"  late {o.late_ms:.0f} ms" if o.late_ms >= 1 else ""
    return (
        f"frame {o.frame:>6}  packets {o.packets_delivered:>4}/{o.packets_planned:<4}"
        f" {o.energy_delivered_j:8.2f}/{o.energy_planned_j:<8.2f} J  loss {o.loss_j:6.3f} J"
        f"  gap {gap}  plan {o.plan_ms:5.1f} seal {o.seal_ms:4.1f} upload {o.upload_ms:5.1f}"
        f" commit {o.commit_ms:5.1f} ms  alarms {alarms}{late}{down}"
    )


def twin_timing_line(timings: Sequence[FrameTiming]) -> str:
    """On the twin: the energy its sinks did not meter because the routers' gates were
    not exactly in step (the controller's clock estimates), told apart from the meters."""
    short = sum(t.shortfall_j for t in timings)
    spread = max(t.start_spread_us for t in timings)
    return (
        f"  twin      gate timing kept {short:.3f} J of the due energy from the sinks (routers'"
        f" slot starts up to {spread:.0f} us apart); metered + timing = due"
    )


def summary(outcomes: Sequence[FrameOutcome], alarms: int) -> str:
    ran = [o for o in outcomes if not o.skipped]
    lines = [
        "",
        f"{plural(len(outcomes), 'frame')}: {len(ran)} ran, {len(outcomes) - len(ran)} "
        f"skipped, {plural(alarms, 'alarm')}",
        f"  packets   planned {sum(o.packets_planned for o in ran)}, delivered "
        f"{sum(o.packets_delivered for o in ran)}, left undelivered by the planner "
        f"{sum(o.packets_undelivered for o in outcomes)}",
        f"  energy    due at the sinks {sum(o.energy_planned_j for o in ran):.2f} J, metered "
        f"{sum(o.energy_delivered_j for o in ran):.2f} J, planned losses "
        f"{sum(o.loss_j for o in ran):.2f} J",
    ]
    totals = run_totals(o.settlement for o in ran if o.settlement is not None)
    lines += _transfer_table(totals.transfers)
    money = [p for p in totals.parties if p.paid or p.received or p.allocated]
    if money:
        lines += [
            "",
            "  participant   frames  allocated  delivered      paid  received       net",
        ]
        for p in money:
            name = "(operator)" if p.id == OPERATOR else p.id
            lines.append(
                f"  {name:<12} {p.frames:>7} {p.allocated:>10} {p.delivered_packets:>10.1f}"
                f" {p.paid:>9.4f} {p.received:>9.4f} {p.net:>9.4f}"
            )
    return "\n".join(lines)
