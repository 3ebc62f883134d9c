"""Who may command the controller (issue 13), on a real Mosquitto running the shipped
configuration (deploy/mosquitto: users, passwords made with mosquitto_passwd, the ACL):
a dashboard's command is refused by the broker and never reaches the frame loop; an
operator cannot command under another name; an operator's command is planned and
journaled with the user the broker vouched for. The journal's witness is retained."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from router.controller.session import Session
from router.journal import read_records
from router.journal.witness import parse_witness
from router.mqtt import CommandReply
from tests.controller_support import bench, config
from tests.mosquitto import Broker
from tests.mqtt_support import listening, publish_v5, until

pytestmark = pytest.mark.timeout(180)

SHIPPED = Path(__file__).resolve().parents[1] / "deploy" / "mosquitto"
USERS = {"ppr-controller": "c0ntr0ller", "operator1": "0perat0r", "dashboard": "dashb0ard"}
TREE = "ppr/bench-4"
ACCEPTED = {0, 16}  # success, or success with no subscriber yet
NOT_AUTHORIZED = 135


def transfer(cid: str, tid: str) -> bytes:
    command = {
        "id": cid,
        "transfer": {"id": tid, "source": "PV1", "sink": "MEC3", "packets": 5,
                     "voltage_v": 48.0, "current_a": 8.0, "value": 1.0},
    }  # fmt: skip
    return json.dumps(command).encode()


async def test_only_operators_command_and_the_journal_names_them(tmp_path: Path):
    secret = tmp_path / "controller.pw"
    secret.write_text(USERS["ppr-controller"] + "\n")
    secret.chmod(0o600)
    with Broker(tmp_path / "broker", users=USERS, shipped=SHIPPED) as broker:
        url = f"mqtt://ppr-controller@127.0.0.1:{broker.port}"
        cfg = config(tmp_path, bench(), frames=4, mqtt=url, mqtt_password_file=secret)
        session = Session(cfg)
        async with listening(broker, user="dashboard", password=USERS["dashboard"]) as dash:
            run = asyncio.create_task(session.run())
            await until(lambda: dash.payloads(f"{TREE}/frame"), "a first frame", timeout=120)

            async def publish(user: str, topic: str, payload: bytes) -> int:
                return await asyncio.to_thread(
                    publish_v5, broker, user, USERS[user], f"{TREE}/{topic}", payload
                )

            # read-only users and other names are refused by the broker itself
            assert await publish("dashboard", "cmd/dashboard/transfer", transfer("d", "XD")) == (
                NOT_AUTHORIZED
            )
            assert await publish("dashboard", "cmd/dashboard/estop", b"") == NOT_AUTHORIZED
            assert await publish("operator1", "cmd/dashboard/transfer", transfer("o2", "XO2")) == (
                NOT_AUTHORIZED
            )
            assert await publish("operator1", "cmd/operator1/transfer", transfer("o1", "XO1")) in (
                ACCEPTED
            )

            def replies() -> list[CommandReply]:
                got = dash.payloads(f"{TREE}/cmd/reply")
                return [CommandReply.model_validate_json(p) for p in got]

            await until(replies, "the operator's reply")
            result = await asyncio.wait_for(run, 120)

            # the last witness retained on the broker is the one the key store keeps (the
            # broker passes it on after the controller's publish was acknowledged)
            def witnessed() -> bool:
                got = dash.payloads(f"{TREE}/journal")
                return bool(got) and parse_witness(got[-1]) == result.witness

            await until(witnessed, "the run's final witness on the broker")
        # commands are served in the order the broker delivers them: had a refused one
        # got through, its reply would have come first
        assert [(r.id, r.user, r.ok) for r in replies()] == [("o1", "operator1", True)]
    records = list(read_records(result.journal))
    commands = [r.payload for r in records if r.kind == "command"]
    assert [(c["user"], c["transfer"]["id"]) for c in commands] == [("operator1", "XO1")]
    planned = {p["transfer"] for r in records if r.kind == "plan" for p in r.payload["packets"]}
    assert "XO1" in planned and not planned & {"XD", "XO2"}
