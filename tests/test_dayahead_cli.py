"""``ppr dayahead``: the JSON document, the picture, and one-line errors with exit 2."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.dayahead import load_dayahead
from bench.toml_write import dumps
from bench.vpp_generate import generate_vpp
from router.cli import main
from tests.dayahead_oracle import central_optimum, check_feasible


@pytest.fixture
def vpp_file(tmp_path: Path) -> Path:
    path = tmp_path / "vpp.toml"
    path.write_text(dumps(generate_vpp(6, 8, seed=4, peers=2), header="test"))
    return path


def test_json_is_feasible_and_near_the_optimum(vpp_file: Path, tmp_path: Path) -> None:
    picture = tmp_path / "day.png"
    result = subprocess.run(
        [sys.executable, "-m", "router.cli", "dayahead", str(vpp_file), "--json",
         "--plot", str(picture)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)  # stdout is the document alone
    day = load_dayahead(vpp_file)
    optimum = central_optimum(day, bilateral=False)
    assert doc["lower_bound"] <= optimum + 1e-6 <= doc["total_cost"] + 2e-6
    assert check_feasible(day, doc) == pytest.approx(doc["total_cost"], abs=1e-6)
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_table_names_every_prosumer(vpp_file: Path, capsys) -> None:
    assert main(["dayahead", str(vpp_file), "--framework", "bilateral", "--iterations", "20"]) == 0
    out = capsys.readouterr().out
    for p in load_dayahead(vpp_file).prosumers:
        assert f"\n  {p.id} " in out
    assert "VPP cost" in out and "lower bound" in out


@pytest.mark.parametrize(
    ("edit", "argv", "expected"),
    [
        (
            ("p2p_fee = 0.01", "p2p_fee = -0.01"),
            (),
            re.escape("vpp.toml:9: dayahead.p2p_fee: must be >= 0"),
        ),
        (None, ("--iterations", "0"), re.escape("--iterations 0: give at least 1")),
        (None, ("--plot", "x.jpg"), re.escape("--plot x.jpg: the picture is a PNG")),
        # told before the day is solved, not as a traceback after it
        (None, ("--plot", "no-such/d.png"), re.escape("--plot no-such/d.png: no folder no-such")),
        (None, ("--seed", "3"), re.escape("--seed 3: applies to --realtime only; add --realtime")),
        (None, ("--vpps", "2"), re.escape("--vpps 2: applies to --realtime only")),
        (None, ("--time-limit", "0.5"), re.escape("--time-limit 0.5: applies to --realtime only")),
        (
            ("grid_kw = 10.0", "grid_kw = 0.0"),
            (),
            # every grid connection closed: the night's load has nowhere to come from
            r"vpp.toml:\d+: prosumers\[h\d\]\.grid_kw: period \d \(\d\d:00-\d\d:00\): "
            r"[\d.]+ kW of its load cannot be covered by its PV, battery, grid_kw 0 and every "
            r"trade in the pool.*; raise its grid_kw, or give it a battery or more peers",
        ),
    ],
)
def test_bad_input_one_line_exit_2(vpp_file, edit, argv, expected, capsys) -> None:
    if edit:
        text = vpp_file.read_text()
        assert edit[0] in text
        vpp_file.write_text(text.replace(*edit))
        assert edit[1] in vpp_file.read_text()
    code = main(["dayahead", str(vpp_file), *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and re.search(expected, err) and err.count("\n") == 1
    assert "Traceback" not in err


def test_no_schedule_found_is_exit_1_not_a_usage_error(vpp_file, monkeypatch, capsys) -> None:
    # a file that can balance, but the repair (here made to) finds no schedule: that is
    # not the user's mistake, and the message says so
    from scheduler.dayahead import solver

    real = solver.repair

    def no_schedule(agents: list, *a: object, **k: object) -> tuple:
        done = real(agents, *a, **k)  # type: ignore[arg-type]
        # the file's VPP gets no schedule, only the master's prices (the kernels' tiny
        # two-prosumer warm-up is left alone)
        return (None, done[1]) if len(agents) > 2 else done

    monkeypatch.setattr(solver, "repair", no_schedule)
    assert main(["dayahead", str(vpp_file), "--iterations", "5"]) == 1
    err = capsys.readouterr().err
    assert "the file can balance, but the repair found no feasible schedule" in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_alone_cost_is_na_for_a_prosumer_that_needs_trades(vpp_file, capsys) -> None:
    text = vpp_file.read_text()
    vpp_file.write_text(text.replace("grid_kw = 10.0", "grid_kw = 0.5"))
    assert main(["dayahead", str(vpp_file), "--iterations", "30"]) == 0
    out = capsys.readouterr().out
    assert "n/a" in out and "cannot cover its load with the grid alone" in out
    assert main(["dayahead", str(vpp_file), "--iterations", "30", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["grid_alone_cost"] is None
    assert any(p["grid_alone"] is None for p in doc["prosumers"].values())
    check_feasible(load_dayahead(vpp_file), doc)


def test_plot_draws_the_last_period(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    from router.dayahead_plot import _steps

    fig, ax = plt.subplots()
    _steps(ax, [0.1, 0.2, 0.3])
    x, y = ax.lines[0].get_data()
    assert list(x) == [0, 1, 2, 3] and list(y) == [0.1, 0.2, 0.3, 0.3]
    plt.close(fig)


def test_missing_file(tmp_path: Path, capsys) -> None:
    assert main(["dayahead", str(tmp_path / "none.toml")]) == 2
    assert "none.toml: no such file" in capsys.readouterr().err


def test_generated_vpp_is_the_bundled_one(tmp_path: Path, capsys) -> None:
    bundled = Path(__file__).parent.parent / "bench" / "data" / "vpp-30.toml"
    header = bundled.read_text().splitlines()[0]
    assert header.startswith("# Generated by: ppr scenario generate --family vpp")
    out = tmp_path / "vpp.toml"
    argv = [*header.removeprefix("# Generated by: ppr ").split(), "--out", str(out)]
    assert main(argv) == 0
    assert out.read_text() == bundled.read_text()
    day = load_dayahead(bundled)
    assert len(day.prosumers) >= 30 and day.dayahead.periods == 24
    assert sum(p.battery_kwh > 0 for p in day.prosumers) > 0
    assert sum(max(p.pv_kw) > 0 for p in day.prosumers) > 0


def test_bench_family_still_needs_routers(tmp_path: Path, capsys) -> None:
    assert main(["scenario", "generate", "--family", "ring", "--out", str(tmp_path / "x")]) == 2
    assert "--family ring: give --routers" in capsys.readouterr().err
