"""``ppr serve`` as a lab runs it: a separate process on the twin. The admin is made on
the command line; mistakes are one-line errors; Ctrl-C with a live page open stops the
bench first and then the server; a process killed between a clearing and its
settlement loses nothing and clears nothing twice when it is started again."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import subprocess
import threading
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from firmware_bridge.keystore import KeyStore
from router.cli.serve_cmd import bind
from router.journal import read_records, verify_journal
from router.web import accounts
from router.web.server import WebServer
from tests.bench_process import TwinProcess, router_states
from tests.controller_support import bench
from tests.mosquitto import Broker
from tests.web_serve import PASSWORD, Serve, enrol, scenario_file, wait_for
from tests.web_support import Site

pytestmark = pytest.mark.timeout(300)

# bench-4: PV1 and MEC1 on R1, 48 V, 10 A, 4.9 ms of conduction a slot; a packet leaves
# with 2.352 J and loses 100 * (0.02 + 0.03) * 0.0049 = 0.0245 J in the two accesses
ARRIVES_J = 2.3275
# bench-4's own transfers, T1..T6 (bench/data/bench-4.toml): 240 packets a frame
BENCH4_PACKETS = 240


def test_the_admin_is_made_on_the_command_line_with_one_line_errors(tmp_path: Path) -> None:
    serve = Serve(tmp_path, scenario_file(tmp_path / "b.toml"))
    made = serve.create_admin("root")
    assert made.returncode == 0 and "admin 'root' created" in made.stdout
    again = serve.create_admin("root")
    assert again.returncode == 2
    assert again.stderr == "error: --create-admin root: name 'root' is taken; choose another name\n"
    short = serve.create_admin("ada", "short")
    assert short.returncode == 2 and short.stderr.count("\n") == 1
    assert "password must be at least 10 characters" in short.stderr
    assert "Traceback" not in again.stderr + short.stderr
    # the store is readable by its owner only (password hashes, the cookie key)
    assert serve.db.stat().st_mode & 0o777 == 0o600
    assert [tuple(r) for r in serve.rows("SELECT name, role, status FROM users")] == [
        ("root", "admin", "active")
    ]


def test_a_bad_listen_address_or_a_taken_port_is_one_line(tmp_path: Path) -> None:
    serve = Serve(tmp_path, scenario_file(tmp_path / "b.toml"))
    bad = subprocess.run(serve.args("--listen", "nowhere"), capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr == "error: --listen nowhere: give HOST:PORT, e.g. 127.0.0.1:8080\n"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = subprocess.run(
            serve.args("--listen", f"127.0.0.1:{port}"), capture_output=True, text=True
        )
    assert busy.returncode == 2 and busy.stderr.count("\n") == 1
    assert busy.stderr.startswith(f"error: --listen 127.0.0.1:{port}: Address already in use")
    assert "another ppr serve? choose another port" in busy.stderr
    # an address of another machine (TEST-NET-1) is not mistaken for a taken port
    elsewhere = subprocess.run(serve.args("--listen", "192.0.2.1:8080"), capture_output=True,
                               text=True)  # fmt: skip
    assert elsewhere.returncode == 2 and elsewhere.stderr.count("\n") == 1
    assert elsewhere.stderr.startswith("error: --listen 192.0.2.1:8080: Cannot assign")
    assert "not an address of this machine" in elsewhere.stderr
    assert "another ppr serve" not in elsewhere.stderr
    proxy = subprocess.run(serve.args("--trusted-proxy", "everyone"), capture_output=True,
                           text=True)  # fmt: skip
    assert proxy.returncode == 2 and proxy.stderr == (
        "error: --trusted-proxy everyone: give the proxy's IP address (e.g. 127.0.0.1) or "
        "network (10.0.0.0/24)\n"
    )
    assert not (tmp_path / "out").exists()  # nothing started, nothing written
    assert not serve.db.exists()  # not even the database


def test_ctrl_c_with_a_live_page_open_stops_the_bench_then_the_server(tmp_path: Path) -> None:
    serve = Serve(tmp_path, scenario_file(tmp_path / "b.toml", transfers=True))
    assert serve.create_admin("root").returncode == 0
    with serve.start(), serve.client() as admin:
        assert admin.login("root").is_success
        # the live view: the first frame that ran, with bench-4's own traffic
        view = wait_for(
            "a frame on the live view",
            lambda: (v := admin.get("/api/bench").json())["meters"] and v,
        )
        assert view["meters"]["packets_planned"] == BENCH4_PACKETS
        assert view["meters"]["packets_delivered"] == BENCH4_PACKETS
        rows = view["gantt"][0]["rows"]
        assert {"PV1", "MEC1", "L12"} <= rows.keys()
        for resource, cells in rows.items():  # one packet per resource and slot
            slots = [slot for slot, _ in cells]
            assert len(slots) == len(set(slots)), resource
        assert sum(len(c) for c in rows.values()) >= 2 * BENCH4_PACKETS  # two accesses each

        # a page holds the event stream open
        events: list[str] = []
        ended = threading.Event()

        def page() -> None:
            c = httpx.Client(base_url=serve.url, cookies=admin.cookies, timeout=None)
            with c, c.stream("GET", "/api/events") as stream:
                for line in stream.iter_lines():
                    events.append(line)
            ended.set()

        reader = threading.Thread(target=page, daemon=True)
        reader.start()
        wait_for("an event on the stream", lambda: any(e.startswith("data:") for e in events))
        code = serve.stop(signal.SIGINT)
        assert code == 0, serve.output()
        assert ended.wait(30), "the live stream did not end with the server"
        reader.join(10)
    out = serve.output()
    assert "e-stop (web terminal stopped: e-stop): every gate opened" in out
    assert "journal.sqlite: ok" in out
    # the bench stopped cleanly: gates opened (estop), then its run's last record
    kinds = [r.kind for r in read_records(tmp_path / "out" / "journal.sqlite")]
    assert "estop" in kinds and kinds[-1] == "stop"
    assert verify_journal(tmp_path / "out" / "journal.sqlite").ok
    assert verify_journal(tmp_path / "out" / "web-journal.sqlite").ok


def test_killed_mid_interval_nothing_is_lost_or_cleared_twice(tmp_path: Path) -> None:
    serve = Serve(tmp_path, scenario_file(tmp_path / "b.toml", interval=1))
    assert serve.create_admin("root").returncode == 0
    with serve.start(), serve.client() as admin:
        assert admin.login("root").is_success
        ann = enrol(serve, admin, "ann", "PV1")
        bob = enrol(serve, admin, "bob", "MEC1")
        sell = ann.post_json(
            "/api/orders",
            {
                "side": "offer",
                "terminal": "PV1",
                "quantity": 20,
                "price": 1.0,
                "green": True,
                "valid_frames": 10000,
            },
        )
        buy = bob.post_json("/api/orders", {"side": "bid", "terminal": "MEC1", "quantity": 10,
                                            "price": 3.0, "valid_frames": 10000})  # fmt: skip
        assert sell.is_success and buy.is_success, (sell.text, buy.text)
        # the clearing is stored, its trades given to a frame: kill the server right then
        pending = wait_for(
            "a clearing given to a frame",
            lambda: serve.rows("SELECT * FROM clearings WHERE exec_frame IS NOT NULL"),
        )
        serve.proc.kill()  # type: ignore[union-attr]  # SIGKILL: no clean-up at all
        serve.kill()
        cookies = dict(bob.cookies)
        ann.close()
        bob.close()
    (c,) = serve.rows("SELECT * FROM clearings")
    assert c["status"] == "pending", "the kill came after the settlement: nothing tested"
    assert dict(c)["id"] == pending[0]["id"]

    with serve.start():  # the same db, journals and keys: a restart
        done = wait_for(
            "the clearing settled after the restart",
            lambda: serve.rows("SELECT * FROM clearings WHERE status = 'settled'"),
        )
        assert len(serve.rows("SELECT * FROM clearings")) == 1  # never cleared twice
        (c,) = done
        assert c["frame"] == pending[0]["frame"] and c["settled_frame"] > c["frame"]
        # nothing lost: bob's session, orders and what the bench delivered
        again = httpx.Client(base_url=serve.url, cookies=cookies, timeout=30)
        with again:
            (mine,) = again.get("/api/orders").json()
            (trade,) = again.get("/api/trades").json()
            (cert,) = again.get("/api/certificates").json()
        assert (mine["status"], mine["traded"], mine["remaining"]) == ("filled", 10, 0)
        assert mine["delivered_packets"] == pytest.approx(10, abs=0.05)
        assert mine["delivered_j"] == pytest.approx(10 * ARRIVES_J, rel=0.01)
        assert trade["delivered_j"] == pytest.approx(mine["delivered_j"])
        assert cert["joules"] == pytest.approx(trade["delivered_j"])  # ann's offer was green
        (ann_order,) = serve.rows("SELECT status, remaining FROM orders WHERE side = 'offer'")
        assert tuple(ann_order) == ("partial", 10)
        # delivered once: one delivery row per order, in one settled frame
        rows = serve.rows("SELECT order_id, frame, allocated FROM deliveries")
        assert sorted((r["frame"], r["allocated"]) for r in rows) == [
            (c["settled_frame"], 10),
            (c["settled_frame"], 10),
        ]
        assert serve.stop() == 0
    assert verify_journal(tmp_path / "out" / "journal.sqlite").ok
    assert PASSWORD not in (tmp_path / "web.db").read_bytes().decode("latin-1")


def test_an_estop_from_the_page_stops_the_bench_and_the_page_stays(tmp_path: Path) -> None:
    serve = Serve(tmp_path, scenario_file(tmp_path / "b.toml"))
    assert serve.create_admin("root").returncode == 0
    with serve.start(), serve.client() as admin:
        assert admin.login("root").is_success
        ann = enrol(serve, admin, "ann", "PV1")
        wait_for("a frame", lambda: admin.get("/api/bench").json()["frame"])
        assert admin.post("/api/operator/estop", json={}).json() == {"estopped": True}
        # the bench's run ends with its gates open (its journal's last records) ...
        journal = tmp_path / "out" / "journal.sqlite"
        wait_for("the run's stop record", lambda: [r for r in read_records(journal)
                                                   if r.kind == "stop"])  # fmt: skip
        kinds = [r.kind for r in read_records(journal)]
        assert "estop" in kinds and kinds[-1] == "stop"
        # ... the page stays, read only
        assert admin.get("/api/bench").json()["estopped"] is True
        order = {"side": "offer", "terminal": "PV1", "quantity": 1, "price": 1}
        r = ann.post_json("/api/orders", order)
        assert r.status_code == 409 and "e-stopped" in r.json()["error"]
        ann.close()
        assert serve.stop() == 0
    actions = [(r.payload["by"], r.payload["action"])
               for r in read_records(tmp_path / "out" / "web-journal.sqlite")
               if r.kind == "command"]  # fmt: skip
    assert actions[-1] == ("root", "estop")


def test_the_bench_and_mqtt_name_trades_by_clearing_never_by_order(tmp_path: Path) -> None:
    """carol, a third participant, watches the live bench while ann's offer and bob's bid
    trade; a dashboard reads the MQTT feed. Transfers go by the clearing's number and the
    order's rank in it (c12s1-c12b1), never by order ids; bob finds his own in his trades."""
    with Broker(tmp_path / "broker") as broker:
        serve = Serve(tmp_path, scenario_file(tmp_path / "b.toml"), "--mqtt", broker.url())
        assert serve.create_admin("root").returncode == 0
        feed: list[tuple[str, dict[str, Any]]] = []
        dashboard = mqtt.Client(CallbackAPIVersion.VERSION2)
        dashboard.on_message = lambda c, u, m: feed.append((m.topic, json.loads(m.payload)))
        dashboard.connect("127.0.0.1", broker.port)
        dashboard.subscribe("ppr/bench-4/transfer/#", qos=1)
        dashboard.loop_start()
        try:
            with serve.start(), serve.client() as admin:
                assert admin.login("root").is_success
                ann = enrol(serve, admin, "ann", "PV1")
                bob = enrol(serve, admin, "bob", "MEC1")
                carol = enrol(serve, admin, "carol", "PV2")
                # 600 packets each way: three frames of trades (200 slots a frame)
                order = {"quantity": 600, "valid_frames": 10_000}
                sell = ann.post_json("/api/orders", order | {"side": "offer", "terminal": "PV1",
                                                             "price": 1.0})  # fmt: skip
                buy = bob.post_json("/api/orders", order | {"side": "bid", "terminal": "MEC1",
                                                            "price": 3.0})  # fmt: skip
                view = wait_for(
                    "trades on carol's live view",
                    lambda: (v := carol.get("/api/bench").json())["meters"].get("transfers") and v,
                )
                mine = wait_for("bob's trade", lambda: bob.get("/api/trades").json())[-1]
                wait_for("transfers on MQTT", lambda: feed)
                for c in (ann, bob, carol):
                    c.close()
                assert serve.stop() == 0
        finally:
            dashboard.loop_stop()
            dashboard.disconnect()
    trade = re.compile(r"c\d+s1-c\d+b1(\.\d+)?")
    shown = {t["id"] for t in view["meters"]["transfers"]}
    shown |= {tr for cells in view["gantt"][0]["rows"].values() for _, tr in cells}
    published = {topic.rsplit("/", 1)[1] for topic, _ in feed}
    for name in shown | published:
        assert trade.fullmatch(name), name
    for _, payload in feed:
        assert re.fullmatch(r"c\d+s1", payload["seller"]) and re.fullmatch(
            r"c\d+b1", payload["buyer"]
        )
    orders = {f"o{sell.json()['id']}", f"o{buy.json()['id']}"}
    assert not any(o in text for o in orders for text in (json.dumps(view), json.dumps(feed)))
    assert trade.fullmatch(mine["transfer"]) and mine["transfer"] in shown | published


def test_after_an_estop_from_the_page_the_hardware_restarts_with_clear_estop(
    tmp_path: Path,
) -> None:
    """On hardware (ppr twin in its own process: the routers outlive ppr serve) the page's
    e-stop latches every router. Started again, ppr serve refuses in one line, with no
    page address printed first; with --clear-estop it clears them and runs."""
    keys = tmp_path / "keys"
    KeyStore.init(keys, bench())
    with TwinProcess(keys) as twin:
        scenario = twin.scenario_file(tmp_path / "hardware.toml")
        serve = Serve(tmp_path, scenario, "--hardware")
        assert serve.create_admin("root").returncode == 0
        with serve.start(), serve.client() as operator:
            assert operator.login("root").is_success
            wait_for("a frame", lambda: operator.get("/api/bench").json()["frame"])
            assert operator.post("/api/operator/estop", json={}).is_success
            journal = tmp_path / "out" / "journal.sqlite"
            wait_for("the run's stop record", lambda: [r for r in read_records(journal)
                                                       if r.kind == "stop"])  # fmt: skip
            assert serve.stop() == 0
        assert set(asyncio.run(router_states(twin.addresses)).values()) == {"fault"}
        again = subprocess.run(serve.args("--listen", "127.0.0.1:0", "--hardware"),
                               capture_output=True, text=True, timeout=120)  # fmt: skip
        assert again.returncode == 2 and again.stdout == "", again.stdout + again.stderr
        assert again.stderr.count("\n") == 1 and "is e-stopped (state fault)" in again.stderr
        assert "--clear-estop" in again.stderr
        cleared = Serve(tmp_path, scenario, "--hardware", "--clear-estop")
        with cleared.start(), cleared.client() as operator:
            assert operator.login("root").is_success
            # a frame that ran (a loaded machine may skip one while a clock is re-synced)
            view = wait_for(
                "a frame run after the restart",
                lambda: (
                    (v := operator.get("/api/bench").json())["meters"]
                    and not v["meters"]["skipped"]
                    and v
                ),
            )
            assert view["estopped"] is False and view["meters"]["packets_delivered"] > 0
            assert cleared.stop() == 0


async def test_x_forwarded_for_is_believed_from_a_trusted_proxy_only(tmp_path: Path) -> None:
    """Six wrong passwords for root, each with another X-Forwarded-For, through uvicorn as
    ppr serve runs it. By default the header is ignored: all six come from 127.0.0.1 and
    the sixth is refused (5 per account and address). Behind a trusted proxy the header
    names the client: six addresses, one failure each."""
    site = Site(tmp_path)
    accounts.create_admin(site.store, "root", PASSWORD)
    codes = {}
    try:
        for proxies in ((), ("127.0.0.1",)):
            sock = bind("127.0.0.1", 0)
            server = WebServer(site.app, sock, site.terminal, trusted_proxies=proxies)
            server.start(asyncio.get_running_loop().create_future())
            url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            async with httpx.AsyncClient(base_url=url, timeout=30) as c:
                c.headers["x-csrf-token"] = (await c.get("/api/session")).json()["csrf"]
                codes[proxies] = [
                    (
                        await c.post(
                            "/api/login",
                            json={"name": "root", "password": "not the password"},
                            headers={"x-forwarded-for": f"10.9.{len(codes)}.{i}"},
                        )
                    ).status_code
                    for i in range(accounts.MAX_PER_PAIR + 1)
                ]
            await server.stop()
    finally:
        site.close()
    assert codes[()] == [400] * accounts.MAX_PER_PAIR + [429]
    assert codes[("127.0.0.1",)] == [400] * (accounts.MAX_PER_PAIR + 1)
