"""A transfer command asks for what one frame can carry, and can be withdrawn (review of
issues 12-13, defect 4), on a real Mosquitto: a transfer of a million packets was
accepted and re-requested every frame, slowing every plan, with no way to take it back."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiomqtt
import pytest

from router.controller.session import Session
from router.journal import read_records
from router.mqtt import CommandReply
from tests.controller_support import bench, config
from tests.mosquitto import Broker
from tests.mqtt_support import listening, until

pytestmark = pytest.mark.timeout(180)

TREE = "ppr/bench-4"
X = {"source": "PV1", "sink": "MEC3", "voltage_v": 48.0, "current_a": 8.0, "value": 1.0}


def transfer(tid: str, packets: int, **window: int) -> bytes:
    return json.dumps({"id": f"c-{tid}", "transfer": {"id": tid, "packets": packets, **X,
                                                     **window}}).encode()  # fmt: skip


async def test_a_transfer_is_capped_at_a_frame_and_a_commanded_one_withdrawn(tmp_path: Path):
    with Broker(tmp_path / "broker") as broker:
        session = Session(config(tmp_path, bench(), frames=9, mqtt=broker.url()))
        async with (
            listening(broker, f"{TREE}/#") as dash,
            aiomqtt.Client("127.0.0.1", broker.port) as operator,
        ):
            run = asyncio.create_task(session.run())
            await until(lambda: dash.payloads(f"{TREE}/frame"), "a first frame", timeout=120)

            async def send(command: str, payload: bytes) -> None:
                await operator.publish(f"{TREE}/cmd/op/{command}", payload, qos=1)

            def replies() -> dict[str | None, CommandReply]:
                got = dash.payloads(f"{TREE}/cmd/reply")
                return {r.id: r for r in map(CommandReply.model_validate_json, got)}

            # bench-4: 200 slots a frame, one packet of a transfer a slot, in its window
            await send("transfer", transfer("X2", 1_000_000))
            await send("transfer", transfer("X3", 11, release_slot=150, deadline_slot=159))
            await send("transfer", transfer("X1", 200))  # all a frame can carry: accepted
            await send("withdraw", b'{"id": "w-T1", "transfer": "T1"}')
            await until(lambda: len(replies()) == 4, "four replies")
            await until(lambda: dash.payloads(f"{TREE}/transfer/X1"), "X1 planned and run")
            await send("withdraw", b'{"id": "w-X1", "transfer": "X1"}')
            await send("withdraw", b'{"id": "w-again", "transfer": "X1"}')
            await until(lambda: len(replies()) == 6, "the withdrawals' replies")
            result = await asyncio.wait_for(run, 120)
    got = replies()
    assert got["c-X2"].error == (
        "transfer 'X2': 1000000 packets, but a frame carries at most 200 of it (one a slot, "
        "slots 0..199); it is requested again every frame: ask for at most 200"
    )
    assert got["c-X3"].error is not None and "at most 10 of it" in got["c-X3"].error
    assert "slots 150..159" in got["c-X3"].error
    assert got["c-X1"].ok and got["w-X1"].ok, got
    assert got["w-T1"].error == (
        "transfer 'T1' is the scenario's, not a command's: only a commanded transfer can be "
        "withdrawn"
    )
    assert got["w-again"].error == "transfer 'X1' is not a transfer a command added"
    assert all(r.user == "op" for r in got.values())

    # the journal: X1 added and withdrawn by op, planned only in frames whose planning
    # began (the frame number reserved) before the withdrawal, and in none after it
    records = list(read_records(result.journal))
    commands = [(r.payload["command"], r.payload["user"]) for r in records if r.kind == "command"]
    assert commands == [("transfer", "op"), ("withdraw", "op")]
    added, withdrawn = (i for i, r in enumerate(records) if r.kind == "command")
    reserved = {r.frame: i for i, r in enumerate(records) if r.kind == "frame"
                and r.payload.get("phase") == "reserved"}  # fmt: skip
    plans = {r.frame: (i, r.payload["packets"]) for i, r in enumerate(records) if r.kind == "plan"}
    with_x1 = [f for f, (_, ps) in plans.items() if any(p["transfer"] == "X1" for p in ps)]
    assert with_x1 and all(added < plans[f][0] and reserved[f] < withdrawn for f in with_x1)
    after = [f for f in plans if reserved[f] > withdrawn]
    assert after and not set(after) & set(with_x1)  # planned after it: without X1
    assert not {p["transfer"] for _, ps in plans.values() for p in ps} & {"X2", "X3"}
