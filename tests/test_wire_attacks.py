"""Attacks from a plain Modbus client on the bus (pymodbus, the register map, no key)
while a controller runs frames on the twin: forged commits, forged re-arms, the slot
table overwritten after its commit, the controller's own commands recorded and replayed
(stale), plain fault clears and heartbeats. Each costs nothing: every frame is
delivered. And a latched e-stop is cleared only by the controller's authenticated path."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import tomllib
from collections import Counter

import pytest

from bench import bundled_path, parse_dict
from firmware_bridge.keystore import KeyStore
from router.controller.session import Session
from router.journal import read_records
from sim_hw.twin import Twin
from tests.controller_support import bench, config, untimed
from tests.twin_support import drivers
from tests.wire_attack import MAP, PlainClient, RecordingRelay, commands, meanwhile, replay

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
        async with meanwhile(functools.partial(attack, twin.addresses, relay, seen)):
            result = await session.run()
        refusals = {rid: r.counters["command_refusals"] for rid, r in twin.routers.items()}
    assert result.verified.ok, result.verified.one_line()
    assert [o.skipped for o in result.outcomes] == [False] * frames, result.alarms
    for o in result.outcomes:
        assert o.packets_delivered == o.packets_planned == 240, (o.frame, o.problems)
    # nothing went wrong but the attack itself, which the controller saw
    assert all("refused unexecuted by" in a for a in untimed(result.alarms)), result.alarms
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


async def write_the_upload_buffer(
    addresses: dict[str, str], seen: Counter[str], stop: asyncio.Event
) -> None:
    """The review's attack: a plain client that writes garbage where the rows go, over
    and over, on every router, every 5 ms, all through the runs' uploads."""
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(PlainClient(a)) for a in addresses.values()]
        while not stop.is_set():
            for c in clients:
                await c.overwrite_bank()
            seen["rounds"] += 1
            await asyncio.sleep(0.005)
        seen["refused"] = sum(c.refused for c in clients)


async def test_a_writer_on_the_upload_buffer_costs_no_frame_and_raises_interference(tmp_path):
    """Rows travel in the owner's authenticated upload commands (map version 4): the
    writer's every request is refused and counted, the frames run whole, and the
    controller, reading the routers' refusal counters after every frame, says so."""
    KeyStore.init(tmp_path / "keys", bench())
    frames = 3
    seen: Counter[str] = Counter()
    async with Twin(bundled_path(), tmp_path / "keys") as twin:
        session = Session(config(tmp_path, on_addresses(twin.addresses), frames=frames,
                                 hardware=True))  # fmt: skip
        async with meanwhile(functools.partial(write_the_upload_buffer, twin.addresses, seen)):
            result = await session.run()
        counted = {
            rid: r.counters["write_refusals"] + r.counters["command_refusals"]
            for rid, r in twin.routers.items()
        }
    assert [o.skipped for o in result.outcomes] == [False] * frames
    assert [o.packets_delivered for o in result.outcomes] == [240] * frames
    assert seen["rounds"] > 10 and seen["refused"] == 3 * 4 * seen["rounds"]  # every one
    assert sum(counted.values()) == seen["refused"]
    records = list(read_records(result.journal))
    alarms = [r for r in records if r.kind == "alarm" and r.payload["code"] != "frame_late"]
    assert {a.payload["code"] for a in alarms} == {"interference"}, alarms
    assert {a.frame for a in alarms} == {o.frame for o in result.outcomes}  # every frame
    # journaled with the counts: what the routers refused in those frames, router by router
    journaled = Counter()
    for a in alarms:
        for rid, n in a.payload["refused"].items():
            journaled[rid] += n["commands"] + n["writes"]
    assert set(journaled) == set(counted) and all(
        0 < journaled[r] <= counted[r] for r in counted
    ), (journaled, counted)


async def test_forged_commands_during_a_run_are_counted_and_journaled_as_interference(tmp_path):
    """The review's defect 5: forged commands were refused, and nobody heard of it. Once
    the first frame has run, a plain pymodbus client forges 7 commands to R1 (commits,
    arms, heartbeats, a fault clear, a one-row upload) and 3 to R3 (plus one write to a
    coil that does not exist); the controller must report exactly those, in the frames'
    telemetry, and nothing for R2 and R4."""
    KeyStore.init(tmp_path / "keys", bench())
    sent: Counter[str] = Counter()

    async def forge(addresses: dict[str, str], stop: asyncio.Event) -> None:
        async with PlainClient(addresses["R1"]) as r1, PlainClient(addresses["R3"]) as r3:
            while int((await r1.status())["frames_completed"]) < 1 and not stop.is_set():
                await asyncio.sleep(0.01)
            for frame in (1, 2, 3):
                await r1.forge_commit(frame)
            await r1.forge_arm(2, 0)
            await r1.feed_watchdog()
            await r1.clear_fault()
            await r1._command("upload", upload_row=0, upload_rows=1)
            await r3.forge_commit(9)
            await r3.forge_arm(9, 0)
            await r3.feed_watchdog()
            reply = await r3.client.write_coil(40, True, device_id=r3.unit)  # no such coil
            sent.update(R1=r1.refused, R3=r3.refused + reply.isError())

    async with Twin(bundled_path(), tmp_path / "keys") as twin:
        session = Session(config(tmp_path, on_addresses(twin.addresses), frames=3,
                                 hardware=True))  # fmt: skip
        async with meanwhile(functools.partial(forge, twin.addresses)):
            result = await session.run()
        counters = {rid: r.counters.copy() for rid, r in twin.routers.items()}
    assert sent == {"R1": 7, "R3": 4}  # every request refused
    assert [o.packets_delivered for o in result.outcomes] == [240] * 3
    # the routers counted exactly those (the controller's own commands were all accepted)
    assert {r: (c["command_refusals"], c["write_refusals"]) for r, c in counters.items()} == {
        "R1": (7, 0),
        "R2": (0, 0),
        "R3": (3, 1),
        "R4": (0, 0),
    }
    alarms = [
        r for r in read_records(result.journal)
        if r.kind == "alarm" and r.payload["code"] != "frame_late"  # late: a busy machine
    ]  # fmt: skip
    assert {a.payload["code"] for a in alarms} == {"interference"}, alarms
    assert {a.frame for a in alarms} <= {o.frame for o in result.outcomes}  # after frames
    journaled: dict[str, Counter[str]] = {}
    for a in alarms:
        for rid, n in a.payload["refused"].items():
            journaled.setdefault(rid, Counter()).update(n)
    assert journaled == {"R1": Counter(commands=7), "R3": Counter(commands=3, writes=1)}
    assert all(
        "refused unexecuted by" in a.payload["message"] and a.payload["source"] == "controller"
        for a in alarms
    )
