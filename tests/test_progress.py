"""Progress on work longer than a second (issue 13): the bar on a terminal, plain lines
in a log, the lr planner's iterations with bound, plan and gap, and its HiGHS finish."""

from __future__ import annotations

import io
import re

import pytest

from bench import bundled_path, load_with_topology
from router import progress
from router.cli import main
from router.progress import ProgressBar
from scheduler import LrOptions, plan_transfers
from scheduler.plan import relative_gap


class Clock:
    """Time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_a_plain_line_every_few_seconds_after_the_first():
    clock, log = Clock(), io.StringIO()
    with ProgressBar("planning x", log, clock=clock) as bar:
        for t, i in ((0.5, 1), (1.2, 2), (2.0, 3), (3.3, 4), (3.5, 5), (5.4, 6)):
            clock.now = 100.0 + t
            bar.update(i, 10, f"note {i}")
    # nothing in the first second; then at most one line per EVERY_S (2 s)
    assert log.getvalue().splitlines() == [
        "planning x: 2/10, note 2",
        "planning x: 4/10, note 4",
        "planning x: 6/10, note 6",
    ]


def test_a_terminal_gets_one_line_redrawn_and_cleared():
    clock, tty = Clock(), Terminal()
    bar = ProgressBar("frames", tty, width=4, clock=clock)
    bar.update(1, 4)  # within the first second: nothing
    clock.now += 1.5
    bar.update(2, 4, "x")
    bar.close()
    assert tty.getvalue() == "\rframes [##--] 2/4 x\x1b[K\r\x1b[K"


def test_a_timed_phase_shows_its_elapsed_time_against_its_budget():
    clock, log = Clock(), io.StringIO()
    with ProgressBar("planning x", log, clock=clock) as bar:
        clock.now += 5.0
        bar.timed("finishing (HiGHS)", 2.0, "bound 1")
        clock.now += 0.5
        bar.timed("finishing (HiGHS)", 2.0, "bound 2")  # within 2 s of the line before
        clock.now += 2.0
        bar.timed("finishing (HiGHS)", 2.0, "bound 3")  # elapsed 2.5 s: shown as the budget
    assert log.getvalue().splitlines() == [
        "planning x: finishing (HiGHS) 0.0/2 s, bound 1",
        "planning x: finishing (HiGHS) 2.0/2 s, bound 3",
    ]


def test_the_planner_reports_its_iterations_and_its_finish():
    scenario, topology = load_with_topology(bundled_path())
    iterations: list[tuple[int, int, float, float]] = []
    finishing: list[tuple[float, float, float]] = []
    plan = plan_transfers(
        scenario, topology, "lr",
        lr_options=LrOptions(max_iterations=40, finish_s=1.5),
        progress=lambda *a: iterations.append(a),
        finishing=lambda *a: finishing.append(a),
    )  # fmt: skip
    assert [i for i, *_ in iterations] == list(range(1, len(iterations) + 1))
    assert {n for _, n, *_ in iterations} == {40}
    assert finishing and {budget for budget, *_ in finishing} == {1.5}
    bounds = [lb for _, lb, _ in finishing]
    assert bounds == sorted(bounds) and iterations[-1][2] <= bounds[0]  # it only rises
    assert plan.lower_bound is not None and bounds[-1] <= plan.lower_bound + 1e-9
    assert all(ub >= plan.objective - 1e-9 for *_, ub in finishing)  # plans only improve


def test_ppr_plan_logs_iterations_bound_plan_gap_and_the_finish(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    """stderr is not a terminal here: plain lines, every one shown (the thresholds set
    to zero, so the test does not depend on how fast this machine plans)."""
    monkeypatch.setattr(progress, "AFTER_S", 0.0)
    monkeypatch.setattr(progress, "EVERY_S", 0.0)
    assert main(["plan", "--iterations", "30", "--finish", "1"]) == 0
    lines = capsys.readouterr().err.splitlines()
    number = r"(-?[0-9.e+-]+)"
    counted = [re.fullmatch(rf"planning bench-4: (\d+)/30, bound {number}, plan {number}, "
                            rf"gap ([0-9.]+)%", line) for line in lines]  # fmt: skip
    shown = [m for m in counted if m]
    assert [int(m.group(1)) for m in shown] == list(range(1, len(shown) + 1))
    for m in shown:  # the gap is the one of the numbers shown
        gap = relative_gap(float(m.group(3)), float(m.group(2)))
        assert gap is not None and float(m.group(4)) == pytest.approx(100 * gap, abs=0.02)
    finish = [line for line in lines if line.startswith("planning bench-4: finishing (HiGHS) ")]
    assert finish and all(re.search(r" \d+\.\d/1 s, bound .*, plan .*, gap ", f) for f in finish)
