"""Lossy links: banks commit intact or the driver raises its typed error, never a half
bank; every injected fault shows in the twin's counters."""

from __future__ import annotations

import asyncio

import pytest

from bench import bundled_path
from firmware_bridge.driver import open_driver
from firmware_bridge.errors import ArmError, BridgeError, CommitError, RouterTimeout
from scheduler import plan_transfers
from sim_hw.twin import TRANSPORTS, Twin
from tests.twin_support import SCENARIO, TOPOLOGY, drivers, entries, seal

PLAN = plan_transfers(SCENARIO, TOPOLOGY, "greedy")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_banks_commit_intact_with_dropped_and_corrupted_replies(transport, twin_keys):
    faults = ["drop=0.05", "corrupt=0.01"]
    async with (
        Twin(bundled_path(), twin_keys.path, transport=transport, faults=faults, seed=3) as twin,
        drivers(twin, timeout=0.1) as ds,
    ):
        committed = failed = 0
        for frame in (1, 2):
            sealed = seal(twin_keys, frame, PLAN.packets)
            for rid, d in ds.items():
                rows = entries(sealed, rid)
                router = twin.routers[rid]
                try:
                    crc = await d.upload_bank(frame, rows)
                    result = await d.commit(frame, crc)
                except BridgeError as exc:  # allowed, if typed and located
                    assert exc.router_id == rid and exc.address == twin.addresses[rid]
                    assert router.staging != "ready" or router.staged.frame != frame
                    failed += 1
                    continue
                staged = router.staged
                assert router.staging == "ready" and staged is not None
                assert (staged.frame, staged.crc, staged.count) == (frame, crc, len(rows))
                assert result.accepted == len(rows) and result.refused == 0
                committed += 1
        retries = sum(d.retries for d in ds.values())
        diag = [await d.read_block("twin_diagnostics") for d in ds.values()]
    assert committed + failed == 8 and committed >= 7
    drops = sum(x["injected_drops"] for x in diag)
    corrupt = sum(x["injected_corruptions"] for x in diag)
    assert drops > 0 and retries >= drops  # every lost reply cost the driver a retry
    assert drops + corrupt == sum(
        c["injected_drops"] + c["injected_corruptions"] for c in twin.injected.values()
    )


@pytest.mark.timeout(30)
async def test_a_link_lost_mid_upload_leaves_no_bank_to_run(twin_keys):
    sealed = seal(twin_keys, 4, PLAN.packets)
    rows = entries(sealed, "R1")
    assert len(rows) > 64  # more than one upload page
    twin = Twin(bundled_path(), twin_keys.path, transport="tcp")
    async with twin, drivers(twin, timeout=0.05, attempts=2) as ds:
        r1, router = ds["R1"], twin.routers["R1"]

        async def cut_when_loading():
            while router.staging != "loading":
                await asyncio.sleep(0)
            return twin.inject("offline@R1")

        cut = asyncio.create_task(cut_when_loading())
        with pytest.raises(RouterTimeout) as err:
            await r1.upload_bank(4, rows)
        twin.clear(await cut)
        assert (err.value.router_id, err.value.address) == ("R1", twin.addresses["R1"])
        assert err.value.register in ("window", "upload_page")
        with pytest.raises(CommitError, match="no completed upload"):
            await r1.commit(4, 0)
        with pytest.raises(ArmError) as arm:
            await r1.arm(4, 10**12)
        status = await r1.read_status()
        diag = await r1.read_block("twin_diagnostics")
    assert arm.value.status == "not_ready"
    assert status.staging == "loading" and status.state == "idle"
    assert diag["offline_ignored"] >= 2


@pytest.mark.timeout(30)
async def test_an_offline_router_times_out_with_its_name_and_address(twin_keys):
    async with Twin(bundled_path(), twin_keys.path, transport="rtu", faults=["offline@R4"]) as twin:
        d = open_driver(twin.addresses["R4"], "R4", timeout=0.05, attempts=2)
        with pytest.raises(
            RouterTimeout, match=r"router R4 modbus-rtu://.* register identity: no reply"
        ):
            await d.open()
        async with drivers(twin, only=["R3"]) as ds:
            assert (await ds["R3"].read_status()).state == "idle"  # the line still serves R3


@pytest.mark.timeout(30)
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_router_back_from_offline_answers_the_same_driver(transport, twin_keys):
    # pymodbus closes a TCP link after a few requests without a reply; a controller that
    # keeps its driver (probing a router that went away) must find the router again
    async with Twin(bundled_path(), twin_keys.path, transport=transport) as twin:
        d = open_driver(twin.addresses["R3"], "R3", timeout=0.05, attempts=2)
        await d.open()
        try:
            cut = twin.inject("offline@R3")
            for _ in range(3):  # six requests lost
                with pytest.raises(RouterTimeout):
                    await d.read_status()
            twin.clear(cut)
            assert (await d.identify()).router_wire_id == 2
            assert (await d.read_status()).state == "idle"
        finally:
            await d.close()
