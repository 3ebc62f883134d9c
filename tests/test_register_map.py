"""The register map: one file, a document that cannot go stale, ``ppr registers``,
router addresses, and ``ppr twin`` as the README shows it."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from firmware_bridge import framed
from firmware_bridge.docblocks import block
from firmware_bridge.driver import BACKENDS, driver_class, parse_address
from firmware_bridge.errors import AddressError
from firmware_bridge.register_doc import GENERATED
from firmware_bridge.registers import register_map

ROOT = Path(__file__).parents[1]
DOC = ROOT / "docs" / "register-map.md"
MAP = register_map()


def ppr(*args: str, cwd: Path = ROOT, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "router.cli", *args],
        capture_output=True, text=True, timeout=timeout, cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_the_document_matches_the_map(name):
    text = block(DOC.read_text(encoding="utf-8"), name)
    assert text is not None, f"docs/register-map.md lacks the '{name}' block"
    assert text == GENERATED[name](), (
        "docs/register-map.md is stale; run: python -m firmware_bridge.register_doc "
        "docs/register-map.md"
    )


def test_the_map_fits_the_protocols():
    upload, rows = MAP.block("cmd_upload"), MAP.params
    data = upload.fields[-1]
    assert data.registers == rows["upload_rows_max"] * rows["entry_registers"]
    assert 2 * rows["entry_registers"] == rows["entry_bytes"] + 1  # one pad byte a row
    # a Modbus write carries 3 rows with their command, a framed write all it may
    assert (rows["max_write_registers"] - upload.written(0)) // rows["entry_registers"] == 3
    assert upload.written(rows["upload_rows_max"]) == upload.size <= framed.MAX_REGISTERS
    status, counters = MAP.block("status"), MAP.block("counters")
    assert counters.end - status.start <= rows["max_read_registers"]  # one status read
    meters = MAP.block("meters")
    assert meters.repeat == rows["max_ports"] and meters.size <= meters.stride
    # the driver writes these groups in one request each
    for group in (("commit_frame", "commit_count", "commit_crc"), ("arm_frame", "arm_start_us")):
        fields = [MAP.field(n) for n in group]
        for a, b in itertools.pairwise(fields):
            assert a.address + a.registers == b.address
    assert MAP.field("arm_start_us").registers == 4  # u64 router clock


def test_fields_round_trip_their_units():
    v = MAP.field("last_voltage")
    assert v.encode(47.84) == [4784] and v.decode([4784]) == pytest.approx(47.84)
    clock = MAP.field("router_clock_us")
    assert clock.decode(clock.encode(2**40 + 5)) == 2**40 + 5
    skew = MAP.field("clock_skew_us")
    assert skew.decode(skew.encode(-300)) == -300
    with pytest.raises(ValueError, match="does not fit"):
        MAP.field("commit_count").encode(70000)


def test_ppr_registers_prints_the_map_as_text_and_json():
    text = ppr("registers")
    assert text.returncode == 0, text.stderr
    for b in MAP.blocks:
        for f in b.fields:
            assert f"`{f.name}`" in text.stdout
    js = ppr("registers", "--json")
    assert json.loads(js.stdout) == json.loads(json.dumps(MAP.to_json()))


@pytest.mark.parametrize(
    ("text", "scheme", "unit"),
    [
        ("modbus-tcp://127.0.0.1:5021?unit=3", "modbus-tcp", 3),
        ("modbus-rtu:///dev/ttyUSB0?baud=115200&unit=12", "modbus-rtu", 12),
        ("serial:///dev/ttyUSB1?baud=921600", "serial", 1),
    ],
)
def test_addresses_choose_their_backend(text, scheme, unit):
    a = parse_address(text)
    assert (a.scheme, a.unit, str(a)) == (scheme, unit, text)
    assert driver_class(scheme).scheme == scheme and scheme in BACKENDS


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("modbus-udp://1.2.3.4:502", "unknown scheme 'modbus-udp'"),
        ("modbus-tcp://127.0.0.1", "needs host:port"),
        ("modbus-rtu://dev/ttyUSB0", "needs a device path"),
        ("serial:///dev/ttyUSB0?unit=300", "unit 300 is outside 1..247"),
        ("serial:///dev/ttyUSB0?baud=fast", "baud='fast' is not an integer"),
        ("modbus-tcp://h:1?speed=3", "unknown parameter(s) speed"),
    ],
)
def test_bad_addresses_say_what_is_wrong(text, message):
    with pytest.raises(AddressError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_address(text)


@pytest.mark.timeout(60)
def test_ppr_twin_prints_the_addresses_and_stops_on_ctrl_c(tmp_path):
    assert ppr("keys", "init", "--store", str(tmp_path / "k"), cwd=tmp_path).returncode == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "router.cli", "twin", "--keys", str(tmp_path / "k"),
         "--transport", "rtu", "--fault", "drop=0.05", "--accel", "10"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any("fault  " in x for x in lines):
            lines.append(proc.stdout.readline())
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = "".join(lines) + out
    assert proc.returncode == 0, err
    assert "twin bench-4: 4 routers over rtu" in text and "serial line   /dev/pts/" in text
    assert (
        "modbus-rtu:///dev/pts/" in text and "unit=4" in text and "fault         drop=0.05" in text
    )
    assert "twin stopped" in text


def test_ppr_twin_without_keys_is_one_error_line(tmp_path):
    run = ppr("twin", "--keys", str(tmp_path / "none"), "--duration", "1", cwd=tmp_path)
    assert run.returncode == 2
    assert (
        run.stderr.startswith("error: the twin's routers need their keys")
        and "ppr keys init" in run.stderr
    )
    bad = ppr("twin", "--fault", "melt=R9", "--keys", str(tmp_path), cwd=tmp_path)
    assert bad.returncode == 2 and "unknown kind 'melt'" in bad.stderr


def test_the_prose_counts_the_registers_the_map_has():
    """docs/register-map.md once said "9 registers" for a 10-register identity block (magic
    takes two), so a reader missed key_epoch: every "N registers at A" must match the map."""
    text = DOC.read_text(encoding="utf-8")
    claims = re.findall(r"`(\w+)` \((\d+) registers at (0x[0-9A-Fa-f]+|\d+)", text)
    assert claims, "docs/register-map.md no longer states the identity block's size"
    for name, count, start in claims:
        b = MAP.block(name)
        assert (int(count), int(start, 0)) == (b.size, b.start), f"{name}: {count} at {start}"
    # by hand: magic u32 (2) + eight u16 fields = 10
    assert MAP.block("identity").size == 10
