"""Every class of scenario mistake gets one located line, exit status 2, no traceback."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from bench import ScenarioError, bundled_path, parse_dict, parse_text
from bench.dayahead import parse_dayahead_text
from bench.toml_write import dumps
from router.cli import main
from tests.helpers import DELETE, chain, transfer, with_changes

BENCH4 = bundled_path().read_text()


def base() -> dict:
    data = chain()
    data["transfers"] = [transfer("T1", "S1", "L1", 3)]
    return data


CASES = [
    # (what, path, value, expected location, expected words)
    ("negative number", "lines.0.resistance_ohm", -0.1, "lines[AB].resistance_ohm", "must be > 0"),
    ("NaN", "terminals.0.voltage_v", math.nan, "terminals[S1].voltage_v", "finite"),
    ("string for number", "frame.slots", "10", "frame.slots", "whole number"),
    (
        "unknown field",
        "lines.0.resistnce_ohm",
        0.1,
        "lines[AB].resistnce_ohm",
        "did you mean resistance_ohm?",
    ),
    ("missing field", "lines.0.max_current_a", DELETE, "lines[AB].max_current_a", "required"),
    ("bad kind", "terminals.0.kind", "battery", "terminals[S1].kind", "one of"),
    ("duplicate id", "lines.1.id", "AB", "lines[AB].id", "duplicate id 'AB'"),
    ("id reused across kinds", "terminals.1.id", "A", "terminals[A].id", "duplicate id 'A'"),
    (
        "port used twice",
        "terminals.1.at",
        "A:0",
        "terminals[S2].at",
        "already used by terminals[S1].at",
    ),
    ("port out of range", "lines.0.a", "A:7", "lines[AB].a", "ports 0..3"),
    ("terminal on no router", "terminals.2.at", "Q:0", "terminals[S3].at", "unknown router 'Q'"),
    ("line on one router", "lines.0.b", "A:3", "lines[AB].b", "must join two routers"),
    (
        "unknown source",
        "transfers.0.source",
        "PV9",
        "transfers[T1].source",
        "unknown terminal 'PV9'",
    ),
    ("source is a load", "transfers.0.source", "L2", "transfers[T1].source", "is a load"),
    ("sink is a source", "transfers.0.sink", "S2", "transfers[T1].sink", "is a source"),
    (
        "deadline outside frame",
        "transfers.0.deadline_slot",
        10,
        "transfers[T1].deadline_slot",
        "outside the frame (slots 0..9)",
    ),
    (
        "release outside frame",
        "transfers.0.release_slot",
        12,
        "transfers[T1].release_slot",
        "outside the frame",
    ),
    (
        "window reversed",
        "transfers.0",
        transfer("T1", "S1", "L1", 3, release_slot=5, deadline_slot=2),
        "transfers[T1]",
        "deadline_slot (2) is before release_slot (5)",
    ),
    (
        "current above terminal limit",
        "transfers.0.current_a",
        12.0,
        "transfers[T1].current_a",
        "exceeds terminal S1",
    ),
    (
        "path not connected",
        "transfers.0.paths",
        [["S1", "BC", "L1"]],
        "transfers[T1].paths[0]",
        "not a connected path",
    ),
    (
        "path wrong start",
        "transfers.0.paths",
        [["S2", "AB", "BC", "L1"]],
        "transfers[T1].paths[0]",
        "must start at the transfer's source 'S1'",
    ),
    ("guard longer than slot", "frame.guard_us", 6000.0, "frame", "shorter than the slot"),
]


@pytest.mark.parametrize(
    ("what", "path", "value", "where", "words"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_scenario_is_located(what, path, value, where, words):
    data = with_changes(base(), path, value)
    with pytest.raises(ScenarioError) as info:
        parse_dict(data)
    assert info.value.where == where
    assert words in info.value.message
    assert "\n" not in str(info.value)


def test_path_over_current_limit():
    data = base()
    data["lines"][1]["max_current_a"] = 4.0  # the transfer runs at 5 A
    data["transfers"][0]["paths"] = [["S1", "AB", "BC", "L1"]]
    with pytest.raises(ScenarioError, match=r"BC carries at most 4 A, the packet needs 5 A"):
        parse_dict(data)


def test_path_over_sop_power():
    data = base()
    data["lines"] = data["lines"][:1]
    data["sops"] = [{"id": "SOP", "a": "B:1", "b": "C:0", "max_power_w": 200.0}]
    data["transfers"][0]["paths"] = [["S1", "AB", "SOP", "L1"]]
    with pytest.raises(ScenarioError, match=r"SOP carries at most 200 W, the packet needs 240 W"):
        parse_dict(data)


def test_toml_syntax_error_names_the_line():
    text = BENCH4.replace("slots = 200", "slots = = 200")
    with pytest.raises(ScenarioError) as info:
        parse_text(text, source="bench.toml")
    assert str(info.value).startswith("bench.toml:")
    assert info.value.line == next(
        i for i, line in enumerate(text.splitlines(), 1) if "= =" in line
    )


def test_error_points_at_the_line_in_the_file():
    text = BENCH4.replace("resistance_ohm = 0.10", "resistance_ohm = -0.10")
    with pytest.raises(ScenarioError) as info:
        parse_text(text, source="bench.toml")
    expected = next(i for i, line in enumerate(text.splitlines(), 1) if "-0.10" in line)
    assert info.value.line == expected
    assert (
        str(info.value)
        == f"bench.toml:{expected}: lines[L23].resistance_ohm: must be > 0.0 (got -0.1)"
    )


def test_error_by_id_points_at_its_entry():
    text = BENCH4.replace('source = "BAT1"\nsink = "MEC3"', 'source = "PV9"\nsink = "MEC3"')
    with pytest.raises(ScenarioError) as info:
        parse_text(text, source="bench.toml")
    assert info.value.where == "transfers[T10].source"
    assert text.splitlines()[info.value.line - 1].strip() == 'source = "PV9"'


@pytest.mark.parametrize(
    ("what", "path", "value", "where", "words"), CASES[:6], ids=[c[0] for c in CASES[:6]]
)
def test_cli_reports_one_line_and_exit_2(tmp_path: Path, what, path, value, where, words):
    if isinstance(value, float) and math.isnan(value):
        scenario = tmp_path / "bad.toml"
        scenario.write_text(dumps(base()).replace("voltage_v = 48.0", "voltage_v = nan", 1))
    else:
        scenario = tmp_path / "bad.toml"
        scenario.write_text(dumps(with_changes(base(), path, value)))
    out = tmp_path / "plan.json"
    result = subprocess.run(
        [sys.executable, "-m", "router.cli", "plan", str(scenario), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {scenario}:")
    assert where in lines[0] and words in lines[0]
    assert "Traceback" not in result.stderr
    assert not out.exists()  # nothing half written


def test_cli_missing_file(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "router.cli", "plan", str(tmp_path / "nope.toml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {tmp_path / 'nope.toml'}: no such file"


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "router.cli", *args],
        capture_output=True, text=True, timeout=120, cwd=cwd,
    )  # fmt: skip


# --- a misspelt key (issue 13): the unknown key first, with its line and the closest name


MISSPELT = BENCH4.replace("slot_ms = ", "slot_msec = ", 1)


def line_of(text: str, start: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith(start))


def entry_id(text: str, line: int) -> str:
    """The id of the [[...]] entry that holds ``line``: the nearest id = above it."""
    above = text.splitlines()[: line - 1]
    return next(x for x in reversed(above) if x.startswith('id = "')).split('"')[1]


def test_a_misspelt_key_is_named_first_with_the_closest_known_name():
    with pytest.raises(ScenarioError) as info:
        parse_text(MISSPELT, source="m1.toml")
    assert str(info.value) == (
        f"m1.toml:{line_of(MISSPELT, 'slot_msec')}: frame.slot_msec: unknown field; did you "
        "mean slot_ms? (and 1 more problem)"
    )
    (_, required) = info.value.problems
    assert str(required) == f"m1.toml:{line_of(MISSPELT, '[frame]')}: frame.slot_ms: is required"


def test_a_key_like_no_other_lists_the_known_ones():
    text = BENCH4.replace("slot_ms = ", "wobble = ", 1)
    with pytest.raises(ScenarioError, match=r"frame.wobble: unknown field \(known here: slots, "):
        parse_text(text, source="m1.toml")


def test_all_errors_lists_every_problem_one_per_line(tmp_path: Path):
    """Two mistakes the model finds and two the cross-checks find (in another file: the
    cross-checks run on a scenario that is well-formed)."""
    (tmp_path / "m1.toml").write_text(MISSPELT)
    listed = cli("plan", "m1.toml", "--all-errors", cwd=tmp_path)
    assert listed.returncode == 2 and listed.stdout == ""
    assert listed.stderr.splitlines() == [
        f"error: m1.toml:{line_of(MISSPELT, 'slot_msec')}: frame.slot_msec: unknown field; "
        "did you mean slot_ms?",
        f"error: m1.toml:{line_of(MISSPELT, '[frame]')}: frame.slot_ms: is required",
    ]
    text = BENCH4.replace('sink = "MEC3"', 'sink = "MEC9"', 1)
    text = text.replace('source = "PV1"', 'source = "PV7"', 1)
    (tmp_path / "m2.toml").write_text(text)
    first = cli("run", "--scenario", "m2.toml", "--out", "out", cwd=tmp_path)
    assert first.returncode == 2 and len(first.stderr.splitlines()) == 1
    assert first.stderr.endswith(" (and 1 more problem)\n")
    every = cli("run", "--scenario", "m2.toml", "--out", "out", "--all-errors", cwd=tmp_path)
    assert every.returncode == 2
    source, sink = line_of(text, 'source = "PV7"'), line_of(text, 'sink = "MEC9"')
    assert every.stderr.splitlines() == [
        f"error: m2.toml:{source}: transfers[{entry_id(text, source)}].source: unknown "
        "terminal 'PV7'",
        f"error: m2.toml:{sink}: transfers[{entry_id(text, sink)}].sink: unknown terminal 'MEC9'",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m1.toml", "m2.toml"]


def test_cross_checks_report_every_entry():
    text = BENCH4.replace('sink = "MEC3"', 'sink = "MEC9"')
    with pytest.raises(ScenarioError) as info:
        parse_text(text, source="m3.toml")
    wrong = [p for p in info.value.problems]
    sinks = [i for i, line in enumerate(text.splitlines(), 1) if line == 'sink = "MEC9"']
    assert [p.line for p in wrong] == sinks and len(sinks) > 1
    assert all(p.message == "unknown terminal 'MEC9'" for p in wrong)
    assert str(info.value).endswith(f" (and {len(sinks) - 1} more problems)")


@pytest.mark.parametrize(
    "argv",
    [
        ["plan", "x.toml", "--solvr=lr"],
        ["keys", "init", "--solvr=lr"],
        ["journal", "verify", "--solvr=lr"],
        ["run", "--solvr=lr"],
    ],
)
def test_an_unknown_option_shows_its_commands_usage(
    argv: list[str], capsys: pytest.CaptureFixture[str]
):
    with pytest.raises(SystemExit) as info:  # argparse's own exit, as in a shell
        main(argv)
    assert info.value.code == 2
    out, err = capsys.readouterr()
    command = " ".join(a for a in argv if not a.startswith("-") and a != "x.toml")
    assert out == "" and err.startswith(f"usage: ppr {command} ")
    assert err.endswith(f"ppr {command}: error: unrecognized arguments: --solvr=lr\n")


# --- deeply nested TOML: one located line, never a RecursionError


DEEP = 'name = "deep"\n# [[[[ in a comment, "[[[[" in a string do not count\nx = ' + "[" * 5000


@pytest.mark.parametrize("loader", [parse_text, parse_dayahead_text])
def test_deeply_nested_toml_is_one_located_line(loader):
    with pytest.raises(ScenarioError) as info:
        loader(DEEP, "deep.toml")
    assert str(info.value) == (
        "deep.toml:3: arrays and inline tables nest more than 32 deep; a file of this format "
        "needs a few levels at most"
    )


@pytest.mark.parametrize("command", [["plan"], ["dayahead"], ["run", "--scenario"]])
def test_deeply_nested_files_exit_2_on_every_loader(
    tmp_path: Path, command: list[str], capsys: pytest.CaptureFixture[str]
):
    deep = tmp_path / "deep.toml"
    deep.write_text(DEEP)
    assert main([*command, str(deep)]) == 2  # refused before anything is read or written
    assert capsys.readouterr().err == (
        f"error: {deep}:3: arrays and inline tables nest more than 32 deep; a file of this "
        "format needs a few levels at most\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deep.toml"]
