"""The routers act only on entries sealed for them, for this frame: forged and replayed
rows move no gate and are counted, even when the commit itself is genuine; and a plain
Modbus client (no key) cannot commit at all."""

from __future__ import annotations

import os

import pytest
from pymodbus.client import AsyncModbusTcpClient

from bench import bundled_path
from firmware_bridge.driver import RouterDriver, parse_address
from firmware_bridge.errors import ArmError, CommitError
from firmware_bridge.registers import register_map
from scheduler import PlannedPacket
from sim_hw.twin import Twin
from tests.twin_support import (
    SLOT_US,
    arm_all,
    commit_all,
    drivers,
    entries,
    frame_end,
    seal,
    until,
)

MAP = register_map()
T1 = [PlannedPacket("T1", ("PV1", "MEC1"), (s, s)) for s in range(3, 6)]


async def commit_rows(d: RouterDriver, frame: int, rows: list[bytes]) -> None:
    """Rows that are not this frame's genuine table, committed by the genuine controller
    (they came from elsewhere, or were altered on the way): the router opens each."""
    await d.commit(frame, await d.upload_bank(frame, rows))


@pytest.fixture
async def twin(twin_keys):
    async with Twin(bundled_path(), twin_keys.path, transport="tcp", accel=20) as twin:
        yield twin


@pytest.fixture
async def client(twin):
    """Anyone on the bus: the register map, and no key."""
    a = parse_address(twin.addresses["R1"])
    c = AsyncModbusTcpClient(a.host, port=a.port, timeout=1, retries=0)
    assert await c.connect()
    yield c
    c.close()


@pytest.mark.timeout(30)
async def test_a_forged_entry_moves_no_gate_and_is_counted(twin):
    # a well-formed clear header for R1 (wire id 0), frame 5, slot 3; no key, so no tag
    forged = bytes([1, 0, 1, 0, 0, 5, 0, 3, 0]) + os.urandom(54)
    async with drivers(twin) as ds:
        await commit_rows(ds["R1"], 5, [forged])
        status = await ds["R1"].read_status()
        assert (status.commit_status, status.staged_frame) == ("ok", 5)
        assert status.counters["rejected_headers"] == 1 and "header_refused" in status.alarms
        start = await arm_all(twin, {"R1": ds["R1"]}, 5)
        await until(twin, start + 3.5 * SLOT_US)
        assert twin.closed_gates("R1") == set()
        await until(twin, frame_end(start))
        meters = await ds["R1"].read_meters()
        status = await ds["R1"].read_status()
    assert all(p.energy_in_j == p.energy_out_j == 0 for p in meters.ports)
    assert status.frames_completed == 1 and status.counters["open_circuits"] == 0


@pytest.mark.timeout(30)
async def test_a_replayed_frame_moves_no_gate_and_is_counted(twin, twin_keys):
    genuine = seal(twin_keys, 5, T1)
    async with drivers(twin) as ds:
        r1 = {"R1": ds["R1"]}
        await commit_all(r1, genuine)
        start = await arm_all(twin, r1, 5)
        await until(twin, frame_end(start))
        delivered = (await ds["R1"].read_meters()).ports[3].energy_out_j
        assert delivered > 0
        # the same rows again as frame 6: authentic, but of frame 5
        await commit_rows(ds["R1"], 6, entries(genuine, "R1"))
        status = await ds["R1"].read_status()
        assert (status.commit_status, status.commit_accepted, status.commit_refused) == ("ok", 0, 3)
        assert status.counters["replays"] == 3
        start = await arm_all(twin, r1, 6)
        await until(twin, frame_end(start))
        assert (await ds["R1"].read_meters()).ports[3].energy_out_j == delivered
        # and as frame 5 itself: a frame number not above the last is refused whole
        with pytest.raises(CommitError, match="replayed_frame"):
            await commit_rows(ds["R1"], 5, entries(genuine, "R1"))
        status = await ds["R1"].read_status()
    assert status.commit_status == "replayed_frame" and status.counters["replays"] == 4


@pytest.mark.timeout(30)
async def test_a_commit_without_authentic_rows_cannot_lock_the_router_out(twin, client, twin_keys):
    """A plain client's commit of frame 2**32 - 16 is refused unread (no key, no tag); a
    genuine commit of forged rows for it stages a bank that moves no gate and leaves the
    replay mark alone: the next genuine frame commits."""
    block = MAP.block("cmd_commit")
    forged = [0] * block.size
    forged[4:6] = MAP.field("commit_frame").encode(2**32 - 16)
    reply = await client.write_registers(block.start, forged, device_id=1)
    assert reply.isError() and reply.exception_code == MAP.exceptions["illegal_value"]
    row = bytes([1, 0, 1, 0xFF, 0xF0, 0, 0, 3, 0]) + os.urandom(54)
    async with drivers(twin) as ds:
        await commit_rows(ds["R1"], 2**32 - 15, [row])
        assert (await ds["R1"].read_status()).replay_mark == 0
        r1 = {"R1": ds["R1"]}
        await commit_all(r1, seal(twin_keys, 5, T1))
        status = await ds["R1"].read_status()
        assert (status.commit_status, status.staged_frame, status.commit_accepted) == ("ok", 5, 3)
        assert status.replay_mark == 5 and status.counters["command_refusals"] == 1
        start = await arm_all(twin, r1, 5)
        await until(twin, frame_end(start))
        assert (await ds["R1"].read_meters()).ports[3].energy_out_j > 0


@pytest.mark.timeout(30)
async def test_an_entry_for_another_router_or_row_is_misplaced(twin, twin_keys):
    sealed = seal(twin_keys, 9, [*T1, PlannedPacket("T2", ("PV1", "L12", "L23", "MEC2"), (7,) * 4)])
    r1, r2 = entries(sealed, "R1"), entries(sealed, "R2")
    # R2's entry in R1's bank, and R1's first entry written twice (second copy: wrong index)
    async with drivers(twin) as ds:
        await commit_rows(ds["R1"], 9, [r1[0], r1[0], *r2])
        status = await ds["R1"].read_status()
    assert (status.commit_accepted, status.commit_refused) == (1, 2)
    assert status.counters["misplaced"] == 2


@pytest.mark.timeout(30)
async def test_a_retried_arm_is_ok_after_the_start_another_start_is_refused(twin, twin_keys):
    # the master's first arm reached the router but its reply was lost; the retry comes
    # after the frame began: answering "not_ready" would make the master skip a running frame
    async with drivers(twin) as ds:
        r1 = {"R1": ds["R1"]}
        await commit_all(r1, seal(twin_keys, 5, T1))
        start = await arm_all(twin, r1, 5)
        with pytest.raises(ArmError) as err:  # armed: never moved to another start
            await ds["R1"].arm(5, int(start) + 1000)
        assert err.value.status == "already_armed"
        await until(twin, start + 2 * SLOT_US)
        assert (await ds["R1"].read_status()).state == "running"
        await ds["R1"].arm(5, int(start))  # no error: the same frame at the same start
        with pytest.raises(ArmError) as err:
            await ds["R1"].arm(5, int(start) + 1000)
        assert err.value.status == "already_armed"
        await until(twin, frame_end(start))
        status = await ds["R1"].read_status()
    assert status.frames_completed == 1


@pytest.mark.timeout(30)
async def test_a_commit_undone_by_an_estop_is_not_called_refused(twin):
    """The router accepts the commit, then its e-stop is pressed before the controller
    reads the status back (an e-stop from the page while the next frame is committed):
    the error says what happened, not "commit refused (ok)"."""
    model = twin.routers["R1"]
    accept = model.commit

    def commit_then_estop(fields: dict[str, int]) -> None:
        accept(fields)
        model.halt(model.last_beat, "fault")  # the e-stop, right after the commit

    model.commit = commit_then_estop
    async with drivers(twin, only=["R1"]) as ds:
        d = ds["R1"]
        with pytest.raises(CommitError) as err:
            await d.commit(5, await d.upload_bank(5, []))
    assert err.value.status == "dropped"
    assert "frame 5: committed, then dropped before it could run" in str(err.value)
    assert "e-stopped" in str(err.value) and "refused" not in str(err.value)
