"""The feed's parts without a broker: outbox policy, broker URLs, topics, commands."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.mqtt import (
    BrokerUrlError,
    EstopCommand,
    Message,
    MqttFeedError,
    Outbox,
    Topics,
    TransferCommand,
    parse_broker_url,
    parse_command,
)
from router.mqtt.commands import MAX_COMMAND_BYTES


def msg(n: int, retain: bool = False, topic: str = "t") -> Message:
    return Message(topic, str(n).encode(), 1, retain)


def payloads(messages: list[Message]) -> list[bytes]:
    return [m.payload for m in messages]


def test_a_full_outbox_drops_the_oldest_and_counts():
    box = Outbox(3)
    for n in range(5):
        box.put(msg(n))
    assert (len(box), box.dropped) == (3, 2)
    assert payloads(box.take(10)) == [b"2", b"3", b"4"]


def test_retained_states_keep_their_latest_value_and_are_never_dropped():
    box = Outbox(2)
    box.put(msg(1, retain=True, topic="a"))
    box.put(msg(2, retain=True, topic="b"))
    box.put(msg(3, retain=True, topic="a"))  # supersedes 1
    for n in range(10):
        box.put(msg(10 + n))
    assert box.dropped == 8
    assert payloads(box.take(3)) == [b"2", b"3", b"18"]  # states first, then telemetry
    box.resend_retained()  # after a reconnect the broker may have lost them
    assert payloads(box.take(10)) == [b"3", b"2", b"19"]


def test_unconfirmed_messages_go_back_to_the_front_in_order():
    box = Outbox(4)
    for n in range(4):
        box.put(msg(n))
    taken = box.take(2)
    box.put(msg(4))
    box.put(msg(5))
    box.requeue(taken)  # the connection broke before the broker acknowledged them
    assert box.dropped == 2  # six messages for four places: the oldest two go
    assert payloads(box.take(10)) == [b"2", b"3", b"4", b"5"]


def test_a_requeued_state_does_not_overwrite_a_newer_one():
    box = Outbox(4)
    box.put(msg(1, retain=True, topic="a"))
    taken = box.take(1)
    box.put(msg(2, retain=True, topic="a"))
    box.requeue(taken)
    assert payloads(box.take(10)) == [b"2"]


def test_broker_urls():
    plain = parse_broker_url("mqtt://broker.lab")
    assert (plain.host, plain.port, plain.tls, plain.username) == ("broker.lab", 1883, False, None)
    auth = parse_broker_url("mqtts://ops:p%40ss@10.0.0.5:8884?ca=/etc/ca.pem&client_id=ctl-1")
    assert (auth.port, auth.tls, auth.username, auth.password) == (8884, True, "ops", "p@ss")
    assert (auth.ca_file, auth.client_id) == (Path("/etc/ca.pem"), "ctl-1")
    assert auth.redacted() == "mqtts://ops:***@10.0.0.5:8884"
    assert "p@ss" not in repr(auth)
    assert parse_broker_url("mqtts://h").port == 8883


def test_the_password_may_come_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PPR_MQTT_PASSWORD", "from-env")
    assert parse_broker_url("mqtt://ops@h").password == "from-env"
    assert parse_broker_url("mqtt://ops:given@h").password == "given"
    assert parse_broker_url("mqtt://h").password is None


def test_the_password_may_come_from_a_file_only_its_owner_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("PPR_MQTT_PASSWORD", raising=False)
    secret = tmp_path / "pw"
    secret.write_text("s3cret:@/\n")
    secret.chmod(0o600)
    assert parse_broker_url("mqtt://ops@h", secret).password == "s3cret:@/"
    secret.chmod(0o640)
    with pytest.raises(BrokerUrlError, match=r"readable by group or others \(mode 0640\)"):
        parse_broker_url("mqtt://ops@h", secret)
    with pytest.raises(BrokerUrlError, match="no password for user 'ops'; give"):
        parse_broker_url("mqtt://ops@h")


def test_a_password_in_a_bad_url_is_never_shown():
    for url in ("mqtt://ops:s3cret@h/x", "mqtt://ops:s3cret@h?qos=2", "mqtt://ops:s3cret@h:0x"):
        with pytest.raises(BrokerUrlError) as info:
            parse_broker_url(url)
        assert "s3cret" not in str(info.value) and "mqtt://ops:***@h" in str(info.value)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://h", "the scheme must be mqtt:// or mqtts://"),
        ("mqtt://", "no broker host"),
        ("mqtt://h:99999", "the port must be a number in 1..65535"),
        ("mqtt://h/topic", "a broker URL has no path"),
        ("mqtt://h?ca=x", "TLS options need an mqtts:// URL"),
        ("mqtts://h?cert=c.pem", "a client certificate needs both cert= and key="),
        ("mqtts://h?insecure=yes", "insecure= takes 0 or 1"),
        ("mqtt://h?qos=2", "unknown option 'qos'"),
    ],
)
def test_bad_broker_urls_say_why(url: str, message: str):
    with pytest.raises(BrokerUrlError, match=message):
        parse_broker_url(url)


def test_a_missing_ca_file_is_a_set_up_error():
    config = parse_broker_url("mqtts://h?ca=/nonexistent/ca.pem")
    with pytest.raises(BrokerUrlError, match="TLS set-up failed"):
        config.tls_context()


def test_topics():
    topics = Topics.for_scenario("bench-4")
    assert topics.topic("port", router="R1", port=2) == "ppr/bench-4/router/R1/port/2"
    assert topics.commands == {
        "ppr/bench-4/cmd/+/estop": "estop",
        "ppr/bench-4/cmd/+/transfer": "cmd_transfer",
    }
    assert topics.command_of("ppr/bench-4/cmd/op-1/transfer") == ("cmd_transfer", "op-1")
    assert topics.command_of("ppr/bench-4/cmd/op-1/estop") == ("estop", "op-1")
    for other in ("ppr/bench-4/cmd/estop", "ppr/bench-4/cmd/op/reply", "ppr/x/cmd/op/estop"):
        assert topics.command_of(other) is None
    assert Topics("/site/a/").prefix == "site/a"
    for bad in ("", "a/+/b", "a/#", "a//b"):
        with pytest.raises(MqttFeedError, match="needs non-empty levels"):
            Topics(bad)


def test_commands_parse_or_answer_with_the_first_error():
    assert parse_command("estop", b"  ") == EstopCommand()
    assert parse_command("estop", b'{"id": "op-1", "reason": "smoke"}') == EstopCommand(
        id="op-1", reason="smoke"
    )
    cmd = parse_command(
        "transfer",
        b'{"transfer": {"id": "X", "source": "PV1", "sink": "MEC1", "packets": 2,'
        b' "voltage_v": 48.0, "current_a": 5.0, "value": 0.5}}',
    )
    assert isinstance(cmd, TransferCommand) and cmd.transfer.packets == 2
    bad_id = parse_command("estop", b'{"id": "a b c", "extra": 1}')
    assert (bad_id.id, bad_id.ok) == (None, False)  # type: ignore[union-attr]
    huge = parse_command("transfer", b" " * (MAX_COMMAND_BYTES + 1))
    assert "at most 16384" in str(huge.error)  # type: ignore[union-attr]
    not_object = parse_command("transfer", b"[1, 2]")
    assert (
        not_object.error
        == "payload: Input should be a valid dictionary or instance of TransferCommand"
    )  # type: ignore[union-attr]
