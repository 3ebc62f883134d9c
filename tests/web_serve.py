"""``ppr serve`` as a separate process on the twin, as a lab runs it, and an HTTP client
for it (httpx, the browser tests use Chromium)."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import threading
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

from bench import bundled_path
from bench.toml_write import dumps
from tests.bench_process import ppr

PASSWORD = "correct horse battery"
URL_LINE = re.compile(r"web terminal on (http://\S+)/")
T = TypeVar("T")


def scenario_file(path: Path, interval: int = 1, transfers: bool = False) -> Path:
    """bench-4 with a market interval (and without its own transfers, unless asked)."""
    data = tomllib.loads(bundled_path().read_text())
    if not transfers:
        data["transfers"] = []
    data["market"] = {"interval_frames": interval}
    path.write_text(dumps(data))
    return path


class Serve:
    """One ``ppr serve`` run in ``tmp`` (its db, journals and keys live there, so a second
    run on the same ``tmp`` is a restart)."""

    def __init__(self, tmp: Path, scenario: Path, *extra: str) -> None:
        self.tmp, self.scenario, self.extra = tmp, scenario, extra
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.lines: list[str] = []
        self._reader: threading.Thread | None = None

    @property
    def db(self) -> Path:
        return self.tmp / "web.db"

    def args(self, *more: str) -> list[str]:
        return ppr("serve", str(self.scenario), "--db", str(self.db), "--out",
                   str(self.tmp / "out"), "--keys", str(self.tmp / "keys"), *more)  # fmt: skip

    def create_admin(self, name: str, password: str = PASSWORD) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.args("--create-admin", name), input=password + "\n", capture_output=True,
            text=True, timeout=120, env=_env(),
        )  # fmt: skip

    def start(self, timeout: float = 120) -> Serve:
        """Run it; returns once it printed its address (it accepts connections then)."""
        self.lines = []
        self.proc = subprocess.Popen(
            self.args("--listen", "127.0.0.1:0", *self.extra),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(),
        )  # fmt: skip
        found = threading.Event()

        def read() -> None:  # keep the pipe drained, remember every line
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                self.lines.append(line)
                if m := URL_LINE.search(line):
                    self.url = m.group(1)
                    found.set()

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()
        if not found.wait(timeout):
            self.kill()
            raise AssertionError(f"ppr serve printed no address:\n{''.join(self.lines)}")
        return self

    def __enter__(self) -> Serve:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()

    def output(self) -> str:
        return "".join(self.lines)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 60) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        finally:
            self.kill()
        return code

    def kill(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self._reader is not None:
            self._reader.join(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def client(self) -> Client:
        return Client(self.url, self)

    def exited_or_output(self, exc: Exception) -> None:
        """After a request failed: fail with the server's own output (a refused connection
        alone says nothing of why), and its exit status once it has exited (a server
        whose page closed is usually on its way out)."""
        assert self.proc is not None
        try:
            code: int | str = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            code = "nothing: still running"
        if self._reader is not None and self.proc.poll() is not None:
            self._reader.join(10)
        raise AssertionError(
            f"{exc!r} from ppr serve; it exited with {code}; its output:\n{self.output()}"
        ) from exc

    def rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        """Read the server's store (read only: WAL lets readers in while it writes)."""
        conn = sqlite3.connect(f"{self.db.absolute().as_uri()}?mode=ro", uri=True)
        try:
            conn.row_factory = sqlite3.Row
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()


class Client(httpx.Client):
    """A participant's HTTP session: cookie jar and CSRF token."""

    def __init__(self, url: str, serve: Serve | None = None) -> None:
        super().__init__(base_url=url, timeout=30)
        self.serve = serve
        self.headers["x-csrf-token"] = self.get("/api/session").json()["csrf"]

    def request(self, *args: Any, **kwargs: Any) -> httpx.Response:
        try:
            return super().request(*args, **kwargs)
        except httpx.TransportError as exc:
            if self.serve is None:
                raise
            self.serve.exited_or_output(exc)
            raise

    def __enter__(self) -> Client:  # open already (it fetched its token)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def post_json(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return self.post(path, json=body)

    def login(self, name: str, password: str = PASSWORD) -> httpx.Response:
        r = self.post("/api/login", json={"name": name, "password": password})
        if r.status_code == 200:
            self.headers["x-csrf-token"] = r.json()["csrf"]
        return r


def enrol(serve: Serve, admin: Client, name: str, terminal: str) -> Client:
    """Register ``name`` over HTTP, approve it and give it ``terminal`` as the admin."""
    c = serve.client()
    assert c.post("/api/register", json={"name": name, "password": PASSWORD}).is_success
    uid = next(u["id"] for u in admin.get("/api/admin/users").json() if u["name"] == name)
    assert admin.post(f"/api/admin/users/{uid}", json={"action": "approve"}).is_success
    r = admin.post(f"/api/admin/users/{uid}", json={"action": "assign", "terminal": terminal})
    assert r.is_success, r.text
    assert c.login(name).is_success
    return c


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 90) -> T:
    """Poll ``probe`` until it returns something; fail naming ``what`` after ``timeout``
    (a bound on a hang, not a measurement)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = probe()
        if got:
            return got
        time.sleep(0.02)
    raise AssertionError(f"waited {timeout:g} s for {what}")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("NUMBA_CACHE_DIR", str(Path(__file__).parents[1] / ".cache" / "numba"))
    return env
