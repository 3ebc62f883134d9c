"""The web terminal's HTTP API through Starlette's test client, on a real SQLite store
and a real signed journal: accounts, roles, sessions, CSRF, headers, privacy, the rate
limits, orders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from router.journal import read_records
from router.web import accounts
from router.web import clearing as clearings
from router.web.stage import BookStage
from tests.web_support import PASSWORD, Site, bid, login, offer


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    s = Site(tmp_path)
    yield s
    s.close()


def commands(site: Site) -> list[tuple[str, str]]:
    return [
        (r.payload["by"], r.payload["action"])
        for r in read_records(site.journal.path)
        if r.kind == "command"
    ]


def test_registering_never_makes_an_admin_and_waits_for_approval(site: Site) -> None:
    c = site.client()
    assert c.get("/api/session").json()["has_admin"] is False
    # on an empty terminal the first registrant is a pending participant like any other
    first = c.post("/api/register", json={"name": "eve", "password": PASSWORD}).json()
    assert first == {"name": "eve", "status": "pending", "role": "participant"}
    r = login(c, "eve")
    assert r.status_code == 400 and "awaits approval" in r.json()["error"]

    admin = site.admin("root")  # made on the server's command line
    assert admin.get("/api/session").json()["has_admin"] is True
    ann = site.client()
    assert ann.post("/api/register", json={"name": "ann", "password": PASSWORD}).status_code == 200
    ann_id = next(u["id"] for u in admin.get("/api/admin/users").json() if u["name"] == "ann")
    r = admin.post(f"/api/admin/users/{ann_id}", json={"action": "approve"})
    assert r.status_code == 200 and r.json()["status"] == "active"
    r = admin.post(f"/api/admin/users/{ann_id}", json={"action": "assign", "terminal": "PV1"})
    assert r.json()["terminals"] == ["PV1"]
    assert login(ann, "ann").status_code == 200
    assert ann.get("/api/session").json()["terminals"] == [{"id": "PV1", "kind": "source"}]

    # the password is stored as an argon2id hash, never in clear
    stored = site.store.rows("SELECT pw_hash FROM users WHERE name = 'ann'")[0]["pw_hash"]
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    # both admin actions are in the signed journal
    assert commands(site) == [("root", "approve"), ("root", "assign")]


def test_bad_registration_names_the_field(site: Site) -> None:
    c = site.client()
    r = c.post("/api/register", json={"name": "a b", "password": PASSWORD})
    assert r.status_code == 400 and r.json()["field"] == "name"
    r = c.post("/api/register", json={"name": "abc", "password": "short"})
    assert r.json() == {
        "error": "must be at least 10 characters (at most 1024)",
        "field": "password",
    }


def test_registrations_are_limited_per_address(site: Site) -> None:
    c = site.client("10.0.0.7")
    for i in range(accounts.MAX_REGISTRATIONS_PER_ADDRESS):
        r = c.post("/api/register", json={"name": f"bot{i}", "password": PASSWORD})
        assert r.status_code == 200
    r = c.post("/api/register", json={"name": "bot9", "password": PASSWORD})
    assert r.status_code == 429 and "from this address" in r.json()["error"]
    other = site.client("10.0.0.8")  # another address is not affected
    assert other.post("/api/register", json={"name": "ann", "password": PASSWORD}).is_success
    assert site.count("users") == accounts.MAX_REGISTRATIONS_PER_ADDRESS + 1


def test_state_changing_requests_without_the_csrf_token_are_refused(site: Site) -> None:
    site.admin()
    ann = site.user("ann", terminals=("PV1",))
    bare = TestClient(site.app, cookies=ann.cookies)  # same session cookie, no token
    for path, body in (
        ("/api/orders", {"side": "offer", "terminal": "PV1", "quantity": 1, "price": 1}),
        ("/api/register", {"name": "mallory", "password": PASSWORD}),
        ("/api/logout", {}),
    ):
        r = bare.post(path, json=body)
        assert r.status_code == 403 and "CSRF" in r.json()["error"]
    r = bare.post("/api/orders", json={}, headers={"x-csrf-token": "forged"})
    assert r.status_code == 403
    assert site.count("orders") == 0 and site.count("users") == 2
    # the session cookie is HttpOnly and SameSite=strict
    raw = TestClient(site.app).get("/api/session").headers["set-cookie"].lower()
    assert "httponly" in raw and "samesite=strict" in raw


def test_every_answer_carries_the_security_headers(site: Site) -> None:
    c = site.client()
    for path in ("/", "/static/app.js", "/api/session", "/api/book"):
        h = c.get(path).headers
        csp = h["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, path
        assert "default-src 'none'" in csp and "unsafe-inline" not in csp
        assert h["x-frame-options"] == "DENY" and h["x-content-type-options"] == "nosniff"
    # the page loads nothing from elsewhere and runs no inline script
    page = c.get("/").text
    assert "http://" not in page and "https://" not in page and "<script>" not in page


def test_roles_guard_operator_and_admin_endpoints(site: Site) -> None:
    site.admin()
    ann = site.user("ann", terminals=("PV1",))
    op = site.user("olga", role="operator")
    assert ann.post("/api/operator/settings", json={"interval": "3"}).status_code == 403
    assert ann.post("/api/operator/estop", json={}).status_code == 403
    assert ann.post("/api/operator/clear", json={}).status_code == 403
    assert ann.get("/api/admin/users").status_code == 403
    assert op.get("/api/admin/users").status_code == 403
    assert offer(op).status_code == 403  # operators run the market, they do not trade in it
    r = op.post("/api/operator/settings", json={"mechanism": "auction"})
    assert r.status_code == 400 and r.json()["field"] == "mechanism"
    r = op.post("/api/operator/settings", json={"interval": "0"})
    assert r.status_code == 400 and r.json()["field"] == "interval"
    r = op.post("/api/operator/settings", json={"mechanism": "nash", "interval": "3"})
    assert r.json() == {"mechanism": "nash", "interval": 3, "scenario_interval": 1}
    # back to the scenario's interval
    r = op.post("/api/operator/settings", json={"interval": "scenario"})
    assert r.json()["interval"] == 1
    acts = [a for _, a in commands(site)]
    assert acts == ["settings", "settings"]  # refused requests change nothing, journal nothing


def test_anonymous_visitors_see_the_login_only(site: Site) -> None:
    site.admin()
    ann = site.user("ann", terminals=("PV1",))
    assert offer(ann).status_code == 200
    anon = site.client()
    for path in ("/api/book", "/api/orders", "/api/clearings", "/api/bench", "/api/events",
                 "/api/trades", "/api/deliveries", "/api/certificates", "/api/view"):  # fmt: skip
        r = anon.get(path)
        assert r.status_code == 401 and r.json()["error"] == "log in first", path
    assert anon.get("/api/session").json()["user"] is None


def test_orders_are_checked_like_the_scenario_file(site: Site) -> None:
    site.admin()
    ann = site.user("ann", terminals=("PV1", "MEC1"))
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"price": -1}, "price", "must be a finite number >= 0 (got -1)"),
        ({"price": 2e6}, "price", "must be <= 1000000.0 (got 2000000.0)"),
        ({"terminal": "PV2"}, "terminal", "'PV2' is not one of your terminals (MEC1, PV1)"),
        ({"side": "bid"}, "terminal", "terminal 'PV1' is a source and cannot buy (bid)"),
        ({"quantity": 2.5}, "quantity", "must be a whole number of packets (got 2.5)"),
        ({"quantity": "x"}, "quantity", "must be a number (got 'x')"),
        ({"quantity": 0}, "quantity", "must be at least one packet"),
        ({"valid_frames": 0}, "valid_frames", "must be a whole number from 1 to 1000000"),
    ]
    for change, field, message in cases:
        r = offer(ann, **change)
        assert (r.status_code, r.json()) == (400, {"error": message, "field": field}), change
    assert site.count("orders") == 0

    # kWh: every bench-4 terminal is 48 V, 10 A; a 5 ms slot with a 100 us guard
    # conducts 4.9 ms -> 48 * 10 * 0.0049 = 2.352 J a packet
    kwh = 100 * 2.352 / 3.6e6
    r = offer(ann, unit="kwh", quantity=kwh, green="on")
    assert r.status_code == 200 and r.json()["packets"] == 100 and r.json()["green"] is True
    assert r.json()["remaining"] == 100 and r.json()["status"] == "open"


def test_orders_are_refused_while_the_bench_is_estopped(site: Site) -> None:
    site.admin()
    ann = site.user("ann", terminals=("PV1",))
    site.terminal.bench.estopped = True
    r = offer(ann)
    assert r.status_code == 409 and "e-stopped" in r.json()["error"]
    assert site.count("orders") == 0


def test_a_participant_never_reads_anothers_orders(site: Site) -> None:
    site.admin()
    ann = site.user("ann", terminals=("PV1",))
    bob = site.user("bob", terminals=("MEC1",))
    mine = offer(ann, price=1.25).json()
    assert [o["id"] for o in ann.get("/api/orders").json()] == [mine["id"]]
    assert bob.get("/api/orders").json() == []
    # the book shows the quote but neither its owner nor its id
    assert bob.get("/api/book").json()["offers"] == [
        {"side": "offer", "terminal": "PV1", "packets": 20, "price": 1.25, "green": False}
    ]
    # bob cannot cancel it (the refusal reads like a missing order), see accounts, or
    # place orders on ann's terminal
    r = bob.post(f"/api/orders/{mine['id']}/cancel", json={})
    assert r.status_code == 400 and r.json()["error"] == f"no open order {mine['id']} of yours"
    assert bob.get("/api/admin/users").status_code == 403
    assert offer(bob).json()["field"] == "terminal"
    assert site.store.rows("SELECT status FROM orders")[0]["status"] == "open"
    # nothing else bob can GET carries ann's name or her order id
    for path in ("/api/session", "/api/book", "/api/orders", "/api/clearings", "/api/bench",
                 "/api/trades", "/api/deliveries", "/api/certificates", "/api/view"):  # fmt: skip
        body = bob.get(path).text
        assert "ann" not in body and f'"id": {mine["id"]}' not in body.replace(":", ": ")


def test_failed_logins_lock_the_address_not_the_account(site: Site) -> None:
    site.admin("root")
    mallory = site.client("10.6.6.6")
    for _ in range(accounts.MAX_PER_PAIR):
        assert login(mallory, "root", "wrong password!").status_code == 400
    r = login(mallory, "root")  # even the right password, from that address
    assert r.status_code == 429 and "this account from your address" in r.json()["error"]
    # the admin logs in from anywhere else
    assert login(site.client("10.0.0.1"), "root").status_code == 200
    # an address that fails MAX_PER_ADDRESS times in all is refused for every account
    for i in range(accounts.MAX_PER_ADDRESS - accounts.MAX_PER_PAIR):
        login(mallory, f"nobody{i}", "wrong password!")
    site.user("bob")
    r = login(mallory, "bob")
    assert r.status_code == 429 and "your address" in r.json()["error"]
    assert login(site.client("10.0.0.2"), "bob").status_code == 200


def test_the_lock_lifts_when_the_window_passes_and_old_failures_are_pruned(site: Site) -> None:
    accounts.create_admin(site.store, "root", PASSWORD)
    t0 = 1_000_000.0
    for _ in range(accounts.MAX_PER_PAIR):
        with pytest.raises(accounts.AccountError):
            accounts.login(site.store, "root", "wrong password!", "10.6.6.6", now=t0)
    with pytest.raises(accounts.RateLimitedError):
        accounts.login(site.store, "root", PASSWORD, "10.6.6.6", now=t0 + accounts.WINDOW_S - 1)
    later = t0 + accounts.WINDOW_S + 1
    with pytest.raises(accounts.AccountError):  # one more failure, a window later ...
        accounts.login(site.store, "root", "wrong password!", "10.6.6.6", now=later)
    assert site.count("login_failures") == 2  # ... prunes the old ones (pair + address)
    assert accounts.login(site.store, "root", PASSWORD, "10.6.6.6", now=later).name == "root"


def test_logout_and_disabling_revoke_the_session_on_the_server(site: Site) -> None:
    site.admin("root")
    ann = site.user("ann", terminals=("PV1",))
    copy = TestClient(site.app, cookies=dict(ann.cookies))  # someone who stole the cookie
    assert copy.get("/api/orders").status_code == 200
    out = ann.post("/api/logout", json={})
    assert out.status_code == 200
    ann.headers["x-csrf-token"] = out.json()["csrf"]
    assert copy.get("/api/orders").status_code == 401  # the old cookie is dead
    assert login(ann, "ann").status_code == 200
    copy = TestClient(site.app, cookies=dict(ann.cookies))
    accounts.set_status(site.store, site.uid("ann"), "disabled")
    assert copy.get("/api/orders").status_code == 401
    accounts.set_status(site.store, site.uid("ann"), "active")
    assert copy.get("/api/orders").status_code == 401  # re-enabling revives no session
    assert site.count("sessions") == 1  # root's


def test_the_last_admin_cannot_disable_or_demote_themselves(site: Site) -> None:
    root = site.admin("root")
    me = site.uid("root")
    for body in ({"action": "disable"}, {"action": "role", "role": "operator"}):
        r = root.post(f"/api/admin/users/{me}", json=body)
        assert r.status_code == 400 and "last active admin" in r.json()["error"], body
    assert accounts.get_user(site.store, me) == accounts.User(me, "root", "admin", "active")
    # with a second admin, either may step down
    site.user("ada", role="admin")
    assert root.post(
        f"/api/admin/users/{me}", json={"action": "role", "role": "operator"}
    ).is_success
    ada = site.uid("ada")
    assert accounts.get_user(site.store, ada).role == "admin"  # type: ignore[union-attr]
    with pytest.raises(accounts.AccountError, match="last active admin"):
        accounts.set_status(site.store, ada, "disabled")


def test_restart_keeps_accounts_orders_and_sessions(site: Site) -> None:
    site.admin()
    ann = site.user("ann", terminals=("PV1",))
    order = offer(ann).json()
    site.close()
    site.open()
    again = TestClient(site.app, cookies=dict(ann.cookies))  # key and session in the store
    assert [o["id"] for o in again.get("/api/orders").json()] == [order["id"]]
    assert login(site.client(), "ann").status_code == 200


def test_cancel_withdraws_what_is_left(site: Site) -> None:
    site.admin()
    ann = site.user("ann", terminals=("MEC1",))
    order = bid(ann).json()
    assert ann.post(f"/api/orders/{order['id']}/cancel", json={}).is_success
    (mine,) = ann.get("/api/orders").json()
    assert mine["status"] == "cancelled" and mine["traded"] == 0
    assert ann.get("/api/book").json()["bids"] == []


def test_moving_a_terminal_withdraws_the_old_owners_orders(site: Site) -> None:
    """carol bids on MEC1; the admin gives MEC1 to eve: carol's bid leaves the book (the
    energy would reach eve's terminal while carol paid), the journal says which; a book
    clearing then has no bid to fill. Unassigning does the same."""
    admin = site.admin()
    ann = site.user("ann", terminals=("PV1",))
    carol = site.user("carol", terminals=("MEC1", "MEC2"))
    eve = site.user("eve")
    assert offer(ann).is_success
    mine = bid(carol).json()
    r = admin.post(f"/api/admin/users/{site.uid('eve')}", json={"action": "assign",
                                                                "terminal": "MEC1"})  # fmt: skip
    assert r.status_code == 200 and r.json()["cancelled"] == [mine["id"]]
    (order,) = carol.get("/api/orders").json()
    assert (order["id"], order["status"]) == (mine["id"], "cancelled")
    assert eve.get("/api/orders").json() == []
    assert carol.get("/api/book").json()["bids"] == []
    (record,) = [r.payload for r in read_records(site.journal.path) if r.kind == "command"]
    assert record == {"source": "web", "by": "root", "action": "assign", "user": "eve",
                      "terminal": "MEC1", "cancelled": [mine["id"]]}  # fmt: skip
    stage = BookStage(site.terminal)
    stage._clear(2, site.scenario, site.topology, "vcg", asked=True)
    stage.close()
    assert site.count("clearings") == 0
    # carol's other terminal, unassigned: her bid on it goes too; eve keeps MEC1
    other = bid(carol, terminal="MEC2").json()
    r = admin.post(f"/api/admin/users/{site.uid('carol')}", json={"action": "unassign",
                                                                  "terminal": "MEC2"})  # fmt: skip
    assert r.json()["terminals"] == [] and r.json()["cancelled"] == [other["id"]]
    r = admin.post(f"/api/admin/users/{site.uid('carol')}", json={"action": "unassign",
                                                                  "terminal": "MEC1"})  # fmt: skip
    assert r.status_code == 400 and r.json() == {"error": "'MEC1' is not carol's",
                                                 "field": "terminal"}  # fmt: skip
    assert accounts.terminals_of(site.store, site.uid("eve")) == ["MEC1"]


def test_a_terminal_with_trades_still_to_run_is_not_moved(site: Site) -> None:
    admin = site.admin()
    ann = site.user("ann", terminals=("PV1",))
    bob = site.user("bob", terminals=("MEC1",))
    site.user("eve")
    assert offer(ann).is_success and bid(bob).is_success
    clearing = clearings.clear_book(site.store, site.scenario, site.topology, "vcg", 2)
    assert clearing is not None and clearing.status == "pending"
    r = admin.post(f"/api/admin/users/{site.uid('eve')}", json={"action": "assign",
                                                                "terminal": "MEC1"})  # fmt: skip
    assert r.status_code == 400 and r.json()["field"] == "terminal"
    assert "trades of the clearing for frame 2 still to run" in r.json()["error"]
    assert accounts.terminals_of(site.store, site.uid("bob")) == ["MEC1"]


def test_disabling_an_account_withdraws_its_orders(site: Site) -> None:
    admin = site.admin()
    bob = site.user("bob", terminals=("PV1",))
    dan = site.user("dan", terminals=("MEC1",))
    olga = site.user("olga", terminals=("PV2",))
    sell = offer(bob).json()
    assert bid(dan).is_success
    r = admin.post(f"/api/admin/users/{site.uid('bob')}", json={"action": "disable"})
    assert r.status_code == 200 and r.json()["cancelled"] == [sell["id"]]
    assert dan.get("/api/book").json()["offers"] == []
    stage = BookStage(site.terminal)
    stage._clear(2, site.scenario, site.topology, "vcg", asked=True)
    stage.close()
    assert site.count("clearings") == 0  # bob's offer never trades
    assert site.store.rows("SELECT status FROM orders WHERE id = ?", (sell["id"],))[0][0] == (
        "cancelled"
    )
    # an operator never trades either: becoming one withdraws the orders too
    mine = offer(olga, terminal="PV2").json()
    r = admin.post(f"/api/admin/users/{site.uid('olga')}", json={"action": "role",
                                                                 "role": "operator"})  # fmt: skip
    assert r.json()["cancelled"] == [mine["id"]]
    acts = [(r.payload["action"], r.payload.get("cancelled")) for r in read_records(
        site.journal.path) if r.kind == "command"]  # fmt: skip
    assert acts == [("disable", [sell["id"]]), ("role", [mine["id"]])]


def test_an_orders_default_validity_reaches_the_next_clearings(site: Site) -> None:
    """Interval 20, the next frame 105: an order placed now is surely in the book for the
    clearing of frame 120 (that of 105 may have read the book already). By default it
    stays 16 frames to 120 and 20 more; fewer frames than reach 120 are refused."""
    site.admin()
    ann = site.user("ann", terminals=("PV1",))
    site.terminal.interval_override = 20
    site.terminal.next_frame = 105
    placed = ann.post("/api/orders", json={"side": "offer", "terminal": "PV1", "quantity": 5,
                                           "price": 1.0}).json()  # fmt: skip
    assert placed["valid_until_frame"] == 105 + 16 + 20 - 1
    r = offer(ann, valid_frames=15)  # through frame 119: it would expire unseen
    assert r.status_code == 400 and r.json() == {
        "field": "valid_frames",
        "error": "must be at least 16: the next clearing is for frame 120 (every 20 frames); "
        "leave it empty for 36",
    }
    assert offer(ann, valid_frames=16).json()["valid_until_frame"] == 120
    schedule = ann.get("/api/clearings").json()
    assert (schedule["next_clearing"], schedule["default_valid_frames"]) == (120, 36)
    # interval 1 at frame 7: the clearing for 8 is the first sure one; 2 frames + 1
    site.terminal.interval_override = 1
    site.terminal.next_frame = 7
    placed = ann.post("/api/orders", json={"side": "offer", "terminal": "PV1", "quantity": 5,
                                           "price": 1.0}).json()  # fmt: skip
    assert placed["valid_until_frame"] == 9


def test_after_an_estop_the_operator_is_told_no_frame_will_run(site: Site) -> None:
    site.admin()
    op = site.user("olga", role="operator")
    site.terminal.bench.estopped = True
    for path, body in (("/api/operator/clear", {}), ("/api/operator/settings",
                                                     {"interval": "3"})):  # fmt: skip
        r = op.post(path, json=body)
        assert r.status_code == 409 and "e-stopped: no frame will run" in r.json()["error"]
    assert site.terminal.take_clear_request() is False and site.terminal.interval == 1
    assert [r for r in read_records(site.journal.path) if r.kind == "command"] == []


def test_the_book_stages_note_is_news_for_a_few_frames(site: Site) -> None:
    site.admin()
    ann = site.user("ann", terminals=("PV1",))
    site.terminal.next_frame = 123
    stage = BookStage(site.terminal)
    stage._clear(124, site.scenario, site.topology, "vcg", asked=True)
    stage.close()
    note = "frame 124: nothing to clear (no offer meets a bid)"
    assert ann.get("/api/clearings").json()["note"] == note
    site.terminal.next_frame = 125
    assert ann.get("/api/clearings").json()["note"] == note
    site.terminal.next_frame = 423  # hundreds of frames later it is gone ...
    assert ann.get("/api/clearings").json()["note"] == ""
    site.terminal.next_frame = 123
    assert offer(ann).is_success  # ... and as soon as the book changes
    assert ann.get("/api/clearings").json()["note"] == ""


def test_the_page_has_its_icon(site: Site) -> None:
    r = site.client().get("/favicon.ico")
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
