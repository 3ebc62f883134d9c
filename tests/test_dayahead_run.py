"""``ppr run --dayahead``: an hour's trades become frame transfers and end as packets on
the twin; the stage's account compares delivered with traded. Every hour of real solver
output makes valid transfers, prosumers that buy and sell within the hour included."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench import Topology
from bench.dayahead import load_dayahead
from bench.toml_write import dumps
from bench.vpp_generate import generate_vpp
from router.cli import UsageError, main
from router.cli.dayahead_run import hour_share, stage_for_hour
from router.cli.dayahead_solve import solve_file
from router.controller.dayahead_stage import DayAheadStage, HourTrade, net_flows
from router.controller.session import Session
from scheduler.dayahead.document import pair_trades
from tests.controller_support import bench, config

pytestmark = pytest.mark.timeout(300)
VPP30 = Path("bench/data/vpp-30.toml")


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


def test_net_flows_follow_relays_and_drop_cycles():
    H = HourTrade
    # B relays 2 of A's 3 kWh to C and sells 1 back: A -> C 2 net
    assert net_flows((H("A", "B", 3), H("B", "C", 2), H("B", "A", 1))) == (H("A", "C", 2),)
    # a cycle carries nothing anywhere
    assert net_flows((H("A", "B", 2), H("B", "C", 2), H("C", "A", 2))) == ()
    flows = net_flows((H("A", "B", 2), H("B", "C", 2), H("C", "A", 1), H("D", "C", 1)))
    assert flows == (H("A", "C", 1), H("D", "C", 1))
    # a stage refuses a prosumer on both sides
    with pytest.raises(ValueError, match="both sell and buy"):
        DayAheadStage((H("A", "B", 1), H("B", "C", 1)), hour=0)


def test_hour_share_for_any_period_length():
    assert hour_share(8, 0.25, 1).tolist() == [0, 0, 0, 0, 0.25, 0.25, 0.25, 0.25]
    # a two-hour period: each of its hours gets half of it
    assert hour_share(12, 2.0, 3).tolist() == [0, 1.0] + [0] * 10
    assert hour_share(12, 2.0, 2).tolist() == [0, 1.0] + [0] * 10
    assert hour_share(24, 1.0, 23)[-1] == 1.0


def _every_hour(path: Path, framework: str) -> tuple[int, int]:
    """Stages for every hour of the real solver output; (hours with trades, hours where a
    prosumer both buys and sells)."""
    day = load_dayahead(path)
    problem, result = solve_file(day, path, framework, iterations=60)
    trades = pair_trades(problem, result)
    base = bench()
    topology = Topology(base)
    m = day.dayahead
    busy = both = 0
    for hour in range(round(m.periods * m.period_h)):
        share = hour_share(m.periods, m.period_h, hour)
        sellers = {a for a, _, kw in trades if float(np.asarray(kw) @ share) > 1e-6}
        buyers = {z for _, z, kw in trades if float(np.asarray(kw) @ share) > 1e-6}
        try:
            stage = stage_for_hour(problem.ids, trades, m, hour, path)
        except UsageError:
            assert not sellers
            continue
        busy += 1
        both += bool(sellers & buyers)
        out = stage.prepare(0, 0, base, topology)  # the transfers are valid on the bench
        assert out.requested.transfers
        traded = sum(r["traded_kwh"] for r in out.record["transfers"])
        assert traded > 0
    return busy, both


def test_every_bilateral_hour_of_vpp30_runs():
    busy, both = _every_hour(VPP30, "bilateral")
    assert busy >= 10 and both >= 1  # relays and mixed hours are among them


def test_every_pool_hour_of_a_quarter_hour_day_runs(tmp_path):
    path = tmp_path / "vpp96.toml"
    path.write_text(dumps(generate_vpp(12, 96, seed=2, peers=0), header="test"))
    busy, both = _every_hour(path, "pool")
    # within an hour a prosumer sells in one quarter and buys in another
    assert busy >= 8 and both >= 1


def test_a_mixed_hour_runs_on_the_twin(tmp_path, capsys):
    # the hour of vpp-30 (bilateral) where most prosumers both buy and sell
    day = load_dayahead(VPP30)
    problem, result = solve_file(day, VPP30, "bilateral")
    trades = pair_trades(problem, result)
    m = day.dayahead

    def mixed(hour: int) -> int:
        share = hour_share(m.periods, m.period_h, hour)
        live = [(a, z) for a, z, kw in trades if float(np.asarray(kw) @ share) > 1e-6]
        return len({a for a, _ in live} & {z for _, z in live})

    hour = max(range(24), key=mixed)
    assert mixed(hour) >= 1
    out = tmp_path / "out"
    argv = ["run", "--out", str(out), "--keys", str(tmp_path / "k"), "--frames", "1",
            "--dayahead", str(VPP30), "--hour", str(hour), "--framework", "bilateral"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    text = capsys.readouterr().out
    assert f"day-ahead hour {hour}:" in text and "delivered" in text


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--hour", "3"], "--dayahead FILE and --hour H go together"),
        (["--framework", "bilateral"], "--framework bilateral: applies to --dayahead only"),
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
