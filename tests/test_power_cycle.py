"""A router power cycle (``ppr twin`` restarted on the same key store): the replay mark,
the key epoch and a latched e-stop survive it, the claim challenge moves on. Everything
the controller sent for a frame, recorded on the wire and replayed verbatim after the
restart by a plain client, is refused: nothing is armed, nothing runs."""

from __future__ import annotations

import asyncio

import pytest

from firmware_bridge.driver import Credentials, RouterDriver, new_session, open_driver
from firmware_bridge.errors import CommitError
from firmware_bridge.keystore import KeyStore
from scheduler import PlannedPacket
from tests.bench_process import TwinProcess
from tests.controller_support import bench
from tests.twin_support import entries, seal
from tests.wire_attack import MAP, PlainClient, RecordingRelay, replay

pytestmark = pytest.mark.timeout(120)
T1 = [PlannedPacket("T1", ("PV1", "MEC1"), (s, s)) for s in range(3, 6)]


def genuine(address: str, store: KeyStore) -> RouterDriver:
    """R1's driver in a new controller session, with the key store's command key."""
    creds = Credentials(store.command_keys()["R1"], new_session())
    return open_driver(address, "R1", credentials=creds)


async def test_a_replayed_frame_after_a_power_cycle_is_refused_and_state_is_kept(tmp_path):
    store = KeyStore.init(tmp_path / "keys", bench())
    sealed = seal(store, 5, T1)
    with TwinProcess(store.path) as twin:
        async with (
            RecordingRelay(twin.addresses["R1"]) as relay,
            genuine(relay.address, store) as d,
        ):
            await d.set_watchdog(0)
            await d.commit(5, await d.upload_bank(5, entries(sealed, "R1")))
            await d.arm(5, (await d.read_clock()).t_router_us + 300_000)
            while (await d.read_status()).frames_completed < 1:
                await asyncio.sleep(0.05)
            assert (await d.read_meters()).ports[3].energy_out_j > 0
            recorded = list(relay.requests)  # what a sniffer on R1's link saw
        async with PlainClient(twin.addresses["R2"]) as c:  # and someone e-stops R2
            await c.client.write_coil(MAP.field("estop").address, True, device_id=c.unit)
    with TwinProcess(store.path) as twin:  # power cycle
        answered = await replay(twin.addresses["R1"], recorded)
        async with open_driver(twin.addresses["R1"], "R1") as r1:
            status = await r1.read_status()
            start = (await r1.read_block("clock"))["frame_start_us"]
            assert (status.state, status.staging, start) == ("idle", "loading", 0)
            session = await r1.read_block("session")
        assert status.frames_completed == 0 and status.counters["command_refusals"] > 0
        assert answered < len(recorded)  # reads and window writes are answered, not commands
        # kept across power-up: the replay mark, and R2's e-stop; the challenge moved on
        assert status.replay_mark == 5 and int(session["challenge"]) >> 32 == 2
        async with open_driver(twin.addresses["R2"], "R2") as r2:
            assert (await r2.read_status()).state == "fault"
        # a controller that lost its frame counter and seals frame 5 again: the router
        # itself refuses it (the same nonces under the same keys would run twice)
        async with genuine(twin.addresses["R1"], store) as d:
            with pytest.raises(CommitError, match="replayed_frame"):
                await d.commit(5, await d.upload_bank(5, entries(sealed, "R1")))
            sixth = seal(store, 6, T1)
            assert (await d.commit(6, await d.upload_bank(6, entries(sixth, "R1")))).accepted == 3
