"""Attacks from a plain Modbus client on the bus (pymodbus, the register map, no key)
while a controller runs frames on the twin: forged commits, forged re-arms, the slot
table overwritten after its commit, the controller's own commands recorded and replayed
(stale), plain fault clears and heartbeats. Each costs nothing: every frame is
delivered. And a latched e-stop is cleared only by the controller's authenticated path."""

from __future__ import annotations

import asyncio
import contextlib
import tomllib
from collections import Counter

import pytest

from bench import bundled_path, parse_dict
from firmware_bridge.keystore import KeyStore
from router.controller.session import Session
from sim_hw.twin import Twin
from tests.controller_support import bench, config
from tests.twin_support import drivers
from tests.wire_attack import MAP, PlainClient, RecordingRelay, commands, replay

pytestmark = pytest.mark.timeout(120)


def on_addresses(addresses: dict[str, str]):
    """bench-4 as a lab engineer's --hardware scenario: its routers at these addresses."""
    data = tomllib.loads(bundled_path().read_text())
    for r in data["routers"]:
        r["address"] = addresses[r["id"]]
    return parse_dict(data)[0]


async def attack(
    direct: dict[str, str], relay: RecordingRelay, seen: Counter[str], stop: asyncio.Event
) -> None:
    """After each commit, on every router: garbage over the committed rows, a forged
    commit of another frame, a forged re-arm 7 ms later, plain fault clears and
    heartbeats; now and then, replay the controller's recorded commands to R2. Until
    ``stop``: a cancel can be swallowed by pymodbus while a request is in flight."""
    async with contextlib.AsyncExitStack() as stack:
        clients = {r: await stack.enter_async_context(PlainClient(a)) for r, a in direct.items()}
        done: set[tuple[str, int, int]] = set()
        rounds = 0
        while not stop.is_set():
            for rid, c in clients.items():
                s = await c.status()
                staging = MAP.enum_name("staging", int(s["staging"]))
                frame = int(s["staged_frame"])
                if staging not in ("ready", "armed") or (rid, frame, s["staging"]) in done:
                    continue
                done.add((rid, frame, s["staging"]))
                await c.overwrite_bank()
                await c.forge_commit(frame + 1000)
                await c.forge_arm(frame, await c.frame_start() + 7000)
                await c.clear_fault()
                await c.feed_watchdog()
                seen["after_commit"] += 1
                seen["refused"] = sum(x.refused for x in clients.values())
            rounds += 1
            if rounds % 40 == 0 and (stale := commands(relay.requests)[-12:]):
                seen["replay_batches"] += 1
                seen["replayed"] += len(stale)
                seen["replays_answered"] += await replay(direct["R2"], stale)
            await asyncio.sleep(0.005)


async def test_forged_and_stale_commands_and_bank_writes_cost_no_frame(tmp_path):
    KeyStore.init(tmp_path / "keys", bench())
    frames = 4
    seen: Counter[str] = Counter()
    async with (
        Twin(bundled_path(), tmp_path / "keys") as twin,
        RecordingRelay(twin.addresses["R2"]) as relay,
    ):
        # the controller reaches R2 through the relay: its requests are recorded there
        scenario = on_addresses({**twin.addresses, "R2": relay.address})
        session = Session(config(tmp_path, scenario, frames=frames, hardware=True))
        stop = asyncio.Event()
        attacker = asyncio.create_task(attack(twin.addresses, relay, seen, stop))
        try:
            result = await session.run()
        finally:
            stop.set()
            await asyncio.wait_for(attacker, 30)
        refusals = {rid: r.counters["command_refusals"] for rid, r in twin.routers.items()}
    assert result.verified.ok, result.verified.one_line()
    assert [o.skipped for o in result.outcomes] == [False] * frames, result.alarms
    for o in result.outcomes:
        assert o.packets_delivered == o.packets_planned == 240, (o.frame, o.problems)
    assert not result.alarms
    # the attack ran after (nearly) every commit, and the routers refused what it forged
    assert seen["after_commit"] >= 4 * (frames - 1), seen
    assert all(n > 0 for n in refusals.values()), refusals
    # stale: refused, but for the owner's last command, answered as before and not redone
    assert seen["replayed"] > 0 and seen["replays_answered"] <= seen["replay_batches"], seen


async def test_a_plain_client_cannot_clear_a_latched_estop(tmp_path):
    """The e-stop is the one command anyone may give; clearing it takes the controller's
    authenticated clear-fault (ppr run --clear-estop), never a coil or a forged block."""
    keys = KeyStore.init(tmp_path / "keys", bench())
    async with Twin(bundled_path(), keys.path) as twin, PlainClient(twin.addresses["R1"]) as c:
        reply = await c.client.write_coil(MAP.field("estop").address, True, device_id=c.unit)
        assert not reply.isError()
        await c.clear_fault()
        await c.feed_watchdog()
        state = MAP.enum_name("state", int((await c.status())["state"]))
        assert state == "fault" and c.refused >= 1
        async with drivers(twin, only=["R1"]) as ds:  # the owner's clear-fault
            await ds["R1"].clear_fault()
            status = await ds["R1"].read_status()
    assert status.state == "idle" and not status.alarms
    assert status.counters["command_refusals"] == c.refused
