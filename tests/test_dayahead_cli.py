"""``ppr dayahead``: the JSON document, the picture, and one-line errors with exit 2."""

from __future__ import annotations

import json
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
        (("p2p_fee = 0.01", "p2p_fee = -0.01"), (), "vpp.toml:9: dayahead.p2p_fee: must be >= 0"),
        (None, ("--iterations", "0"), "--iterations 0: give at least 1"),
        (None, ("--plot", "x.jpg"), "--plot x.jpg: the picture is a PNG"),
    ],
)
def test_bad_input_one_line_exit_2(vpp_file, edit, argv, expected, capsys) -> None:
    if edit:
        text = vpp_file.read_text()
        assert edit[0] in text
        vpp_file.write_text(text.replace(*edit))
    code = main(["dayahead", str(vpp_file), *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and expected in err and err.count("\n") == 1
    assert "Traceback" not in err


def test_missing_file(tmp_path: Path, capsys) -> None:
    assert main(["dayahead", str(tmp_path / "none.toml")]) == 2
    assert "none.toml: no such file" in capsys.readouterr().err
