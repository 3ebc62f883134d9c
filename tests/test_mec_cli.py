"""``ppr allocate``: the table, the JSON (every front point feasible, its objectives
recomputed from ``sent_j`` with losses and demands worked out by hand), the PNG with the
chosen point marked, and bad input as one line with exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench import bundled_path
from router.cli import main

MEC = bundled_path("bench-4-mec")
E = 48 * 6 * 0.0049  # J a packet takes from its source (6 A, 48 V, 5 ms less 100 us)

# bench-4-mec by hand: least-loss route of every (source, server) pair as the planner
# writes routes (terminal, lines/SOPs, terminal) and its loss fraction 6 A x R / 48 V
ROUTES = {
    ("PV1", "MEC1"): (["PV1", "MEC1"], 0.02 + 0.03),
    ("PV1", "MEC2"): (["PV1", "L12", "L23", "MEC2"], 0.02 + 0.08 + 0.10 + 0.03),
    ("PV1", "MEC3"): (["PV1", "L41", "MEC3"], 0.02 + 0.09 + 0.03),
    ("PV2", "MEC1"): (["PV2", "L23", "L12", "MEC1"], 0.02 + 0.10 + 0.08 + 0.03),
    ("PV2", "MEC2"): (["PV2", "MEC2"], 0.02 + 0.03),
    ("PV2", "MEC3"): (["PV2", "L34", "MEC3"], 0.02 + 0.12 + 0.03),
}
LOSS = {pair: 6 * ohm / 48 for pair, (_, ohm) in ROUTES.items()}
AVAILABLE = {"PV1": 60.0, "PV2": 50.0}


def _demands(frame: int) -> dict[str, float]:
    """MEC1 40 x 0.5 J; MEC2, MEC3 Poisson(60) x 0.5 J, Poisson(50) x 0.4 J, drawn in that
    order from a generator seeded by ([mec] seed 7, frame)."""
    rng = np.random.default_rng([7, frame])
    return {"MEC1": 20.0, "MEC2": rng.poisson(60) * 0.5, "MEC3": rng.poisson(50) * 0.4}


def ppr(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_table(capsys):
    code, out, err = ppr(capsys, "allocate")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == (
        "bench-4-mec frame 0: 3 MEC servers, 2 sources; servers propose, 3 matched (stable)"
    )
    demand = _demands(0)
    # server, demand, source, loss; everyone satisfied (the sources have the energy)
    for server, source in (("MEC1", "PV1"), ("MEC2", "PV2"), ("MEC3", "PV1")):
        row = next(line.split() for line in lines if line.startswith(f"  {server} "))
        assert row[1] == f"{demand[server]:.2f}" and row[2] == source
        assert float(row[3].rstrip("%")) == pytest.approx(100 * LOSS[(source, server)], abs=5e-4)
        assert row[6] == "1.000"
        assert row[7:] == ROUTES[(source, server)][0]
    assert any(line.startswith("  hypervolume NSGA-II ") for line in lines)


def test_json_front_recomputed_from_sent(capsys):
    code, out, _ = ppr(capsys, "allocate", str(MEC), "--frame", "3", "--json")
    assert code == 0
    doc = json.loads(out)
    demand = _demands(3)
    assert {s: v["demand_j"] for s, v in doc["servers"].items()} == pytest.approx(demand)
    assert doc["matching"] == {"MEC1": "PV1", "MEC2": "PV2", "MEC3": "PV1"}
    pairs = {(p["source"], p["server"]): p for p in doc["pairs"]}
    assert sorted(pairs) == sorted(ROUTES)  # every pair a route reaches, matched or not
    for pair, p in pairs.items():
        assert p["route"] == ROUTES[pair][0]
        assert p["loss_fraction"] == pytest.approx(LOSS[pair], rel=1e-12)
        assert p["matched"] == (doc["matching"][pair[1]] == pair[0])
    assert len(doc["front"]) > 100
    assert 0 <= doc["chosen"] < len(doc["front"])
    for point in doc["front"]:
        sent = {tuple(key.split("/")): x for key, x in point["sent_j"].items()}
        assert set(sent) == {("PV1", "MEC1"), ("PV2", "MEC2"), ("PV1", "MEC3")}
        for source, cap in AVAILABLE.items():  # R2's cap: no matched route crosses R2
            assert sum(x for (k, _), x in sent.items() if k == source) <= cap + 1e-9
        assert min(sent.values()) >= 0
        sat = [min(1.0, (1 - LOSS[p]) * x / demand[p[1]]) for p, x in sent.items()]
        assert point["mean_satisfaction"] == pytest.approx(np.mean(sat), abs=1e-12)
        assert point["min_satisfaction"] == pytest.approx(min(sat), abs=1e-12)
        assert point["loss_j"] == pytest.approx(sum(LOSS[p] * x for p, x in sent.items()))
    # the pick rule: everyone is satisfied, at the least loss sum D_j l_j / (1 - l_j)
    chosen = doc["front"][doc["chosen"]]
    assert chosen["min_satisfaction"] == pytest.approx(1.0, abs=1e-9)
    want = sum(demand[s] * LOSS[(k, s)] / (1 - LOSS[(k, s)]) for s, k in doc["matching"].items())
    assert chosen["loss_j"] == pytest.approx(want, rel=1e-6)
    assert doc["hypervolume"]["ratio"] >= 0.98
    # a server may draw from several sources: never worse (the LPs' 1e-9 slacks aside)
    free = doc["unrestricted"]
    assert free["min_satisfaction"] >= chosen["min_satisfaction"] - 1e-8
    assert free["mean_satisfaction"] >= chosen["mean_satisfaction"] - 1e-8


def test_front_png_marks_the_chosen_point(tmp_path, capsys):
    import matplotlib.image

    png = tmp_path / "front.png"
    code, out, _ = ppr(capsys, "allocate", "--proposer", "sources", "--front", str(png))
    assert code == 0 and f"wrote       {png}" in out
    assert "sources propose" in out.splitlines()[0]
    image = matplotlib.image.imread(png)
    assert image.shape[0] > 300 and image.shape[1] > 600
    # the chosen point's red star (tab:red, #d62728), in both panels
    red = np.all(np.abs(image[:, :, :3] - [0xD6 / 255, 0x27 / 255, 0x28 / 255]) < 0.05, axis=2)
    columns = np.flatnonzero(red.any(axis=0))
    assert red.sum() > 50
    assert columns.min() < image.shape[1] / 2 < columns.max()
    assert [p.name for p in tmp_path.iterdir()] == ["front.png"]  # no temporary left


def _unreachable(tmp_path: Path) -> Path:
    text = MEC.read_text().replace("max_current_a = 15.0", "max_current_a = 5.0")
    path = tmp_path / "cut.toml"
    path.write_text(text.replace("max_power_w = 800.0", "max_power_w = 100.0"))
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--frame", "-1"], "error: --frame must be 0 or more, not -1"),
        ([str(bundled_path())], "no [mec] section to allocate"),
        (["nope.toml"], "error: nope.toml: no such file"),
        (["--front", "{tmp}/missing/f.png"], "no folder {tmp}/missing; create it first"),
        (["--front", "{tmp}/f.svg"], "the picture is a PNG; name it *.png"),
        (["{unreachable}"], "mec.servers[2].terminal: no source reaches server 'MEC3'"),
    ],
)
def test_bad_input_one_line_exit_2(tmp_path, capsys, args, message):
    fill = {"tmp": str(tmp_path), "unreachable": str(_unreachable(tmp_path))}
    args = [a.format(**fill) for a in args]
    code, out, err = ppr(capsys, "allocate", *args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message.format(**fill) in err
    if "unreachable" in str(args):  # located: the file and the line of MEC3's entry
        line = Path(args[0]).read_text().splitlines().index('terminal = "MEC3"') + 1
        assert err.startswith(f"error: {args[0]}:{line}: ")
    assert not (tmp_path / "f.svg").exists()


def test_json_on_stdout_is_all_a_pipe_reads():
    """What ``ppr allocate --json | jq`` sees: one JSON document."""
    result = subprocess.run(
        [sys.executable, "-m", "router.cli", "allocate", "--json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["matching"]["MEC2"] == "PV2"


def test_run_with_mec_and_dayahead_refused(tmp_path, capsys):
    code, out, err = ppr(
        capsys, "run", "--scenario", str(MEC), "--dayahead", "vpp.toml", "--hour", "3",
        "--out", str(tmp_path / "out"), "--keys", str(tmp_path / "keys"),
    )  # fmt: skip
    assert code == 2 and out == ""
    assert err == "error: --dayahead: the scenario's [mec] section decides its frames\n"
    assert not (tmp_path / "out").exists() and not (tmp_path / "keys").exists()
