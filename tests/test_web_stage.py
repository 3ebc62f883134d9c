"""The web book as a frame stage: it clears on the scenario's interval (or when the
operator asks), its trades run as the frame's transfers on the twin, and the frame's
meters come back as deliveries, payments and green certificates; a clearing whose frame
never ran runs again, and one whose frame ran before a crash settles from the journal.

Energies are worked out by hand: bench-4's terminals are 48 V, 10 A; a 5 ms slot with a
100 us guard conducts 4.9 ms, so a packet leaves with 48 * 10 * 0.0049 = 2.352 J. PV1
and MEC1 sit on R1; on that route a packet loses I^2 R tau = 100 * (0.02 + 0.03) *
0.0049 = 0.0245 J in the two accesses and arrives with 2.3275 J.
"""

from __future__ import annotations

import asyncio
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench import Scenario, bundled_path, parse_dict
from bench.errors import ScenarioError
from bench.loader import load_scenario
from router.controller.session import Session
from router.controller.stages import StageOutput
from router.journal import Journal, read_records
from router.settlement import FrameSettlement
from router.web import clearing as clearings
from router.web.stage import BookStage
from tests.controller_support import config
from tests.web_support import KEY, Site, bid, login, offer

pytestmark = pytest.mark.timeout(180)

ARRIVES_J = 2.3275  # one PV1 -> MEC1 packet at MEC1's meter (module text)


def bench(interval: int = 1, **changes: Any) -> Scenario:
    """bench-4 without its own transfers (the book's trades are the only traffic)."""
    data = tomllib.loads(bundled_path().read_text())
    data["transfers"] = []
    data["market"] = {"interval_frames": interval}
    data.update(changes)
    return parse_dict(data)[0]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    s = Site(tmp_path, bench(interval=2))
    yield s
    s.close()


def traders(site: Site) -> dict[str, Any]:
    site.admin()
    return {
        "ann": site.user("ann", terminals=("PV1",)),
        "bob": site.user("bob", terminals=("MEC1",)),
        "cat": site.user("cat", terminals=("PV2",)),
        "dan": site.user("dan", terminals=("MEC2",)),
    }


def cleared_at(site: Site, frame: int, **stage: Any) -> tuple[BookStage, StageOutput]:
    """A stage that cleared ann's offer (20 at 1.0) and bob's bid (10 at 3.0) for
    ``frame`` and gave the trades to that frame."""
    t = traders(site)
    assert offer(t["ann"], quantity=20, price=1.0).is_success
    assert bid(t["bob"], quantity=10, price=3.0).is_success
    book = BookStage(site.terminal, **stage)
    book.prepare(0, frame - 1, site.scenario, site.topology)
    book.wait_idle()
    out = book.prepare(1, frame, site.scenario, site.topology)
    assert out.market is not None and out.market.traded == 10
    return book, out


def parties(site: Site, clearing: int) -> dict[str, int]:
    """The names a clearing's orders go by on the bench -> their order ids (server side)."""
    rows = site.store.rows("SELECT party, order_id FROM parties WHERE clearing_id = ?", (clearing,))
    return {r["party"]: r["order_id"] for r in rows}


def journal_settlements(path: Path) -> dict[int, dict[str, Any]]:
    return {r.frame: r.payload for r in read_records(path) if r.kind == "settlement"}  # type: ignore[misc]


def test_the_interval_is_a_checked_field_of_the_scenario(tmp_path: Path) -> None:
    assert bench().market.interval_frames == 1
    assert load_scenario(bundled_path()).market.interval_frames == 1  # the default
    path = tmp_path / "b.toml"
    path.write_text(bundled_path().read_text() + "\n[market]\ninterval_frames = 0\n")
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert str(err.value).endswith("market.interval_frames: must be >= 1 (got 0)")
    assert f"{path}:" in str(err.value)
    path.write_text(bundled_path().read_text() + '\n[market]\ninterval_frames = "2"\n')
    with pytest.raises(ScenarioError, match=r"market\.interval_frames"):
        load_scenario(path)


def test_the_book_clears_on_the_interval_or_when_the_operator_asks(site: Site) -> None:
    t = traders(site)
    assert offer(t["ann"], quantity=20, price=1.0).is_success
    assert bid(t["bob"], quantity=10, price=3.0).is_success
    stage = BookStage(site.terminal)
    base, topo = site.scenario, site.topology
    assert stage.prepare(0, 6, base, topo).market is None  # 7 is not a clearing frame
    stage.wait_idle()
    assert clearings.last_clearings(site.store) == []
    # planning frame 7, the stage clears for frame 8 (a multiple of 2) in its thread
    assert stage.prepare(1, 7, base, topo).market is None
    stage.wait_idle()
    out = stage.prepare(2, 8, base, topo)
    assert out.market is not None and out.record["cleared_frame"] == 8
    assert out.market.traded == 10
    # the clearing is stored, pending, given to frame 8; the orders' remainders left the book
    (c,) = clearings.last_clearings(site.store)
    assert (c.status, c.exec_frame, c.volume, c.mechanism) == ("pending", 8, 10, "vcg")
    mine = {o["side"]: o for o in t["ann"].get("/api/orders").json()}
    assert (mine["offer"]["remaining"], mine["offer"]["status"]) == (10, "partial")
    assert t["bob"].get("/api/orders").json()[0]["status"] == "filled"
    assert t["bob"].get("/api/book").json() == {
        "offers": [{"side": "offer", "terminal": "PV1", "packets": 10, "price": 1.0,
                    "green": False}],
        "bids": [],
        "offer_totals": {"orders": 1, "packets": 10},
        "bid_totals": {"orders": 0, "packets": 0},
        "frame": 9,
    }  # fmt: skip
    # frame 8 ran and its settlement came back (nothing metered: this bench is not real)
    assert stage.settled(out, FrameSettlement(8, (), (), ())) == {
        "clearing": c.id, "orders": 0, "green_j_certified": 0, "certificates": 0,
    }  # fmt: skip
    assert clearings.get(site.store, c.id).status == "settled"
    # a new bid; frame 10 would clear anyway: the operator asks at frame 9 for frame 10 ...
    assert bid(t["dan"], terminal="MEC2", quantity=4, price=2.0).is_success
    op = site.user("olga", role="operator")
    asked = op.post("/api/operator/clear", json={}).json()
    assert asked == {"requested": True, "frame": 10, "mechanism": "vcg"}
    site.terminal.interval_override = 7  # ... so make 10 an ordinary frame
    assert stage.prepare(3, 9, base, topo).market is None
    stage.wait_idle()
    out = stage.prepare(4, 10, base, topo)
    assert out.market is not None and out.market.traded == 4
    assert out.record["cleared_frame"] == 10
    assert [r.payload["action"] for r in read_records(site.journal.path)
            if r.kind == "command"] == ["clear"]  # fmt: skip
    stage.close()


def test_a_clearing_whose_frame_never_ran_runs_again(site: Site) -> None:
    stage, first = cleared_at(site, 10)
    base, topo = site.scenario, site.topology
    # frame 10 was skipped (a commit failed): no settlement ever comes for it
    assert stage.prepare(2, 11, base, topo).market is None  # 10 may still be running
    again = stage.prepare(3, 12, base, topo)  # 10 has ended: its trades run in 12
    assert again.market == first.market and again.record["clearing"] == first.record["clearing"]
    (c,) = clearings.last_clearings(site.store)
    assert (c.frame, c.exec_frame, c.status) == (10, 12, "pending")  # cleared once
    stage.close()


def test_a_restart_settles_a_frame_that_ran_from_the_journal_and_reruns_one_that_did_not(
    tmp_path: Path, site: Site
) -> None:
    t = traders(site)
    assert offer(t["ann"], quantity=20, price=1.0, green=True).is_success
    assert bid(t["bob"], quantity=10, price=3.0).is_success
    assert offer(t["cat"], terminal="PV2", quantity=5, price=0.5).is_success
    assert bid(t["dan"], terminal="MEC2", quantity=5, price=2.5).is_success
    before = BookStage(site.terminal)
    before.prepare(0, 19, site.scenario, site.topology)
    before.wait_idle()
    one = before.prepare(1, 20, site.scenario, site.topology)
    assert one.market is not None
    cid = int(one.record["clearing"])
    pairs = {(s.seller, s.buyer): s.packets for s in one.market.trades}
    ann_o, bob_o = (o["id"] for o in (t["ann"].get("/api/orders").json()[0],
                                      t["bob"].get("/api/orders").json()[0]))  # fmt: skip
    cat_o, dan_o = (o["id"] for o in (t["cat"].get("/api/orders").json()[0],
                                      t["dan"].get("/api/orders").json()[0]))  # fmt: skip
    # each buyer from the seller on its own router (the least loss); on the bench the
    # orders go by the clearing's number and their rank among its sellers or buyers
    c = f"c{cid}"
    assert pairs == {(f"{c}s1", f"{c}b1"): 10, (f"{c}s2", f"{c}b2"): 5}
    assert parties(site, cid) == {f"{c}s1": ann_o, f"{c}b1": bob_o, f"{c}s2": cat_o,
                                  f"{c}b2": dan_o}  # fmt: skip
    # the process dies after frame 20 ran and its settlement was journaled, before the
    # store heard of it: the journal record is what the restart finds
    journal_path = tmp_path / "out-journal.sqlite"
    settlement = {
        "frame": 20,
        "transfers": [
            {"transfer": "x", "seller": s.seller, "buyer": s.buyer,
             "delivered_packets": float(s.packets) if s.seller == f"{c}s1" else 2.0,
             "delivered_j": s.packets * ARRIVES_J if s.seller == f"{c}s1" else 4.5}
            for s in one.market.trades
        ],
        "participants": [
            {"id": p.id, "allocated": p.packets, "delivered_packets": float(p.packets),
             "paid": p.payment, "compensation": 0.0}
            for p in one.market.participants if p.packets
        ],
    }  # fmt: skip
    with Journal.open(journal_path, KEY, genesis={"scenario": "t"}) as j:
        j.append("settlement", settlement, frame=20)
    after = BookStage(site.terminal, journal_path=journal_path)
    assert after.prepare(0, 40, site.scenario, site.topology).market is None  # not rerun
    c = clearings.get(site.store, cid)
    assert (c.status, c.settled_frame) == ("settled", 20)
    got = {r["order_id"]: r for r in t["bob"].get("/api/deliveries").json()}
    assert got[bob_o]["delivered_j"] == pytest.approx(10 * ARRIVES_J)
    (cert,) = t["bob"].get("/api/certificates").json()  # ann's offer was green
    assert cert["joules"] == pytest.approx(10 * ARRIVES_J) and cert["origin"] == "PV1"
    assert t["dan"].get("/api/certificates").json() == []  # cat's was not
    # dan's trade delivered 2 of its 5 packets, 4.5 J (what the journal says)
    (dan,) = t["dan"].get("/api/trades").json()
    assert (dan["packets"], dan["delivered_packets"], dan["delivered_j"]) == (5, 2.0, 4.5)

    # another clearing, given to frame 41, which never ran: the next run runs it again
    assert bid(t["bob"], quantity=3, price=3.0).is_success
    site.terminal.request_clearing()
    after.prepare(1, 41, site.scenario, site.topology)
    after.wait_idle()
    two = after.prepare(2, 42, site.scenario, site.topology)
    assert two.market is not None
    restarted = BookStage(site.terminal, journal_path=journal_path)
    rerun = restarted.prepare(0, 60, site.scenario, site.topology)
    assert rerun.market == two.market
    assert clearings.get(site.store, int(two.record["clearing"])).exec_frame == 60
    for s in (before, after, restarted):
        s.close()


def test_a_clearing_the_bench_can_no_longer_run_goes_back_to_the_book(site: Site) -> None:
    before, _ = cleared_at(site, 2)
    before.close()
    ann = site.client()
    bob = site.client()
    assert login(ann, "ann").is_success and login(bob, "bob").is_success
    # restarted on a bench whose PV1 is now a 24 V terminal: 48 V packets cannot leave it
    data = site.scenario.model_dump(mode="python")
    next(x for x in data["terminals"] if x["id"] == "PV1")["voltage_v"] = 24.0
    changed = parse_dict(data)[0]
    site.terminal.scenario = changed
    restarted = BookStage(site.terminal)
    out = restarted.prepare(0, 9, changed, site.topology)
    restarted.close()
    assert out.market is None
    (void,) = site.store.rows("SELECT status, note FROM clearings")
    assert void["status"] == "void" and "cannot run on this bench" in void["note"]
    assert [o["remaining"] for o in ann.get("/api/orders").json()] == [20]
    assert [o["status"] for o in bob.get("/api/orders").json()] == ["open"]


def test_trades_are_delivered_on_the_twin_and_certified_as_delivered(tmp_path: Path) -> None:
    """Two green offers meet two bids. PV1's gate is stuck open on the twin, so its trade
    delivers nothing: its buyer holds no certificate, though it traded green packets;
    PV2's delivers in full and is certified joule for joule, as metered."""
    scenario = bench(interval=1)
    site = Site(tmp_path, scenario)
    try:
        t = traders(site)
        assert offer(t["ann"], quantity=6, price=1.0, green=True, valid_frames=50).is_success
        assert bid(t["bob"], quantity=6, price=3.0, valid_frames=50).is_success
        assert offer(t["cat"], terminal="PV2", quantity=5, price=1.0, green=True).is_success
        assert bid(t["dan"], terminal="MEC2", quantity=5, price=3.0, valid_frames=50).is_success
        site.terminal.next_frame = 0  # the run's frames start at 1: the orders are valid
        stage = BookStage(site.terminal, journal_path=tmp_path / "out" / "journal.sqlite")
        # frame 1 clears for frame 2 in the stage's thread; 2 runs the trades, 3 and 4 are
        # margin for a slow machine (the clearing may miss frame 2's planning)
        cfg = config(tmp_path, scenario, frames=4, stage=stage, faults=("stuck-open=R1:0",))
        try:
            result = asyncio.run(Session(cfg).run())
        finally:
            stage.close()
        assert result.verified.ok
        (c,) = clearings.last_clearings(site.store)
        assert c.status == "settled" and c.volume == 11
        settled = journal_settlements(result.journal)[c.settled_frame]  # type: ignore[index]
        by_buyer: dict[str, float] = {}
        for tr in settled["transfers"]:
            if tr["buyer"]:
                by_buyer[tr["buyer"]] = by_buyer.get(tr["buyer"], 0.0) + tr["delivered_j"]
        name = {oid: party for party, oid in parties(site, c.id).items()}
        bob_o = name[t["bob"].get("/api/orders").json()[0]["id"]]
        dan_o = name[t["dan"].get("/api/orders").json()[0]["id"]]
        assert by_buyer[bob_o] == 0.0  # PV1 never conducted
        # PV2 -> MEC2, both on R3: 0.0049 * 100 * (0.02 + 0.03) lost per packet
        assert by_buyer[dan_o] == pytest.approx(5 * ARRIVES_J, rel=0.02)

        # bob's 6 packets never arrived: they do not return to the book; the seller
        # compensates him at his bid's price per packet short (6 * 3.0), he pays nothing
        (bob_order,) = t["bob"].get("/api/orders").json()
        assert (bob_order["status"], bob_order["remaining"], bob_order["traded"]) == (
            "filled", 0, 6,
        )  # fmt: skip
        assert bob_order["undelivered"] == pytest.approx(6.0)
        assert bob_order["compensation"] == pytest.approx(18.0)
        assert bob_order["paid"] == pytest.approx(0.0)
        assert t["bob"].get("/api/book").json()["bids"] == []
        assert t["bob"].get("/api/certificates").json() == []
        (cert,) = t["dan"].get("/api/certificates").json()
        assert cert["joules"] == pytest.approx(by_buyer[dan_o])
        # never more than the green energy delivered, in all
        issued = site.store.rows("SELECT SUM(joules) AS j FROM certificates")[0]["j"]
        assert issued <= sum(by_buyer.values()) + 1e-9
        (mine,) = t["dan"].get("/api/deliveries").json()
        assert mine["delivered_packets"] == pytest.approx(5.0, abs=0.05)
        # the issue is in the signed web journal, keyed by the trade
        issues = [r.payload for r in read_records(site.journal.path) if r.kind == "stage"]
        assert [len(i["issued"]) for i in issues] == [1]
        assert issues[0]["issued"][0]["joules"] == pytest.approx(cert["joules"])

        # retiring: once, by its holder, journaled
        assert t["bob"].post(f"/api/certificates/{cert['id']}/retire", json={}).status_code == 400
        r = t["dan"].post(f"/api/certificates/{cert['id']}/retire", json={})
        assert r.status_code == 200 and r.json()["joules"] == pytest.approx(cert["joules"])
        again = t["dan"].post(f"/api/certificates/{cert['id']}/retire", json={})
        assert again.status_code == 400 and "no unretired certificate" in again.json()["error"]
        assert t["dan"].get("/api/certificates").json()[0]["retired"] is True
        retired = [r.payload for r in read_records(site.journal.path)
                   if r.kind == "command" and r.payload["action"] == "retire"]  # fmt: skip
        assert [(x["by"], x["certificate"]) for x in retired] == [("dan", cert["id"])]
    finally:
        site.close()


def test_after_a_restart_with_clearings_waiting_new_ones_run_on_time(tmp_path: Path) -> None:
    """Killed with one clearing given to a frame and the next one stored, at interval 1,
    while the book keeps crossing (more than a frame can carry): the restart runs the two
    waiting first, one a frame, and makes no new clearing meanwhile, so from then on each
    clearing runs in the frame it cleared for, not behind the backlog for good."""
    site = Site(tmp_path, bench(interval=1))
    try:
        t = traders(site)
        # PV1 -> MEC1: one packet per slot, 200 a frame; 2000 keep the book crossing
        assert offer(t["ann"], quantity=2000, price=1.0, valid_frames=10_000).is_success
        assert bid(t["bob"], quantity=2000, price=3.0, valid_frames=10_000).is_success
        before = BookStage(site.terminal)
        before.prepare(0, 9, site.scenario, site.topology)
        before.wait_idle()
        assert before.prepare(1, 10, site.scenario, site.topology).market is not None
        before.wait_idle()  # the clearing for 11 is stored too: then the process dies
        before.close()
        assert [c.frame for c in clearings.queued(site.store)] == [11]
        after = BookStage(site.terminal)
        ran = {}
        for index, frame in enumerate(range(20, 26)):
            out = after.prepare(index, frame, site.scenario, site.topology)
            after.wait_idle()
            if out.market is not None:
                ran[frame] = out.record["cleared_frame"]
                after.settled(out, FrameSettlement(frame, (), (), ()))
        after.close()
        assert ran == {20: 10, 21: 11, 22: 22, 23: 23, 24: 24, 25: 25}
    finally:
        site.close()
