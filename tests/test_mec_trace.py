"""MEC request traces: read once, when the scenario is loaded, relative to the scenario
file's folder; every bad trace is one located line (and exit 2 from the command line)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import ScenarioError, bundled_path, load_scenario
from router.cli import main
from scheduler.mec import demands_of

MEC3 = "requests_mean = 50"


def _write(tmp_path: Path, trace: str | None) -> Path:
    """bench-4-mec in tmp/site/ with MEC3's requests read from traces/mec3.csv."""
    text = bundled_path("bench-4-mec").read_text()
    assert MEC3 in text
    site = tmp_path / "site"
    (site / "traces").mkdir(parents=True)
    scenario = site / "bench.toml"
    scenario.write_text(text.replace(MEC3, 'requests_trace = "traces/mec3.csv"'))
    if trace is not None:
        (site / "traces" / "mec3.csv").write_text(trace)
    return scenario


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_trace_relative_to_the_scenario_read_once(tmp_path, monkeypatch):
    trace = "requests,comment\n# measured on site\n12\n\n30, busy hour\n7\n"
    scenario_file = _write(tmp_path, trace)
    monkeypatch.chdir(tmp_path)  # not the scenario's folder
    scenario = load_scenario(scenario_file)
    (scenario_file.parent / "traces" / "mec3.csv").unlink()  # read once: not needed again
    # 0.4 J a request; frame N takes the N-th count, wrapping around the three
    for frame, count in enumerate([12, 30, 7, 12, 30], start=1):
        assert demands_of(scenario, frame)[2] == pytest.approx(0.4 * count)


@pytest.mark.parametrize(
    ("trace", "line", "message"),
    [
        ("10\n12.5\n", 2, "'12.5' is not a whole number of requests (one count a line)"),
        ("requests\n10\nmany\n", 3, "'many' is not a whole number of requests (one count a line)"),
        ("10\n-3\n", 2, "-3 requests; a count must be >= 0"),
        ("10\n2000000\n", 2, "2000000 requests; at most 1000000 a frame"),
    ],
)
def test_bad_count_located_in_the_trace(tmp_path, trace, line, message):
    scenario_file = _write(tmp_path, trace)
    with pytest.raises(ScenarioError) as err:
        load_scenario(scenario_file)
    where = scenario_file.parent / "traces" / "mec3.csv"
    assert str(err.value) == f"{where}:{line}: mec.servers[2].requests_trace: {message}"


def test_too_short_and_missing(tmp_path):
    scenario_file = _write(tmp_path, "requests\n\n# nothing measured\n")
    where = scenario_file.parent / "traces" / "mec3.csv"
    with pytest.raises(ScenarioError) as err:
        load_scenario(scenario_file)
    assert str(err.value) == (
        f"{where}: mec.servers[2].requests_trace: too short: no request counts (one count a line)"
    )
    where.unlink()
    with pytest.raises(ScenarioError) as err:
        load_scenario(scenario_file)
    line = _line_of(scenario_file, "requests_trace")
    assert str(err.value) == (
        f"{scenario_file}:{line}: mec.servers[2].requests_trace: no such file '{where}' "
        "(a trace's path is relative to the scenario file's folder)"
    )


def test_cli_exit_2_one_line(tmp_path, capsys):
    scenario_file = _write(tmp_path, None)
    assert main(["allocate", str(scenario_file)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith(f"error: {scenario_file}:")
    assert "no such file" in err
