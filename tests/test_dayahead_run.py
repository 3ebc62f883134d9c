"""``ppr run --dayahead``: an hour's trades become frame transfers and end as packets on
the twin; the stage's account compares delivered with traded."""

from __future__ import annotations

import pytest

from router.cli import main
from router.controller.dayahead_stage import DayAheadStage, HourTrade
from router.controller.session import Session
from tests.controller_support import bench, config

pytestmark = pytest.mark.timeout(180)


async def test_hour_trades_are_delivered_on_the_twin(tmp_path):
    # sellers A, C onto the sources in file order (PV1, BAT1), buyers B, D onto the loads
    # (MEC1, MEC2); 1 kWh is the largest trade: 20 packets, 0.5 kWh: 10
    trades = (HourTrade("A", "B", 1.0), HourTrade("C", "D", 0.5))
    stage = DayAheadStage(trades, hour=12)
    result = await Session(config(tmp_path, bench(), frames=1, stage=stage)).run()
    assert result.verified.ok
    (outcome,) = result.outcomes
    assert not outcome.skipped, outcome.problems
    rows = outcome.stage["transfers"]
    assert [(r["source"], r["sink"], r["packets"]) for r in rows] == [
        ("PV1", "MEC1", 20),
        ("BAT1", "MEC2", 10),
    ]
    for r in rows:
        assert r["delivered_packets"] == pytest.approx(r["packets"])
        assert r["delivered_j"] > 0
    assert outcome.packets_delivered == 30


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--hour", "3"], "--dayahead FILE and --hour H go together"),
        (
            ["--dayahead", "bench/data/vpp-30.toml", "--hour", "24"],
            "--hour 24: bench/data/vpp-30.toml covers hours 0 to 24",
        ),
        (["--dayahead", "bench/data/vpp-30.toml", "--hour", "2"], "--hour 2: no day-ahead trades"),
    ],
)
def test_bad_dayahead_run_is_one_line(argv, expected, tmp_path, capsys):
    code = main(["run", "--out", str(tmp_path / "out"), "--keys", str(tmp_path / "k"), *argv])
    err = capsys.readouterr().err
    assert code == 2 and expected in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()
