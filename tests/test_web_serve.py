"""``ppr serve`` as a lab runs it: a separate process on the twin. The admin is made on
the command line; mistakes are one-line errors; Ctrl-C with a live page open stops the
bench first and then the server; a process killed between a clearing and its
settlement loses nothing and clears nothing twice when it is started again."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
from pathlib import Path

import httpx
import pytest

from router.journal import read_records, verify_journal
from tests.web_serve import PASSWORD, Serve, enrol, scenario_file, wait_for

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
    assert not (tmp_path / "out").exists()  # nothing started, nothing written


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
