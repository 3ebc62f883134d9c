"""Numbers the wire cannot carry are refused by the checker, for ``ppr plan`` and
``ppr run`` alike: one located line, exit 2, nothing written (no keys, no journal)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench import bundled_path, limits
from firmware_bridge.headers import layout as L
from tests.bench_process import ppr

BENCH = bundled_path().read_text()
T1 = 'id = "T1"\nsource = "PV1"\nsink = "MEC1"\npackets = 20\nvoltage_v = 48.0\n'


def test_the_limits_are_the_header_fields_ranges():
    assert limits.MAX_VOLTAGE_V == pytest.approx(L.VOLTAGE.max_value) == pytest.approx(655.35)
    current = L.OUTER_BODY.field("current_limit")
    assert pytest.approx(current.max_value) == limits.MAX_CURRENT_A
    assert pytest.approx(L.INNER_BODY.field("energy").max_value) == limits.MAX_PACKET_ENERGY_J


CASES = [
    ("slot_ms = 5.0", "slot_ms = 1e308", "frame.slot_ms", "must be <= 4294967.295"),
    (T1, T1.replace("48.0", "48000.0"), "transfers[T1].voltage_v", "655.35"),
    (T1, T1.replace("48.0", "1e308"), "transfers[T1].voltage_v", "655.35"),
    # inside the header's range, above the terminals' 48 V
    (T1, T1.replace("48.0", "400.0"), "transfers[T1].voltage_v", "exceeds terminal PV1's"),
]


@pytest.mark.parametrize("command", ["plan", "run"])
@pytest.mark.parametrize(("old", "new", "where", "words"), CASES)
def test_beyond_the_wire_is_refused(
    tmp_path: Path, command: str, old: str, new: str, where: str, words: str
):
    assert old in BENCH
    text = BENCH.replace(old, new, 1)
    (tmp_path / "big.toml").write_text(text)
    line = text[: text.index(new)].count("\n") + 1 + (new.count("\n") and 4)
    args = ["--out", "out"] + (["--keys", "keys", "--scenario"] if command == "run" else [])
    result = subprocess.run(ppr(command, *args, "big.toml"), capture_output=True, text=True,
                            timeout=120, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    (error,) = result.stderr.splitlines()
    assert error.startswith(f"error: big.toml:{line}: {where}: "), error
    assert words in error and "Traceback" not in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.toml"]
