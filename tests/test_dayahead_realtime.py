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
