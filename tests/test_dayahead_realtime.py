"""Real-time deviations between VPPs by VCG, against a brute-force oracle."""

from __future__ import annotations

import itertools

import pytest

from scheduler.dayahead.realtime import Quote, clear_deviations


def brute_welfare(quotes: list[Quote]) -> float:
    """Best welfare over every integer allocation (sold = bought)."""
    best = 0.0
    ranges = [range(abs(q.units) + 1) for q in quotes]
    for alloc in itertools.product(*ranges):
        sold = sum(a for a, q in zip(alloc, quotes, strict=True) if q.units > 0)
        bought = sum(a for a, q in zip(alloc, quotes, strict=True) if q.units < 0)
        if sold != bought:
            continue
        value = sum(
            (q.price if q.units < 0 else -q.price) * a for a, q in zip(alloc, quotes, strict=True)
        )
        best = max(best, value)
    return best


CASES = [
    # one long VPP, two short ones with different values: the dearer is served first
    [Quote("A", 5, 0.05), Quote("B", -3, 0.30), Quote("C", -4, 0.20)],
    # two long, one short
    [Quote("A", 4, 0.02), Quote("B", 3, 0.06), Quote("C", -5, 0.25)],
    # nothing can trade profitably
    [Quote("A", 2, 0.40), Quote("B", -2, 0.30), Quote("C", 0, 0.0)],
]


@pytest.mark.parametrize("quotes", CASES)
def test_vcg_matches_brute_force(quotes: list[Quote]) -> None:
    r = clear_deviations(tuple(quotes))
    total = brute_welfare(quotes)
    assert r.welfare == pytest.approx(total, abs=1e-9)
    live = [q for q in quotes if q.units != 0]
    for k, q in enumerate(r.quotes):
        others = [o for o in live if o is not q]
        # Clarke pivot: utility = what the VPP adds to welfare
        assert r.utility[k] == pytest.approx(total - brute_welfare(others), abs=1e-9)
        gross = (q.price if q.units < 0 else -q.price) * r.traded[k]
        assert r.payment[k] == pytest.approx(gross - r.utility[k], abs=1e-9)
    assert r.elapsed_s >= 0


def test_truthful_misreport_does_not_pay() -> None:
    # B's true value 0.30: quoting anything else never raises its utility at true value
    true = CASES[0]
    honest = clear_deviations(tuple(true)).utility[1]
    for lie in (0.1, 0.19, 0.21, 0.5, 1.0):
        quotes = (true[0], Quote("B", -3, lie), true[2])
        r = clear_deviations(quotes)
        utility = 0.30 * r.traded[1] - r.payment[1]
        assert utility <= honest + 1e-9


def test_cli_realtime_is_seeded_and_adds_up(tmp_path, capsys) -> None:
    import json

    from router.cli import main

    argv = ["dayahead", "bench/data/vpp-30.toml", "--iterations", "5", "--json", "--realtime"]
    assert main([*argv, "--seed", "4"]) == 0
    rt = json.loads(capsys.readouterr().out)["realtime"]
    assert main([*argv, "--seed", "4"]) == 0
    again = json.loads(capsys.readouterr().out)["realtime"]
    assert [p["quotes"] for p in rt["periods"]] == [p["quotes"] for p in again["periods"]]
    assert len(rt["periods"]) == 24 and set(rt["payments"]) == {"vpp1", "vpp2", "vpp3"}
    for name, paid in rt["payments"].items():
        total = sum(q["payment"] for p in rt["periods"] for q in p["quotes"] if q["vpp"] == name)
        assert paid == pytest.approx(total, abs=1e-9)
    for p in rt["periods"]:
        sold = sum(q["traded"] for q in p["quotes"] if q["units"] > 0)
        bought = sum(q["traded"] for q in p["quotes"] if q["units"] < 0)
        assert sold == bought
        assert p["welfare"] >= 0.0  # not trading is always possible
    assert "within_limit" in rt and rt["time_limit_s"] == 1.0


def test_time_limit_is_enforced_with_the_grid_as_fallback(capsys) -> None:
    import json

    from router.cli import main

    argv = ["dayahead", "bench/data/vpp-30.toml", "--iterations", "5", "--realtime"]
    # no clearing takes less than a nanosecond: every period falls back to the grid
    assert main([*argv, "--json", "--time-limit", "1e-9"]) == 0
    rt = json.loads(capsys.readouterr().out)["realtime"]
    assert rt["within_limit"] is False and rt["over_limit_periods"] == list(range(24))
    for p in rt["periods"]:
        assert p["settled"] == "grid" and p["welfare"] == 0.0
        assert all(q["traded"] == 0 and q["payment"] == 0.0 for q in p["quotes"])
    assert set(rt["payments"].values()) == {0.0}
    assert main([*argv, "--time-limit", "1e-9"]) == 0
    out = capsys.readouterr().out
    assert "24 periods over the limit, settled with the grid instead" in out


def test_errors_are_drawn_around_the_day_ahead_schedule() -> None:
    import numpy as np

    from bench.dayahead import parse_dayahead
    from router.cli.realtime_report import scheduled_surplus
    from scheduler.dayahead.realtime import draw_quotes

    day = parse_dayahead(
        {
            "dayahead": {"periods": 1, "period_h": 1.0, "grid_buy_price": [0.3],
                         "grid_sell_price": [0.1], "p2p_fee": 0.0},
            "prosumers": [
                {"id": "a", "load_kw": [1.0], "pv_kw": [4.0], "grid_kw": 9},
                {"id": "b", "load_kw": [2.0], "pv_kw": [0.0], "grid_kw": 9},
                {"id": "c", "load_kw": [1.0], "pv_kw": [0.0], "grid_kw": 9},
            ],
        }
    )  # fmt: skip
    # a charges 2 kW of its 3 kW surplus, c discharges 0.5: the schedule, not pv - load
    doc = {"prosumers": {
        "a": {"c": [2.0], "d": [0.0]}, "b": {"c": [0.0], "d": [0.0]},
        "c": {"c": [0.0], "d": [0.5]}}}  # fmt: skip
    surplus = scheduled_surplus(day, doc, [np.array([0, 1]), np.array([2])])
    assert surplus.tolist() == [[4 - 1 - 2 - 2], [-1 + 0.5]]
    # the error's spread: 10 % of the scheduled surplus, at least 0.5 kW
    big = [draw_quotes(["x", "y"], np.array([200.0, 1.0]), 0.3, 0.1, s) for s in range(400)]
    x = np.array([q[0].units for q in big]) * 0.1
    y = np.array([q[1].units for q in big]) * 0.1
    assert abs(x.mean()) < 2.0 and 17.0 < x.std() < 23.0
    assert 0.4 < y.std() < 0.6
