"""``ppr run --mechanism``: a rule other than VCG clears the SOP bench every frame, and
its trades end as packets on the twin, delivered, paid as cleared, green energy and all."""

from __future__ import annotations

import math

import pytest

from bench import bundled_path, load_with_topology
from router.cli import main
from router.journal import read_records
from scheduler.market import certifiable_green_j, clear_market, market_transfers

pytestmark = pytest.mark.timeout(180)

SOP_BENCH = bundled_path("microgrids-sop")


def test_combined_offer_trades_are_delivered_on_the_twin(tmp_path, capsys):
    dirs = ["--out", str(tmp_path / "out"), "--keys", str(tmp_path / "k")]
    argv = ["run", "--scenario", str(SOP_BENCH), "--mechanism", "combined-offer", "--frames", "2"]
    code = main([*argv, *dirs])
    out = capsys.readouterr().out
    assert code == 0, out
    scenario, topology = load_with_topology(SOP_BENCH)
    cleared = clear_market(scenario, topology, "combined-offer")
    trades = dict(
        zip((t.id for t in market_transfers(scenario, cleared)), cleared.trades, strict=True)
    )
    green_offers = {q.id for q in scenario.offers if q.green}  # from the file itself
    records = list(read_records(tmp_path / "out" / "journal.sqlite"))
    plans = [r.payload for r in records if r.kind == "plan"]
    settlements = [r.payload for r in records if r.kind == "settlement"]
    assert len(plans) == len(settlements) == 2
    for plan in plans:
        assert plan["stage"]["mechanism"] == "combined-offer"
        assert plan["stage"]["volume"] == cleared.volume == 280
        assert (
            plan["stage"]["welfare_gap"] == pytest.approx(cleared.welfare_gap)
            and cleared.welfare_gap > 0
        )
    for s in settlements:
        assert {t["transfer"] for t in s["transfers"]} == set(trades)
        for t in s["transfers"]:
            assert t["planned_packets"] == trades[t["transfer"]].packets
            assert t["shortfall_packets"] == 0 and t["delivered_j"] > 0
        payment = {p.id: p.payment for p in cleared.participants}
        for p in s["participants"]:
            assert p["paid"] == pytest.approx(payment[p["id"]], abs=1e-9)
        # certificates: never more than the energy metered from green offers
        green_metered = math.fsum(
            t["delivered_j"] for t in s["transfers"] if t["seller"] in green_offers
        )
        certified = math.fsum(certifiable_green_j(trades[t["transfer"]], t["delivered_j"])
                              for t in s["transfers"])  # fmt: skip
        assert 0 < certified <= green_metered + 1e-9
        assert certified <= cleared.green_j + 1e-9
        assert certified == pytest.approx(green_metered, rel=0.01)  # healthy frame: all of it
