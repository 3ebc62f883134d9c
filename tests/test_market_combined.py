"""combined-offer against its text: hand-worked cases, an independent greedy over every
simple route, and that no rule ever puts more on a line, SOP or access than it carries."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from bench import bundled_path, load_with_topology, parse_dict
from scheduler.market import MECHANISMS, clear_market
from tests.market_cases import oracle_combined_offer, triangle, two_routers


def bigger(data, seed):
    """2-6 packets per quote against 2-3 slots; half the cases with an SOP too weak for
    the 480 W packet."""
    for q in data["offers"] + data["bids"]:
        q["packets"] *= 2
    data["sops"][0]["max_power_w"] = 400.0 if seed % 2 else 800.0
    return data


CASES = [bigger(triangle(random.Random(300 + s), n_quotes=4 + s % 3), s) for s in range(16)]
BUNDLED = [load_with_topology(bundled_path(n)) for n in ("bench-4-market", "microgrids-sop")]


def clear(data, mechanism="combined-offer", **kw):
    return clear_market(*parse_dict(data), mechanism, **kw)


def test_the_highest_combined_offer_goes_first():
    """S (1 packet at 0.10, router X), B1 bids 0.30 behind line L (transport 0.1666, see
    test_market_priority), B2 bids 0.20 at X (transport 0.0196). Combined offers:
    B1 0.30 - 0.10 - 0.1666 = 0.0334, B2 0.20 - 0.10 - 0.0196 = 0.0804: B2 first, and
    it splits 0.0804 evenly."""
    data = two_routers([("S", "X", 1, 0.10)], [("B1", "Y", 1, 0.30), ("B2", "X", 1, 0.20)])
    r = clear(data)
    (t,) = r.trades
    assert (t.seller, t.buyer, t.route) == ("S", "B2", ("TS", "TB2"))
    assert t.buyer_price == pytest.approx(0.20 - 0.0402, abs=1e-12)
    assert t.seller_price == pytest.approx(0.10 + 0.0402, abs=1e-12)
    assert r.welfare == pytest.approx(0.0804, abs=1e-12) and r.welfare_gap == 0.0


def test_a_trade_stops_at_the_room_left_on_the_line():
    """3 packets would cross L in a frame of 2 slots: 2 cross, the third goes nowhere."""
    r = clear(two_routers([("S", "X", 3, 0.10)], [("B", "Y", 3, 0.60)], slots=2))
    assert [(t.route, t.packets) for t in r.trades] == [(("TS", "L", "TB"), 2)]


def test_sop_losses_are_charged_and_a_weak_sop_is_never_used():
    """Routers X and Y joined by line L and SOP P (loss 5 %): a packet loses
    0.05 * 48 * 10 * 0.0049 = 0.1176 J in P against 0.147 J on L, plus 0.0098 J on each
    access, at 1 per joule: transport 0.1372 over P, 0.1666 over L. Two slots: each
    access, L and P carry 2 packets. Combined offers, highest first: S1-B1 over P
    0.60 - 0.10 - 0.1372 = 0.3628 (2 packets: S1, B1 and P are full), then everything
    with S1, B1 or P is skipped until S2-B2 over L: 0.50 - 0.12 - 0.1666 = 0.2134.
    An SOP rated below the packet's 480 W is never used."""
    data = two_routers(
        [("S1", "X", 2, 0.10), ("S2", "X", 2, 0.12)], [("B1", "Y", 2, 0.60), ("B2", "Y", 2, 0.50)],
        slots=2,
    )  # fmt: skip
    data["routers"][0]["ports"] += 1
    data["routers"][1]["ports"] += 1
    data["sops"] = [{"id": "P", "a": "X:3", "b": "Y:3", "max_power_w": 500.0,
                     "loss_coeff": 0.05}]  # fmt: skip
    r = clear(data)
    assert [(t.seller, t.buyer, t.route, t.packets) for t in r.trades] == [
        ("S1", "B1", ("TS1", "P", "TB1"), 2),
        ("S2", "B2", ("TS2", "L", "TB2"), 2),
    ]
    assert r.trades[0].loss_j == pytest.approx(0.1176 + 0.0196, abs=1e-12)
    assert r.trades[0].loss_cost == pytest.approx(0.1372, abs=1e-12)
    assert r.welfare == pytest.approx(2 * 0.3628 + 2 * 0.2134, abs=1e-12)
    assert r.budget == pytest.approx(0.0, abs=1e-12)
    data["sops"][0]["max_power_w"] = 479.0
    assert all("P" not in t.route for t in clear(data).trades)


@pytest.mark.parametrize("data", CASES, ids=[f"triangle{i}" for i in range(len(CASES))])
def test_the_greedy_matches_the_rule_written_out(data):
    r = clear(data)
    expected = oracle_combined_offer(data)
    assert [(t.seller, t.buyer, t.route, t.packets) for t in r.trades] == [e[:4] for e in expected]
    for t, e in zip(r.trades, expected, strict=True):
        assert (t.buyer_price, t.seller_price) == pytest.approx(e[4:], abs=1e-12)
        assert t.gain >= 0.0


def within_limits(scenario, topology, result) -> None:
    """Every access, line and SOP carries at most one packet per slot (both directions
    together); each carries the packet within its current or power limit; the energy
    into an SOP (before its loss) stays within its power over the frame."""
    use = Counter()
    for t in result.trades:
        for rid in t.route:
            use[rid] += t.packets
    p = result.packet
    for rid, n in use.items():
        res = topology.resources[rid]
        assert n <= scenario.frame.slots, (rid, n)
        assert p.current_a <= res.max_current_a
        assert p.voltage_v * p.current_a <= res.max_power_w
        if res.kind == "sop":
            assert n * p.energy_j <= res.max_power_w * scenario.frame.length_s


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_no_rule_exceeds_a_line_sop_or_access(mechanism):
    for data in CASES:
        scenario, topology = parse_dict(data)
        within_limits(scenario, topology, clear_market(scenario, topology, mechanism))
    for scenario, topology in BUNDLED:
        result = clear_market(scenario, topology, mechanism)
        within_limits(scenario, topology, result)


def test_the_cases_bind():
    """Guard: the room binds somewhere, and the weak SOP would have been used."""
    full = 0
    for data in CASES:
        scenario, _ = parse_dict(data)
        use = Counter(r for t in clear(data).trades for r in t.route for _ in range(t.packets))
        full += any(n == scenario.frame.slots for n in use.values())
    assert full >= 4
    strong = [bigger(triangle(random.Random(300 + s), n_quotes=4 + s % 3), 0) for s in range(16)]
    assert any("CA" in t.route for d in strong for t in clear(d).trades)


def test_microgrids_sop_fills_an_sop():
    """On the bundled SOP bench the greedy fills SOP_BC to its 100 slots."""
    scenario, topology = BUNDLED[1]
    r = clear_market(scenario, topology, "combined-offer")
    use = Counter()
    for t in r.trades:
        for rid in t.route:
            use[rid] += t.packets
    assert use["SOP_BC"] == scenario.frame.slots == 100
