"""``ppr scenario generate --family mec``: a loadable MEC feeder, the same for the same
seed, with what was asked for; bad sizes as one line, exit 2."""

from __future__ import annotations

import pytest

from bench import load_scenario
from bench.loader import parse_dict
from bench.mec_generate import generate_mec
from router.cli import main
from scheduler.mec import build_instance


def test_writes_the_same_loadable_feeder(tmp_path, capsys):
    texts = []
    for name in ("a.toml", "b.toml"):
        argv = ["scenario", "generate", "--family", "mec", "--routers", "12", "--servers",
                "20", "--sources", "4", "--seed", "5", "--out", str(tmp_path / name)]  # fmt: skip
        assert main(argv) == 0
        texts.append((tmp_path / name).read_text())
    assert texts[0] == texts[1]
    assert "wrote" in capsys.readouterr().out
    scenario = load_scenario(tmp_path / "a.toml")
    assert scenario.mec is not None and scenario.frame.slots == 200
    assert len(scenario.routers) == 12 and len(scenario.lines) == 11  # a radial feeder
    assert [s.terminal for s in scenario.mec.servers] == [f"MEC{k}" for k in range(1, 21)]
    assert [s.terminal for s in scenario.mec.sources] == ["PV1", "PV2", "PV3", "PV4"]
    assert scenario.mec.quota == 20 // 4 + 2 and scenario.mec.seed == 5
    # the sources hold 84% of the mean demand (0.5 J a request)
    mean_demand = sum(0.5 * s.requests_mean for s in scenario.mec.servers)
    assert sum(s.available_j for s in scenario.mec.sources) == pytest.approx(
        0.84 * mean_demand, rel=1e-3
    )
    assert generate_mec(12, 20, 4, seed=6) != generate_mec(12, 20, 4, seed=5)


def test_the_benchmark_feeder_every_server_reached():
    scenario, topology = parse_dict(generate_mec(100, 200, 20, seed=1))
    inst = build_instance(scenario, topology)
    assert inst.loss.shape == (20, 200)
    assert all(inst.reachable(k, j) for k in range(20) for j in range(200))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--routers", "3", "--servers", "5", "--sources", "1"], "4 to 1000 routers"),
        (["--routers", "10", "--servers", "5", "--sources", "11"], "--sources: give 1 to 10"),
        (["--routers", "10", "--servers", "41", "--sources", "2"], "--servers: give 1 to 40"),
        (["--routers", "10", "--sources", "2"], "--family mec: give --servers"),
    ],
)
def test_bad_sizes(tmp_path, capsys, argv, message):
    out = tmp_path / "m.toml"
    code = main(["scenario", "generate", "--family", "mec", *argv, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert not out.exists()
