"""The web terminal's HTTP API through Starlette's test client, on a real SQLite store
and a real signed journal: accounts, roles, CSRF, privacy, the rate limit, clearing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.testclient import TestClient

from bench.loader import bundled_path, load_with_topology
from router.journal import Journal, read_records
from router.web import accounts
from router.web.app import create_app
from router.web.store import Store
from router.web.terminal import WebTerminal

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PASSWORD = "correct horse battery"


class Site:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.scenario, self.topology = load_with_topology(bundled_path())
        self.open()

    def open(self) -> None:
        self.store = Store(self.tmp / "web.db")
        self.journal = Journal.open(self.tmp / "journal.sqlite", KEY, genesis={"scenario": "t"})
        self.terminal = WebTerminal(self.store, self.scenario, self.topology, self.journal)
        self.app = create_app(self.terminal, secure_cookies=False)

    def close(self) -> None:
        self.journal.close()
        self.store.close()

    def client(self) -> TestClient:
        c = TestClient(self.app)
        c.headers["x-csrf-token"] = c.get("/api/session").json()["csrf"]
        return c

    def user(self, name: str, *, terminals: tuple[str, ...] = (), role: str = "") -> TestClient:
        """A client logged in as an approved ``name``."""
        c = self.client()
        assert c.post("/api/register", json={"name": name, "password": PASSWORD}).status_code == 200
        uid = self.store.rows("SELECT id FROM users WHERE name = ?", (name,))[0]["id"]
        accounts.set_status(self.store, uid, "active")
        if role:
            accounts.set_role(self.store, uid, role)
        known = {t.id for t in self.scenario.terminals}
        for t in terminals:
            accounts.assign_terminal(self.store, uid, t, known)
        login(c, name)
        return c


def login(c: TestClient, name: str, password: str = PASSWORD) -> Any:
    r = c.post("/api/login", json={"name": name, "password": password})
    if r.status_code == 200:
        c.headers["x-csrf-token"] = r.json()["csrf"]
    return r


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    s = Site(tmp_path)
    yield s
    s.close()


def offer(c: TestClient, **kw: Any) -> Any:
    form = {"side": "offer", "terminal": "PV1", "quantity": 20, "price": 1.0} | kw
    return c.post("/api/orders", json=form)


def test_first_account_is_admin_later_ones_wait_for_approval(site: Site) -> None:
    c = site.client()
    first = c.post("/api/register", json={"name": "root", "password": PASSWORD}).json()
    assert first == {"name": "root", "status": "active", "role": "admin"}
    second = c.post("/api/register", json={"name": "ann", "password": PASSWORD}).json()
    assert second == {"name": "ann", "status": "pending", "role": "participant"}
    r = login(c, "ann")
    assert r.status_code == 400 and "awaits approval" in r.json()["error"]

    admin = site.client()
    assert login(admin, "root").status_code == 200
    ann_id = next(u["id"] for u in admin.get("/api/admin/users").json() if u["name"] == "ann")
    r = admin.post(f"/api/admin/users/{ann_id}", json={"action": "approve"})
    assert r.status_code == 200 and r.json()["status"] == "active"
    r = admin.post(f"/api/admin/users/{ann_id}", json={"action": "assign", "terminal": "PV1"})
    assert r.json()["terminals"] == ["PV1"]
    assert login(c, "ann").status_code == 200
    assert c.get("/api/session").json()["terminals"] == [{"id": "PV1", "kind": "source"}]

    # the password is stored as an argon2id hash, never in clear
    stored = site.store.rows("SELECT pw_hash FROM users WHERE name = 'ann'")[0]["pw_hash"]
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    # both admin actions are in the signed journal
    actions = [
        (r.payload["by"], r.payload["action"])
        for r in read_records(site.journal.path)
        if r.kind == "command"
    ]
    assert actions == [("root", "approve"), ("root", "assign")]


def test_bad_registration_names_the_field(site: Site) -> None:
    c = site.client()
    r = c.post("/api/register", json={"name": "a b", "password": PASSWORD})
    assert r.status_code == 400 and r.json()["field"] == "name"
    r = c.post("/api/register", json={"name": "abc", "password": "short"})
    assert r.json() == {"error": "must be at least 10 characters", "field": "password"}


def test_state_changing_requests_without_the_csrf_token_are_refused(site: Site) -> None:
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
    assert site.store.rows("SELECT COUNT(*) AS n FROM orders")[0]["n"] == 0
    assert len(site.store.rows("SELECT * FROM users")) == 1
    # the session cookie is HttpOnly and SameSite=strict
    raw = TestClient(site.app).get("/api/session").headers["set-cookie"].lower()
    assert "httponly" in raw and "samesite=strict" in raw


def test_roles_guard_operator_and_admin_endpoints(site: Site) -> None:
    site.user("root")  # the admin
    ann = site.user("ann", terminals=("PV1",))
    op = site.user("olga", role="operator")
    assert ann.post("/api/operator/settings", json={"interval": "3"}).status_code == 403
    assert ann.post("/api/operator/estop", json={}).status_code == 403
    assert ann.get("/api/admin/users").status_code == 403
    assert op.get("/api/admin/users").status_code == 403
    assert offer(op).status_code == 403  # operators run the market, they do not trade in it
    r = op.post("/api/operator/settings", json={"mechanism": "auction"})
    assert r.status_code == 400 and r.json()["field"] == "mechanism"
    r = op.post("/api/operator/settings", json={"mechanism": "nash", "interval": "3"})
    assert r.json() == {"mechanism": "nash", "interval": 3}
    assert TestClient(site.app).get("/api/orders").status_code == 401
    acts = [r.payload["action"] for r in read_records(site.journal.path) if r.kind == "command"]
    assert acts == ["settings"]  # refused requests change nothing and journal nothing


def test_orders_are_checked_like_the_scenario_file(site: Site) -> None:
    ann = site.user("ann", terminals=("PV1", "MEC1"))
    cases = [
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
    assert site.store.rows("SELECT COUNT(*) AS n FROM orders")[0]["n"] == 0

    # kWh: PV1 is 48 V, 10 A; a 10 ms slot with a 50 us guard conducts 9.95 ms -> 4.776 J
    pv1 = site.scenario.terminal("PV1")
    packet_j = pv1.voltage_v * pv1.max_current_a * site.scenario.frame.tau_s
    kwh = 100 * packet_j / 3.6e6
    r = offer(ann, unit="kwh", quantity=kwh, green="on")
    assert r.status_code == 200 and r.json()["packets"] == 100 and r.json()["green"] is True


def test_a_participant_never_reads_anothers_orders(site: Site) -> None:
    ann = site.user("ann", terminals=("PV1",))
    bob = site.user("bob", terminals=("MEC1",))
    mine = offer(ann, price=1.25).json()
    assert [o["id"] for o in ann.get("/api/orders").json()] == [mine["id"]]
    assert bob.get("/api/orders").json() == []
    # the public book shows the quote but neither its owner nor its id
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
    for path in ("/api/session", "/api/book", "/api/orders", "/api/clearings", "/api/bench"):
        body = bob.get(path).text
        assert "ann" not in body and f'"id": {mine["id"]}' not in body.replace(":", ": ")


def test_failed_logins_are_limited_per_account_and_per_address(site: Site) -> None:
    site.user("ann")
    c = site.client()
    for _ in range(accounts.MAX_PER_ACCOUNT):
        assert login(c, "ann", "wrong password!").status_code == 400
    r = login(c, "ann")  # even the right password, until the window passes
    assert r.status_code == 429 and "for this account" in r.json()["error"]
    # the address limit is wider: another account from the same client still gets in...
    site.user("bob")
    assert login(site.client(), "bob").status_code == 200
    # ...until the address has failed MAX_PER_ADDRESS times in all
    for i in range(accounts.MAX_PER_ADDRESS - accounts.MAX_PER_ACCOUNT):
        login(c, f"nobody{i}", "wrong password!")
    r = login(c, "bob")
    assert r.status_code == 429 and "for this address" in r.json()["error"]


def test_operator_clears_the_book_once_per_frame(site: Site) -> None:
    ann = site.user("ann", terminals=("PV1",))
    bob = site.user("bob", terminals=("MEC1",))
    op = site.user("olga", role="operator")
    assert offer(ann, quantity=20, price=1.0).status_code == 200
    bid = {"side": "bid", "terminal": "MEC1", "quantity": 10, "price": 3.0}
    assert bob.post("/api/orders", json=bid).status_code == 200
    done = op.post("/api/operator/clear", json={}).json()["clearing"]
    # 10 packets traded; welfare = 10 * (3 - 1) less the priced losses of the route
    assert done["volume"] == 10 and done["mechanism"] == "vcg" and done["vcg_gap"] == 0
    assert done["welfare"] <= 20.0 and done["welfare"] > 0
    assert op.post("/api/operator/clear", json={}).json()["clearing"] is None  # same frame
    assert [o["status"] for o in bob.get("/api/orders").json()] == ["filled"]
    assert [o["status"] for o in ann.get("/api/orders").json()] == ["partial"]
    assert ann.get("/api/clearings").json() == [done]


def test_restart_keeps_accounts_orders_and_sessions(site: Site) -> None:
    ann = site.user("ann", terminals=("PV1",))
    order = offer(ann).json()
    site.close()
    site.open()
    again = TestClient(site.app, cookies=ann.cookies)  # the signing key is in the store
    assert [o["id"] for o in again.get("/api/orders").json()] == [order["id"]]
    assert login(site.client(), "ann").status_code == 200
