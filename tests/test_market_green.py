"""Green matching: green offers first to the bids that seek green, green_only bids never
take other energy, premiums are paid for green energy, and green joules are what the
physics says reaches the buyer, never more."""

from __future__ import annotations

import math
import random

import pytest

from bench import bundled_path, load_with_topology, parse_dict
from scheduler.market import MECHANISMS, certifiable_green_j, clear_market
from scheduler.market.book import Book
from scheduler.market.green import run_passes
from scheduler.market.mechanisms import optimum_pass
from tests.market_cases import _loss_j, oracle_welfare, triangle, two_routers

MG = load_with_topology(bundled_path("microgrids-sop"))


def clear(data, mechanism="price-priority", **kw):
    return clear_market(*parse_dict(data), mechanism, **kw)


def greened(seed: int):
    """A triangle market where some offers are green and some bids seek green."""
    rng = random.Random(400 + seed)
    data = triangle(rng, n_quotes=5 + seed % 2)
    for q in data["offers"]:
        q["green"] = rng.random() < 0.5
    for q in data["bids"]:
        kind = rng.choice(["plain", "premium", "only"])
        if kind == "premium":
            q["green_premium"] = rng.randint(1, 5) / 50
        elif kind == "only":
            q["green_only"] = True
    return data


CASES = [greened(s) for s in range(16)]


def book_of_four(**kw):
    """One router. BROWN 2 @ 0.05 (not green), SUN 2 @ 0.10 (green); PLAIN bids 2 @ 0.15,
    ECO 2 @ 0.20 with a premium of 0.05 per green packet. No loss price."""
    offers = [("BROWN", "X", 2, 0.05), ("SUN", "X", 2, 0.10)]
    data = two_routers(offers, [("PLAIN", "X", 2, 0.15), ("ECO", "X", 2, 0.20)], loss_price=0.0)
    data["offers"][1]["green"] = True
    data["bids"][1]["green_premium"] = 0.05
    return data


def test_green_offers_go_first_to_green_bids():
    """Green pass: SUN (0.10) meets ECO at 0.20 + 0.05 = 0.25, 2 packets at the midpoint
    0.175 (premium included). Open pass: BROWN (0.05) meets PLAIN (0.15), 2 at 0.10.
    Welfare 2 * 0.15 + 2 * 0.10 = 0.50."""
    r = clear(book_of_four())
    rows = [(t.seller, t.buyer, t.packets, t.green, t.buyer_price) for t in r.trades]
    assert rows == [("SUN", "ECO", 2, True, pytest.approx(0.175)),
                    ("BROWN", "PLAIN", 2, False, pytest.approx(0.10))]  # fmt: skip
    assert r.welfare == pytest.approx(0.50, abs=1e-12)
    assert r.settlement("ECO").green_packets == 2 and r.settlement("PLAIN").green_packets == 0


def test_without_the_green_pass_price_alone_decides():
    """Price-priority on the plain book: ECO (0.20, the higher bid) takes BROWN (the
    lower ask) at 0.125, PLAIN takes SUN's green energy at 0.125 and pays no premium.
    Welfare 2 * 0.15 + 2 * 0.05 = 0.40."""
    r = clear(book_of_four(), green=False)
    rows = [(t.seller, t.buyer, t.packets, t.green, t.buyer_price) for t in r.trades]
    assert rows == [("BROWN", "ECO", 2, False, pytest.approx(0.125)),
                    ("SUN", "PLAIN", 2, True, pytest.approx(0.125))]  # fmt: skip
    assert r.welfare == pytest.approx(0.40, abs=1e-12) and not r.green


def test_a_premium_is_paid_for_green_energy_outside_the_green_pass():
    """Routers X and Y with a line too weak for the packet (5 A < 10 A): nothing
    crosses. Green G0 (2 @ 0.05) and bid Z (2 @ 0.07, premium 0.01) at X; green G1
    (1 @ 0.20) and bid W (1 @ 0.21, premium 0.01) at Y. Max-volume's green pass: at
    0.05 and 0.08 two packets (G0 -> Z), at 0.20 and 0.22 one (G1 -> W): G0 -> Z at
    (0.05 + 0.08) / 2. The open pass: G1 -> W at (0.20 + 0.21) / 2 = 0.205, plus W's
    premium 0.01 for green energy, paid to G1."""
    data = two_routers([("G0", "X", 2, 0.05), ("G1", "Y", 1, 0.20)],
                       [("Z", "X", 2, 0.07), ("W", "Y", 1, 0.21)], loss_price=0.0)  # fmt: skip
    data["lines"][0]["max_current_a"] = 5.0
    for q in data["offers"]:
        q["green"] = True
    for q in data["bids"]:
        q["green_premium"] = 0.01
    r = clear(data, "max-volume")
    rows = {(t.seller, t.buyer): (t.packets, t.buyer_price, t.seller_price) for t in r.trades}
    assert rows == {("G0", "Z"): (2, pytest.approx(0.065), pytest.approx(0.065)),
                    ("G1", "W"): (1, pytest.approx(0.215), pytest.approx(0.215))}  # fmt: skip
    assert r.welfare == pytest.approx(2 * 0.03 + 0.02, abs=1e-12)
    assert r.settlement("W").payment == pytest.approx(0.215, abs=1e-15)
    vcg = clear(data, "vcg")  # both pairs trade in VCG's green pass: the premiums are in
    assert vcg.welfare == pytest.approx(2 * 0.03 + 0.02, abs=1e-12)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_green_only_bids_never_take_other_energy(mechanism):
    scenario, topology = MG
    cases = [parse_dict(d) for d in CASES] + [MG]
    took = 0
    for green in (True, False):
        for scenario, topology in cases:
            only = {q.id for q in scenario.bids if q.green_only}
            green_offers = {q.id for q in scenario.offers if q.green}
            r = clear_market(scenario, topology, mechanism, green=green)
            for t in r.trades:
                if t.buyer in only:
                    assert t.seller in green_offers and t.green, (mechanism, t)
                    took += 1
    assert took >= 3  # guard: green_only bids do trade


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_green_joules_are_the_physics_of_green_trades(mechanism):
    """Per trade: packets * (E - the route's losses) when its seller is green, else 0,
    from docs/design.md's loss model (tests.market_cases); certificates for a delivery
    never exceed what was metered nor the trade's green energy."""
    for data in CASES:
        r = clear(data, mechanism)
        green_offers = {q["id"] for q in data["offers"] if q.get("green")}
        energy = 48.0 * r.packet.current_a * (5.0 / 1000 - 100.0 / 1e6)
        for t in r.trades:
            expect = t.packets * (energy - _loss_j(data, list(t.route), 48.0, r.packet.current_a))
            assert t.sink_j == pytest.approx(expect, rel=1e-12)
            assert t.green == (t.seller in green_offers)
            assert t.green_j == (t.sink_j if t.green else 0.0)
            for metered in (0.0, 0.5 * t.sink_j, t.sink_j, 1.01 * t.sink_j):
                got = certifiable_green_j(t, metered)
                assert 0.0 <= got <= min(metered, t.green_j)
                assert got == (min(metered, t.green_j) if t.green else 0.0)
        assert r.green_j == pytest.approx(math.fsum(t.green_j for t in r.trades if t.green))


@pytest.mark.parametrize("data", CASES[:8], ids=[f"triangle{i}" for i in range(8)])
def test_the_green_pass_is_the_optimum_of_the_green_book(data):
    """VCG's green pass trades the best welfare of the green offers and the green-seeking
    bids at price + premium, by brute force."""
    green_book = {
        **data,
        "offers": [q for q in data["offers"] if q.get("green")],
        "bids": [
            {**q, "price": q["price"] + q.get("green_premium", 0.0)}
            for q in data["bids"]
            if q.get("green_only") or q.get("green_premium", 0.0) > 0
        ],
    }
    book = Book.of(*parse_dict(data))
    passes = run_passes(book, optimum_pass, True)
    if not (green_book["offers"] and green_book["bids"]):
        assert [p.name for p, _ in passes] == ["open"]
        return
    first, outcome = passes[0]
    assert first.name == "green"
    price = {p.id: p.price for p in first.participants}
    welfare = math.fsum(t.packets * (price[t.buyer] - price[t.seller] - t.loss_cost)
                        for t in outcome.trades)  # fmt: skip
    assert welfare == pytest.approx(oracle_welfare(green_book), abs=1e-9)


def test_the_green_pass_changes_the_bundled_sop_bench():
    """microgrids-sop: HOSPITAL is green_only, DATACTR pays a premium. With the green
    pass HOSPITAL trades and DATACTR's energy is all green; without it HOSPITAL never
    trades."""
    on = clear_market(*MG, "vcg")
    off = clear_market(*MG, "vcg", green=False)
    assert on.settlement("HOSPITAL").packets > 0 == off.settlement("HOSPITAL").packets
    dc = on.settlement("DATACTR")
    assert dc.packets > 0 and dc.green_packets == dc.packets
    assert on.welfare != off.welfare
