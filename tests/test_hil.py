"""Real router hardware, opt-in: ``pytest --hil-port=/dev/ttyUSB0`` (Modbus RTU, unit 1)
or ``--hil-address=serial:///dev/ttyUSB0?baud=921600&unit=2``. Skipped otherwise.

Read-only and safe on a live bench: identify, status, clock, meters; then (with
``--hil-keys DIR:ROUTER``) e-stop and clear the fault, which opens every gate of an idle
router (a no-op for its loads)."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware_bridge.driver import Credentials, new_session, open_driver
from firmware_bridge.keystore import KeyStore

pytestmark = [pytest.mark.hil, pytest.mark.timeout(60)]


@pytest.fixture
def address(request) -> str:
    given = request.config.getoption("--hil-address")
    return given or f"modbus-rtu://{request.config.getoption('--hil-port')}?unit=1"


async def test_real_router_identifies_and_reports(address):
    async with open_driver(address, "hil") as d:
        assert d.identity is not None and d.identity.port_count >= 1
        status = await d.read_status()
        assert status.state in ("idle", "armed", "running", "safe", "fault")
        a, router_us, b = await d.read_clock()
        assert a <= b and router_us > 0
        meters = await d.read_meters()
        assert len(meters.ports) == d.identity.port_count


async def test_real_router_estop_and_clear(address, request):
    given = request.config.getoption("--hil-keys")
    if not given:
        pytest.skip("clearing the e-stop is authenticated: pass --hil-keys DIR:ROUTER")
    folder, _, router = given.rpartition(":")
    creds = Credentials(KeyStore.open(Path(folder)).command_keys()[router], new_session())
    async with open_driver(address, router, credentials=creds) as d:
        if (await d.read_status()).state in ("armed", "running"):
            pytest.skip("the router is running a frame: not e-stopping a live bench")
        await d.estop()
        assert (await d.read_status()).state == "fault"
        await d.clear_fault()  # claims the router first; closing releases it
        assert (await d.read_status()).state == "idle"
