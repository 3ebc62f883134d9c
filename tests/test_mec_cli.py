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
from router import progress
from router.cli import main
from tests.mec_bench import AVAILABLE, LOSS, MATCHING, R4_CAP, ROUTES, demands, loss_of, pick

MEC = bundled_path("bench-4-mec")


def ppr(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_table(capsys):
    """Frame 1 (the default, a fresh run's first): PV1 is short, MEC1 and MEC3 share
    what it has at equal satisfaction, PV2's spare energy is the price of matching."""
    code, out, err = ppr(capsys, "allocate")
    assert code == 0 and "error" not in err  # (progress, on a slow machine)
    lines = out.splitlines()
    assert lines[0] == (
        "bench-4-mec frame 1: 3 MEC servers, 2 sources; servers propose, 3 matched (stable)"
    )
    demand, sent = demands(1), pick(1)
    for server, source in MATCHING.items():  # demand, source, loss, sent, satisfaction
        row = next(line.split() for line in lines if line.startswith(f"  {server} "))
        assert row[1] == f"{demand[server]:.2f}" and row[2] == source
        assert float(row[3].rstrip("%")) == pytest.approx(100 * LOSS[(source, server)], abs=5e-4)
        assert float(row[4]) == pytest.approx(sent[server], abs=0.005)
        got = sent[server] * (1 - loss_of(server)) / demand[server]
        assert float(row[6]) == pytest.approx(got, abs=5e-4)
        assert row[7:] == ROUTES[(source, server)][0]
    assert [s for s in ("MEC1", "MEC3") if sent[s] * (1 - loss_of(s)) < demand[s]]
    assert "sends    36.00 of    36.00 J" in out  # PV1: all of it
    # a server may draw from several sources: PV2's spare energy reaches everyone
    free = next(line for line in lines if "unrestricted LP" in line)
    assert "mean 1.0000, min 1.0000" in free
    mean = np.mean([min(1, sent[s] * (1 - loss_of(s)) / demand[s]) for s in sent])
    assert f"price of matching: mean +{1 - mean:.4f}" in free
    assert "hypervolume NSGA-II " in out and "% of the epsilon grid's front's " in out


def test_json_front_recomputed_from_sent(capsys):
    """Frame 2: many MEC3 requests; R4's cap binds, PV1 is short as well."""
    code, out, _ = ppr(capsys, "allocate", str(MEC), "--frame", "2", "--json")
    assert code == 0
    doc = json.loads(out)
    demand = demands(2)
    assert {s: v["demand_j"] for s, v in doc["servers"].items()} == pytest.approx(demand)
    assert doc["matching"] == MATCHING
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
        for source, cap in AVAILABLE.items():
            assert sum(x for (k, _), x in sent.items() if k == source) <= cap + 1e-9
        assert sent[("PV1", "MEC3")] <= R4_CAP + 1e-9
        assert min(sent.values()) >= 0
        sat = [min(1.0, (1 - LOSS[p]) * x / demand[p[1]]) for p, x in sent.items()]
        assert point["mean_satisfaction"] == pytest.approx(np.mean(sat), abs=1e-12)
        assert point["min_satisfaction"] == pytest.approx(min(sat), abs=1e-12)
        assert point["loss_j"] == pytest.approx(sum(LOSS[p] * x for p, x in sent.items()))
    # the pick rule's point, worked out by hand: R4 carries all its cap
    chosen = doc["front"][doc["chosen"]]
    want = pick(2)
    assert {k.split("/")[1]: x for k, x in chosen["sent_j"].items()} == pytest.approx(want)
    assert want["MEC3"] == pytest.approx(R4_CAP)
    assert doc["routers"] == {"R4": {"max_transfer_j": R4_CAP, "passed_j": pytest.approx(R4_CAP)}}
    assert chosen["min_satisfaction"] < 1
    assert doc["hypervolume"]["ratio"] >= 0.98
    # a server may draw from several sources: never worse (the LPs' 1e-9 slacks aside),
    # no better at the minimum (MEC3 is held by R4, whichever source feeds it), better
    # on the mean (PV2's spare energy reaches MEC1)
    free = doc["unrestricted"]
    assert free["min_satisfaction"] == pytest.approx(chosen["min_satisfaction"], abs=1e-8)
    assert free["mean_satisfaction"] > chosen["mean_satisfaction"] + 0.01


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
        (["--frame", "0"], "error: --frame 0: frames are numbered from 1, as the journal"),
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
    """What ``ppr allocate --json | jq`` sees: one JSON document (progress, if any, and a
    first run's compile notice go to stderr; the kernels are warm here: no notice)."""
    result = subprocess.run(
        [sys.executable, "-m", "router.cli", "allocate", "--json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0 and "compiling" not in result.stderr, result.stderr
    assert json.loads(result.stdout)["matching"]["MEC2"] == "PV2"


def test_progress_on_stderr(monkeypatch, capsys):
    """The routes of each server, NSGA-II's generations, the epsilon grid's levels: each
    counted to its end (the thresholds at zero, so every update is a line)."""
    monkeypatch.setattr(progress, "AFTER_S", 0.0)
    monkeypatch.setattr(progress, "EVERY_S", 0.0)
    code, out, err = ppr(capsys, "allocate", "--frame", "2")
    assert code == 0 and out.startswith("bench-4-mec frame 2: ")
    counts: dict[str, list[tuple[int, int]]] = {}
    for line in err.splitlines():
        label, _, rest = line.partition(": ")
        assert label == "allocating bench-4-mec frame 2", line
        phase, _, count = rest.rpartition(" ")
        done, total = count.split("/")
        counts.setdefault(phase, []).append((int(done), int(total)))
    assert list(counts) == ["routes of servers", "NSGA-II generations", "epsilon grid levels"]
    for phase, total in zip(counts, (3, 30, 20), strict=True):
        assert counts[phase] == [(i, total) for i in range(1, total + 1)], phase


def test_all_errors_lists_every_problem(tmp_path, capsys):
    text = MEC.read_text().replace("quota = 2 ", "quota = 0 ", 1)
    text = text.replace("requests = 40", "requests = -1", 1)
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    code, out, err = ppr(capsys, "allocate", str(bad), "--all-errors")
    assert code == 2 and out == ""
    lines = text.splitlines()
    quota, requests = (
        lines.index("quota = 0      # servers a source may take"),
        lines.index("requests = -1"),
    )
    assert err.splitlines() == [
        f"error: {bad}:{quota + 1}: mec.quota: must be >= 1 (got 0)",
        f"error: {bad}:{requests + 1}: mec.servers[0].requests: must be >= 0 (got -1)",
    ]


def test_run_with_mec_and_dayahead_refused(tmp_path, capsys):
    code, out, err = ppr(
        capsys, "run", "--scenario", str(MEC), "--dayahead", "vpp.toml", "--hour", "3",
        "--out", str(tmp_path / "out"), "--keys", str(tmp_path / "keys"),
    )  # fmt: skip
    assert code == 2 and out == ""
    assert err == "error: --dayahead: the scenario's [mec] section decides its frames\n"
    assert not (tmp_path / "out").exists() and not (tmp_path / "keys").exists()


def test_run_help_names_the_mec_stage(capsys):
    with pytest.raises(SystemExit) as done:
        main(["run", "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "with a [mec] section, the energy its MEC servers are allocated that frame" in text
