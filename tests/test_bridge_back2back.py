"""One back-to-back test class, run over each transport against the twin: identify,
upload, commit, arm, run a frame, read the meters; e-stop and watchdog.

Delivered energies are computed here by hand from bench-4's resistances (docs/design.md's
planning model), not by the twin's code.
"""

from __future__ import annotations

import asyncio

import pytest

from bench import bundled_path
from firmware_bridge.errors import ArmError, CommitError
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

V, TAU = 48.0, 0.0049
E8 = V * 8.0 * TAU  # 1.8816 J at the source, 8 A
# hand-computed: I^2 * R * tau per line and access, loss_coeff * E per SOP
T1_EACH = E8 - 64 * (0.02 + 0.03) * TAU  # PV1 -> MEC1, all at R1
T2_EACH = E8 - 64 * (0.02 + 0.08 + 0.10 + 0.03) * TAU  # PV1 -> L12 -> L23 -> MEC2
T10_EACH = E8 - 64 * (0.01 + 0.03) * TAU - 0.02 * E8  # BAT1 -> SOP24 -> MEC3

PACKETS = [
    PlannedPacket("T1", ("PV1", "MEC1"), (3, 3)),
    PlannedPacket("T1", ("PV1", "MEC1"), (4, 4)),
    PlannedPacket("T2", ("PV1", "L12", "L23", "MEC2"), (5, 5, 5, 5)),  # cut-through
    PlannedPacket("T2", ("PV1", "L12", "L23", "MEC2"), (10, 10, 12, 12)),  # held at R2
    PlannedPacket("T10", ("BAT1", "SOP24", "MEC3"), (120, 120, 120)),  # through the SOP
]
ACCEL = 20.0
WATCHDOG_MS = 1000  # 50 ms of wall clock at ACCEL: heartbeats come every 10 ms


class BackToBack:
    transport: str

    @pytest.fixture
    async def twin(self, twin_keys):
        async with Twin(
            bundled_path(), twin_keys.path,
            transport=self.transport, accel=ACCEL,
        ) as twin:  # fmt: skip
            yield twin

    @pytest.mark.timeout(30)
    async def test_identify(self, twin: Twin):
        async with drivers(twin) as ds:
            for wire, (rid, d) in enumerate(ds.items()):
                ident = d.identity
                assert ident is not None
                assert (ident.router_wire_id, ident.port_count) == (wire, 4)
                assert ident.storage_places == (2 if rid == "R2" else 0)
                assert ident.bank_entries_max == 4096

    @pytest.mark.timeout(30)
    async def test_concurrent_requests_share_one_line(self, twin: Twin):
        # on rtu and serial all four drivers share one port: one request in flight at a time
        async with drivers(twin) as ds:
            calls = [d.read_status() for d in ds.values() for _ in range(10)]
            calls += [d.heartbeat() for d in ds.values() for _ in range(10)]
            results = await asyncio.gather(*calls)
        assert all(s.state == "idle" for s in results[:40])
        assert sum(r.counters["requests"] for r in twin.routers.values()) >= 80
        assert sum(d.retries for d in ds.values()) == 0

    @pytest.mark.timeout(30)
    async def test_frame_delivers_the_hand_computed_energy(self, twin: Twin, twin_keys):
        sealed = seal(twin_keys, 7, PACKETS)
        async with drivers(twin) as ds:
            results = await commit_all(ds, sealed)
            # R2: T2 cut through, T2 into and out of the store, T10 onto the SOP
            assert (results["R2"].accepted, results["R2"].refused) == (4, 0)
            start = await arm_all(twin, ds, 7)
            status = await ds["R1"].read_status()
            assert status.state == "armed" and status.staged_frame == 7
            await until(twin, frame_end(start))
            meters = {rid: await d.read_meters() for rid, d in ds.items()}
            states = {rid: await d.read_status() for rid, d in ds.items()}
            latched = {rid: await d.read_frame_attribution() for rid, d in ds.items()}
        # the frame's own records, latched at its end, equal what it added since power-up
        for rid, (frame, records) in latched.items():
            assert frame == 7, rid
            assert records == meters[rid].attributions, rid
        for rid, s in states.items():
            assert s.state == "idle" and s.frame == 7 and s.frames_completed == 1, rid
            assert not s.alarms and s.counters["collisions"] == s.counters["open_circuits"] == 0
        # the sink meters attribute by transfer wire id (T1 = 0, T2 = 1, T10 = 9)
        got = {
            (a.sink, a.transfer): (a.packets, a.energy_j)
            for m in meters.values()
            for a in m.attributions
        }
        assert got.keys() == {(1, 0), (4, 1), (5, 9)}
        assert got[1, 0] == (2, pytest.approx(2 * T1_EACH, abs=2e-6))
        assert got[4, 1] == (2, pytest.approx(2 * T2_EACH, abs=2e-6))
        assert got[5, 9] == (1, pytest.approx(T10_EACH, abs=1e-6))
        # port meters: what left R1 by MEC1's port is before MEC1's access loss
        mec1 = meters["R1"].ports[3]
        assert mec1.packets_out == 2
        assert mec1.energy_out_j == pytest.approx(2 * (E8 - 64 * 0.02 * TAU), abs=2e-6)
        assert (mec1.current_a, mec1.voltage_v) == (8.0, pytest.approx(48.0 - 8 * 0.02, abs=0.01))
        pv1 = meters["R1"].ports[0]
        assert pv1.packets_in == 4
        assert pv1.energy_in_j == pytest.approx(4 * (E8 - 64 * 0.02 * TAU), abs=4e-6)

    @pytest.mark.timeout(30)
    async def test_commit_is_refused_for_a_wrong_crc_and_an_interlock(self, twin: Twin, twin_keys):
        async with drivers(twin) as ds:
            r1 = ds["R1"]
            sealed = seal(twin_keys, 3, PACKETS[:2])
            crc = await r1.upload_bank(3, entries(sealed, "R1"))
            r1._uploaded = (2, crc ^ 1)  # a master that lost track of what it wrote
            with pytest.raises(CommitError) as err:
                await r1.commit(3, crc ^ 1)
            assert err.value.status == "crc_mismatch" and err.value.router_id == "R1"
            # two packets through PV1's port in one slot: the bank is refused whole
            clash = [
                PlannedPacket("T1", ("PV1", "MEC1"), (3, 3)),
                PlannedPacket("T3", ("PV1", "L41", "MEC3"), (3, 3, 3)),
            ]
            clash = seal(twin_keys, 4, clash)
            crc = await r1.upload_bank(4, entries(clash, "R1"))
            with pytest.raises(CommitError, match="interlock"):
                await r1.commit(4, crc)
            with pytest.raises(ArmError) as arm:
                await r1.arm(4, 10**12)
            assert arm.value.status == "not_ready"
            status = await r1.read_status()
            assert (
                status.counters["crc_refusals"] == 1 and status.counters["interlock_refusals"] == 1
            )
            assert "interlock" in status.alarms
            # the refused bank left the replay state alone: frame 4 can still be committed
            crc = await r1.upload_bank(4, entries(sealed := seal(twin_keys, 4, PACKETS[:2]), "R1"))
            assert (await r1.commit(4, crc)).accepted == len(entries(sealed, "R1"))

    @pytest.mark.timeout(30)
    async def test_estop_opens_every_gate_within_one_slot(self, twin: Twin, twin_keys):
        packets = [PlannedPacket("T1", ("PV1", "MEC1"), (s, s)) for s in range(200)]
        async with drivers(twin) as ds:
            await commit_all({"R1": ds["R1"]}, seal(twin_keys, 2, packets))
            start = await arm_all(twin, {"R1": ds["R1"]}, 2)
            await until(twin, start + 60 * SLOT_US)
            assert twin.closed_gates("R1") in (set(), {(0, 3)})
            before = twin.now()
            await ds["R1"].estop()
            after = twin.now()
            assert twin.closed_gates("R1") == set()
            await until(twin, frame_end(start))
            status = await ds["R1"].read_status()
            delivered = (await ds["R1"].read_meters()).attributions[0].packets
        assert status.state == "fault" and "estop" in status.alarms
        assert status.counters["estops"] == 1
        # nothing after the slot the e-stop arrived in (allowing for the request's own time)
        assert int((before - start) // SLOT_US) <= delivered <= int((after - start) // SLOT_US) + 1

    @pytest.mark.timeout(30)
    async def test_watchdog_opens_every_gate_when_heartbeats_stop(self, twin: Twin, twin_keys):
        # a 1,000-slot frame (5 s): room for the watchdog to trip in the middle of it
        packets = [PlannedPacket("T1", ("PV1", "MEC1"), (s, s)) for s in range(1000)]
        async with drivers(twin, only=["R1"]) as ds:
            r1 = ds["R1"]
            await r1.set_frame_geometry(1000, SLOT_US, 100)
            await commit_all({"R1": r1}, seal(twin_keys, 2, packets))
            await r1.set_watchdog(WATCHDOG_MS)  # a heartbeat that sets the timeout
            start = await arm_all(twin, {"R1": r1}, 2, lead_s=0.02)
            await until(twin, start + 40 * SLOT_US, [r1])  # fed: runs
            assert (await r1.read_status()).state == "running"
            await r1.heartbeat()
            last = twin.now()  # the last heartbeat arrived before this
            await until(twin, last + WATCHDOG_MS * 1000 + 2 * SLOT_US)  # no more heartbeats
            assert twin.closed_gates("R1") == set()
            status = await r1.read_status()
            delivered = (await r1.read_meters()).attributions[0].packets
            await r1.clear_fault()
            cleared = await r1.read_status()
        assert status.state == "safe" and "watchdog" in status.alarms
        assert status.counters["watchdog_trips"] == 1
        assert status.owner_session == 0  # ownership lapsed with it: claimed again to clear
        # every gate opened within the timeout of the last heartbeat
        assert 40 <= delivered <= int((last + WATCHDOG_MS * 1000 - start) // SLOT_US) + 2
        assert cleared.state == "idle" and not cleared.alarms


class TestTcp(BackToBack):
    transport = "tcp"


class TestRtu(BackToBack):
    transport = "rtu"


class TestFramedSerial(BackToBack):
    transport = "serial"
