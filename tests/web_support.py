"""A web terminal on a real SQLite store and a real signed journal, for the API and
stage tests (Starlette's test client: the real app, in process)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.testclient import TestClient

from bench import Scenario, Topology
from bench.loader import bundled_path, load_with_topology
from router.journal import Journal
from router.web import accounts
from router.web.app import create_app
from router.web.store import Store
from router.web.terminal import WebTerminal

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PASSWORD = "correct horse battery"


class Site:
    def __init__(self, tmp: Path, scenario: Scenario | None = None) -> None:
        self.tmp = tmp
        if scenario is None:
            self.scenario, self.topology = load_with_topology(bundled_path())
        else:
            self.scenario, self.topology = scenario, Topology(scenario)
        self.open()

    def open(self) -> None:
        self.store = Store(self.tmp / "web.db")
        self.journal = Journal.open(self.tmp / "journal.sqlite", KEY, genesis={"scenario": "t"})
        self.terminal = WebTerminal(self.store, self.scenario, self.topology, self.journal)
        self.app = create_app(self.terminal, secure_cookies=False)

    def close(self) -> None:
        self.journal.close()
        self.store.close()

    def client(self, address: str = "testclient") -> TestClient:
        c = TestClient(self.app, client=(address, 50000))
        c.headers["x-csrf-token"] = c.get("/api/session").json()["csrf"]
        return c

    def admin(self, name: str = "root") -> TestClient:
        """The bootstrap admin (made as ``ppr serve --create-admin`` makes it), logged in."""
        accounts.create_admin(self.store, name, PASSWORD)
        c = self.client()
        assert login(c, name).status_code == 200
        return c

    def user(self, name: str, *, terminals: tuple[str, ...] = (), role: str = "") -> TestClient:
        """A client logged in as ``name``, registered over HTTP and approved."""
        c = self.client()
        r = c.post("/api/register", json={"name": name, "password": PASSWORD})
        assert r.status_code == 200, r.text
        uid = self.uid(name)
        accounts.set_status(self.store, uid, "active")
        if role:
            accounts.set_role(self.store, uid, role)
        known = {t.id for t in self.scenario.terminals}
        for t in terminals:
            accounts.assign_terminal(self.store, uid, t, known)
        assert login(c, name).status_code == 200
        return c

    def uid(self, name: str) -> int:
        return int(self.store.rows("SELECT id FROM users WHERE name = ?", (name,))[0]["id"])

    def count(self, table: str) -> int:
        return int(self.store.rows(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"])


def login(c: TestClient, name: str, password: str = PASSWORD) -> Any:
    r = c.post("/api/login", json={"name": name, "password": password})
    if r.status_code == 200:
        c.headers["x-csrf-token"] = r.json()["csrf"]
    return r


def offer(c: TestClient, **kw: Any) -> Any:
    form = {"side": "offer", "terminal": "PV1", "quantity": 20, "price": 1.0}
    form = form | {"valid_frames": 100} | kw
    return c.post("/api/orders", json=form)


def bid(c: TestClient, **kw: Any) -> Any:
    form = {"side": "bid", "terminal": "MEC1", "quantity": 10, "price": 3.0}
    form = form | {"valid_frames": 100} | kw
    return c.post("/api/orders", json=form)
