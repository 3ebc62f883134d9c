"""``ppr run`` given something wrong: one line on stderr that says what, where and how to
fix it, exit 2, and nothing written (no output folder, no journal, no keys)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench import bundled_path
from tests.bench_process import ppr
from tests.mosquitto import free_port

BENCH = bundled_path().read_text()


def run(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ppr("run", "--out", "out", "--keys", "keys", *args),
        capture_output=True, text=True, timeout=120, cwd=tmp,
    )  # fmt: skip


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return lines[0]


def nothing_written(tmp: Path, *kept: str) -> None:
    assert sorted(p.name for p in tmp.iterdir()) == sorted(kept)


def test_an_invalid_scenario_names_its_file_and_line(tmp_path: Path):
    text = BENCH.replace('sink = "MEC3"', 'sink = "MEC9"', 1)
    (tmp_path / "bad.toml").write_text(text)
    line = text.splitlines().index('sink = "MEC9"') + 1  # counted here, not by the loader
    transfer = text[: text.index('sink = "MEC9"')].rsplit('id = "', 1)[1].split('"')[0]
    error = one_line_error(run(tmp_path, "--scenario", "bad.toml"))
    assert error == f"error: bad.toml:{line}: transfers[{transfer}].sink: unknown terminal 'MEC9'"
    nothing_written(tmp_path, "bad.toml")


def hardware_bench(tmp: Path, port: int) -> Path:
    """bench-4 with every router behind one TCP address where nothing listens."""
    text = BENCH
    for unit, rid in enumerate(("R1", "R2", "R3", "R4"), start=1):
        text = text.replace(
            f'[[routers]]\nid = "{rid}"',
            f'[[routers]]\nid = "{rid}"\naddress = "modbus-tcp://127.0.0.1:{port}?unit={unit}"',
        )
    path = tmp / "hw.toml"
    path.write_text(text)
    return path


def test_an_unreachable_router_stops_the_run_before_anything_is_written(tmp_path: Path):
    port = free_port()  # nobody listens here
    hardware_bench(tmp_path, port)
    keys = subprocess.run(ppr("keys", "init", "hw.toml", "--keys", "keys"), cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert keys.returncode == 0, keys.stderr
    error = one_line_error(run(tmp_path, "--hardware", "--scenario", "hw.toml"))
    assert error.startswith("error: router R1 at modbus-tcp://127.0.0.1:")
    assert f":{port}?unit=1" in error and "cannot connect" in error
    nothing_written(tmp_path, "hw.toml", "keys")


def test_hardware_without_a_provisioned_key_store_is_refused(tmp_path: Path):
    hardware_bench(tmp_path, free_port())
    error = one_line_error(run(tmp_path, "--hardware", "--scenario", "hw.toml"))
    assert error == (
        "error: keys: no key store; create it with ppr keys init and provision the "
        "routers' keys before driving hardware"
    )
    nothing_written(tmp_path, "hw.toml")


def test_a_key_store_others_can_read_is_refused(tmp_path: Path):
    init = subprocess.run(ppr("keys", "init", "--keys", "keys"), cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert init.returncode == 0, init.stderr
    key = tmp_path / "keys" / "epoch-0001" / "controller.key"
    key.chmod(0o644)
    error = one_line_error(run(tmp_path))
    assert error.endswith(f"fix with: chmod 600 {Path('keys/epoch-0001/controller.key')}")
    nothing_written(tmp_path, "keys")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--frames", "0"], "error: --frames must be at least 1, not 0"),
        (
            ["--timeout-ms", "1000"],
            "error: --timeout-ms 1000 must be at least 1 and below --watchdog-ms 1000: "
            "a heartbeat must be able to get through in time",
        ),
        (["--mqtt", "http://localhost"], None),
        (["--retail-price", "-1"], "error: --retail-price must be a number >= 0, not -1"),
        (["--retail-price", "nan"], "error: --retail-price must be a number >= 0, not nan"),
        # refused before the key store is made
        (["--fault", "drop=2"], "error: fault 'drop=2': a probability is within 0..1"),
        (["--fault", "drop=0.1", "--hardware"],
         "error: --fault drop=0.1: faults are the twin's; not with --hardware"),
    ],
)  # fmt: skip
def test_bad_options(tmp_path: Path, args: list[str], message: str | None):
    error = one_line_error(run(tmp_path, *args))
    if message is not None:
        assert error == message
    else:
        assert "http://localhost" in error and "mqtt://" in error
    nothing_written(tmp_path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--run", "nowhere"], "error: nowhere/addresses.json: no addresses here; is a ppr run "
         "writing to nowhere?"),
        ([], "error: scenario bench-4 gives no router addresses; use --run OUT for a ppr run "
         "on the twin"),
    ],
)  # fmt: skip
def test_estop_without_addresses(tmp_path: Path, args: list[str], message: str):
    refused_in_one_line(tmp_path, ["estop", *args], message)


def test_estop_with_deeply_nested_addresses(tmp_path: Path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "addresses.json").write_text("[" * 100_000)
    result = subprocess.run(ppr("estop", "--run", "out"), capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)  # fmt: skip
    assert one_line_error(result).startswith(
        "error: out/addresses.json: not the addresses a ppr run writes ("
    )


def refused_in_one_line(tmp_path: Path, argv: list[str], message: str) -> None:
    result = subprocess.run(ppr(*argv), capture_output=True, text=True, timeout=60,
                            cwd=tmp_path)  # fmt: skip
    assert one_line_error(result) == message
    nothing_written(tmp_path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--baud", "0"], "error: --baud must be at least 300, not 0"),
        (["--transport", "rtu", "--line-baud", "-5"], "error: --line-baud -5: paces a serial "
         "line; give --transport rtu or serial and a rate of at least 300"),
        (["--accel", "0"], "error: --accel must be a number above 0, not 0"),
        (["--duration", "-1"], "error: --duration must be above 0 seconds, not -1"),
    ],
)  # fmt: skip
def test_bad_twin_options(tmp_path: Path, args: list[str], message: str):
    refused_in_one_line(tmp_path, ["twin", *args], message)
