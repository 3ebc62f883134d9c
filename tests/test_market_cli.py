"""``ppr market`` and the market in ``ppr plan``: output, bad quotes, end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import bundled_path, load_scenario, load_with_topology
from router.cli import main
from scheduler import verify_plan
from scheduler.market import MECHANISMS, clear_market, with_market_transfers

MARKET = bundled_path("bench-4-market")
TEXT = MARKET.read_text()


def ppr(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_default_is_the_bundled_market_as_a_table(capsys):
    code, out, err = ppr(capsys, "market")
    assert code == 0 and err == ""
    assert out.startswith("bench-4-market: vcg market over 200 slots, packets of 48 V x 10 A")
    for pid in ("S1", "S2", "S3", "S4", "B1", "B2", "B3", "B4"):
        assert f"\n  {pid} " in out
    assert "operator budget -" in out and "(deficit)" in out


def test_json_is_the_result(capsys):
    code, out, _ = ppr(capsys, "market", str(MARKET), "--mechanism", "nash", "--json")
    assert code == 0
    doc = json.loads(out)
    expected = clear_market(*load_with_topology(MARKET), "nash").to_json()
    doc.pop("solve_ms"), expected.pop("solve_ms")
    # the transfers ppr plan would plan: exactly those the market stage adds
    scenario, topology = load_with_topology(MARKET)
    planned = with_market_transfers(scenario, clear_market(scenario, topology, "nash"))
    added = [t.model_dump(exclude_none=True) for t in planned.transfers[len(scenario.transfers) :]]
    assert doc.pop("transfers") == json.loads(json.dumps(added))
    assert doc == expected
    assert doc["budget"] == pytest.approx(0.0, abs=1e-12)


def test_json_on_stdout_is_all_a_pipe_reads():
    """What `ppr market --json | jq` sees: one JSON document, no solver banner (HiGHS
    writes its own to the process's stdout, which capsys does not catch)."""
    result = subprocess.run(
        [sys.executable, "-m", "router.cli", "market", "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["mechanism"] == "vcg"


def test_nash_weights_from_the_command_line(capsys):
    code, out, _ = ppr(capsys, "market", "--mechanism", "nash", "--weight", "B2=2", "--json")
    doc = json.loads(out)
    utility = {p["id"]: p["utility"] for p in doc["participants"]}
    assert code == 0 and utility["B2"] == pytest.approx(2 * utility["B1"])


BAD_FILES = [
    ("negative price", ("price = 0.08", "price = -0.08"), "offers[S1].price: must be >= 0"),
    ("NaN price", ("price = 0.08", "price = nan"), "offers[S1].price: must be a finite number"),
    # near the float range, payments would come out inf and NaN
    ("huge price", ("price = 0.08", "price = 1e308"), "offers[S1].price: must be <= 1000000"),
    ("bid on a source", ('terminal = "MEC1"', 'terminal = "PV1"'),
     "bids[B1].terminal: terminal 'PV1' is a source and cannot buy"),
    ("offer on a load", ('terminal = "PV2"', 'terminal = "MEC2"'),
     "offers[S3].terminal: terminal 'MEC2' is a load and cannot sell"),
    ("unknown terminal", ('terminal = "MEC3"', 'terminal = "MEC9"'),
     "bids[B3].terminal: unknown terminal 'MEC9'"),
    ("fractional packets", ("packets = 150", "packets = 150.5"),
     "offers[S1].packets: must be a whole"),
    ("terminal on both sides",
     ("[[bids]]", '[[bids]]\nid = "B0"\nterminal = "BAT1"\npackets = 5\nprice = 0.3\n\n[[bids]]'),
     "bids[B0].terminal: terminal 'BAT1' already quotes the other side"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "edit", "words"), BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_bad_quotes_are_one_line_and_exit_2(capsys, tmp_path: Path, what, edit, words):
    path = tmp_path / "bad.toml"
    path.write_text(TEXT.replace(*edit, 1))
    code, out, err = ppr(capsys, "market", str(path))
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: ") and words in err


BAD_ARGS = [
    (["--weight", "B2=2"], "bargaining weights apply to --mechanism nash only"),
    (["--mechanism", "nash", "--weight", "B2=heavy"], "--weight B2=heavy: expected ID=W"),
    (["--mechanism", "nash", "--weight", "B2=-1"], "--weight B2=-1: expected ID=W"),
    (["--mechanism", "nash", "--weight", "nobody=2"], "no offer or bid 'nobody'"),
    ([str(bundled_path("bench-4"))], "no [[offers]] or [[bids]] to match"),
]


@pytest.mark.parametrize(("argv", "words"), BAD_ARGS, ids=[" ".join(a) for a, _ in BAD_ARGS])
def test_bad_options_are_one_line_and_exit_2(capsys, argv, words):
    code, out, err = ppr(capsys, "market", *argv)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and words in err, err


def test_exit_status_of_the_real_command(tmp_path: Path):
    path = tmp_path / "bad.toml"
    path.write_text(TEXT.replace('terminal = "MEC1"', 'terminal = "PV1"', 1))
    result = subprocess.run(
        [sys.executable, "-m", "router.cli", "market", str(path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(f"error: {path}:") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_plan_runs_the_market_first_and_the_plan_checks(capsys, tmp_path: Path):
    out = tmp_path / "plan.json"
    code, text, err = ppr(capsys, "plan", str(MARKET), "--out", str(out))
    assert code == 0, err
    assert text.startswith("market: 6 trades, 290 packets")
    plan = json.loads(out.read_text())
    scenario, topology = load_with_topology(MARKET)
    planned = with_market_transfers(scenario, clear_market(scenario, topology))
    verify_plan(planned, plan)
    assert {p["transfer"] for p in plan["packets"]} == {t.id for t in planned.transfers}
    assert len(plan["packets"]) + sum(plan["undelivered"].values()) == 290


def test_plan_without_quotes_is_unchanged(capsys, tmp_path: Path):
    out = tmp_path / "plan.json"
    code, text, _ = ppr(capsys, "plan", "--solver", "greedy", "--out", str(out))
    assert code == 0 and not text.startswith("market:")
    plan = json.loads(out.read_text())
    verify_plan(load_scenario(bundled_path()), plan)


def test_a_buyer_paid_under_nash_is_shown_receiving(capsys, tmp_path: Path):
    """Equal Nash shares can pay a buyer of one packet more than it bid: the table shows
    that money as received, as its negative payment in the JSON says."""
    path = tmp_path / "small-buyer.toml"
    path.write_text(TEXT + '\n[[bids]]\nid = "BY"\nterminal = "MEC1"\npackets = 1\nprice = 0.5\n')
    code, out, _ = ppr(capsys, "market", str(path), "--mechanism", "nash", "--json")
    by = next(p for p in json.loads(out)["participants"] if p["id"] == "BY")
    assert code == 0 and by["payment"] < 0
    code, out, _ = ppr(capsys, "market", str(path), "--mechanism", "nash")
    row = next(line.split() for line in out.splitlines() if line.startswith("  BY "))
    paid, received = row[7], row[8]  # id side terminal 1 @ 0.5 traded paid received
    assert (paid, float(received)) == ("-", pytest.approx(-by["payment"], abs=1e-4))


SOP_BENCH = bundled_path("microgrids-sop")


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_every_rule_by_name_with_its_welfare_gap(capsys, mechanism):
    code, out, err = ppr(capsys, "market", str(SOP_BENCH), "--mechanism", mechanism, "--json")
    assert code == 0 and err == ""
    doc = json.loads(out)
    expected = clear_market(*load_with_topology(SOP_BENCH), mechanism).to_json()
    doc.pop("solve_ms"), expected.pop("solve_ms"), doc.pop("transfers")
    assert doc == expected and doc["mechanism"] == mechanism
    optimum = clear_market(*load_with_topology(SOP_BENCH), "vcg").welfare
    assert doc["optimum_welfare"] == pytest.approx(optimum, abs=1e-12)
    assert doc["welfare_gap"] == pytest.approx(optimum - doc["welfare"], abs=1e-12)
    assert doc["volume"] == sum(t["packets"] for t in doc["trades"])
    code, out, _ = ppr(capsys, "market", str(SOP_BENCH), "--mechanism", mechanism)
    assert code == 0 and out.startswith(f"microgrids-sop: {mechanism} market over 100 slots")
    assert f"(optimum {optimum:.4f}, gap " in out and "operator budget " in out


def test_no_green_skips_the_green_pass(capsys):
    code, out, _ = ppr(capsys, "market", str(SOP_BENCH), "--no-green", "--json")
    doc = json.loads(out)
    hospital = next(p for p in doc["participants"] if p["id"] == "HOSPITAL")
    assert code == 0 and doc["green_pass"] is False and hospital["packets"] == 0
    code, out, _ = ppr(capsys, "market", str(SOP_BENCH), "--no-green")
    assert out.splitlines()[0].endswith(", no green pass")


BAD_NAMES = ["bogus", "VCG", "price_priority", ""]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_an_unknown_rule_is_one_line_and_exit_2(capsys, name):
    code, out, err = ppr(capsys, "market", "--mechanism", name)
    assert code == 2 and out == ""
    assert err == (
        f"error: --mechanism {name}: unknown rule; choose vcg, nash, price-priority, "
        "max-volume, combined-offer\n"
    )


def test_an_unknown_rule_exits_2_from_the_real_command():
    result = subprocess.run(
        [sys.executable, "-m", "router.cli", "market", "--mechanism", "highest-price"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "unknown rule" in result.stderr


BAD_RUNS = [
    (["--mechanism", "bogus"], "--mechanism bogus: unknown rule; choose vcg, nash,"),
    (["--mechanism", "max-volume", "--scenario", str(bundled_path("bench-4"))],
     "--mechanism max-volume: bench-4 quotes no [[offers]] and [[bids]] to match"),
    (["--mechanism", "nash", "--dayahead", "bench/data/vpp-30.toml", "--hour", "12"],
     "--mechanism clears the scenario's offers and bids; --dayahead and [mec] decide"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "words"), BAD_RUNS, ids=["unknown", "no quotes", "dayahead"])
def test_a_run_with_a_bad_rule_is_one_line_and_writes_nothing(capsys, tmp_path, argv, words):
    code, out, err = ppr(
        capsys, "run", "--out", str(tmp_path / "out"), "--keys", str(tmp_path / "k"), *argv
    )
    assert code == 2 and out == "" and err.count("\n") == 1 and words in err, err
    assert not (tmp_path / "out").exists() and not (tmp_path / "k").exists()
