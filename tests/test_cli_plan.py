"""``ppr plan`` as a lab engineer runs it, including the README's main-job command."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bench import bundled_path, load_scenario
from scheduler import check_plan
from tests.controller_support import alarms_only_late

REPO = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def ppr(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "router.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def test_readme_main_job(tmp_path: Path):
    """`make run` (the README's first command) runs bench-4 on the twin: ten frames, all
    delivered, a journal that verifies and a Gantt picture of the last frame."""
    readme = (REPO / "README.md").read_text()
    assert "make run" in readme and "make test" in readme
    out, keys = tmp_path / "out", tmp_path / "keys"
    result = subprocess.run(
        ["make", "-s", "run", f"OUT={out}", f"KEYS={keys}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "bench-4: 10 frames on the twin over tcp" in result.stdout
    assert "10 frames: 10 ran, 0 skipped, " in result.stdout
    assert alarms_only_late(result.stdout, result.stderr), result.stdout + result.stderr
    planned = sum(t["packets"] for t in tomllib.loads(bundled_path().read_text())["transfers"])
    assert f"packets   planned {10 * planned}, delivered {10 * planned}," in result.stdout
    assert (out / "last-frame.png").read_bytes()[:8] == PNG_MAGIC
    verified = ppr("journal", "verify", str(out / "journal.sqlite"), "--keys", str(keys))
    assert verified.returncode == 0 and "frames 1-10" in verified.stdout, verified.stdout
    # the summary's witness is the journal's end, which verify checks against the key store
    records = int(verified.stdout.split(" records, ")[0].rsplit(" ", 1)[1])
    assert f"\n  witness   {records} records, head " in result.stdout
    assert f"its end matches its witness (record {records}, " in verified.stdout


@pytest.mark.parametrize("solver", ["lr", "milp", "greedy"])
def test_plan_json_follows_the_design(tmp_path: Path, solver: str):
    out = tmp_path / "plan.json"
    result = ppr("plan", "--solver", solver, "--out", str(out))
    assert result.returncode == 0, result.stderr
    plan = json.loads(out.read_text())
    for key in ("scenario", "solver", "objective", "lower_bound", "gap", "solve_ms", "packets",
                "undelivered"):  # fmt: skip
        assert key in plan
    assert plan["solver"] == solver
    assert (plan["lower_bound"] is None) == (solver == "greedy")
    first = plan["packets"][0]
    assert set(first) == {"transfer", "route", "slots"}
    assert len(first["route"]) == len(first["slots"])
    assert check_plan(load_scenario(bundled_path()), plan).ok
    summary = result.stdout
    # nothing but the summary: no solver banner on the terminal (HiGHS writes to fd 1)
    assert summary.startswith(f"bench-4: {solver} plan"), summary
    assert "objective" in summary and "delivered" in summary and "solve" in summary


def test_plan_of_a_generated_bench(tmp_path: Path):
    scenario = tmp_path / "ring.toml"
    made = ppr("scenario", "generate", "--family", "ring", "--routers", "8", "--transfers",
               "20", "--slots", "300", "--seed", "2", "--out", str(scenario))  # fmt: skip
    assert made.returncode == 0, made.stderr
    result = ppr("plan", str(scenario), "--gantt", str(tmp_path / "g.png"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "g.png").read_bytes()[:8] == PNG_MAGIC


def test_unknown_solver_is_a_usage_error():
    result = ppr("plan", "--solver", "magic")
    assert result.returncode == 2
    assert "invalid choice: 'magic'" in result.stderr


@pytest.mark.parametrize("value", ["-1", "nan"])
def test_a_finishing_budget_that_is_no_time_is_a_usage_error(value: str):
    result = ppr("plan", "--finish", value)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == f"error: --finish must be a number of seconds >= 0, not {value}\n"


@pytest.mark.parametrize(
    ("option", "name", "said"),
    [
        ("--out", "missing/plan.json", "no folder {tmp}/missing; create it first"),
        ("--gantt", "missing/g.png", "no folder {tmp}/missing; create it first"),
        ("--gantt", "g.svg", "the picture is a PNG; name it *.png"),
        ("--out", ".", "is a folder; give a file name"),
    ],
)
def test_an_output_that_cannot_be_written_is_refused_before_planning(
    tmp_path: Path, option: str, name: str, said: str
):
    path = tmp_path / name
    result = ppr("plan", option, str(path))
    assert result.returncode == 2 and result.stdout == "", result.stderr
    assert result.stderr == f"error: {option} {path}: {said.format(tmp=tmp_path)}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written
