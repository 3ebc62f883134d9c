"""Web terminal benchmark: a hundred participants' pages against ``ppr serve`` on the twin.

One ``ppr serve`` process (the controller, the twin and the web terminal in one asyncio
loop, as a lab runs it) on a 100-terminal bench (four routers in a ring, 50 sources and
50 loads, 200 slots of 5 ms, the book cleared every 5 frames). This script, a separate
process on the same machine, plays the participants over HTTP on loopback, each as its
page does: it holds the live event stream open, fetches its view (``/api/view``) after
each event, and places an order (an offer or a bid on its terminal, 1-5 packets, valid
20 frames) every 1-3 s. Bounded: one order in flight and one view in flight per
participant.

Two windows of the same length in the same run, side by side: first the bench alone
(everyone logged in, nobody trading), then under the load. Per window: requests, their
rate and latency (median, p99), and the frames of the bench that started late (more
than 1 ms after the frame before ended), read from the run's journal. Then a browser
(Debian's Chromium) saves screenshots of the main pages (not committed).

    .venv/bin/python benchmarks/web.py [--participants 100] [--seconds 60] [--quick]
        [--shots DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from argon2 import PasswordHasher
from machine import describe  # benchmarks/machine.py, beside this script

from bench import Scenario, parse_dict
from bench.toml_write import dumps
from router.journal import read_records
from router.web import accounts, orders
from router.web.store import Store
from tests.web_serve import PASSWORD, Serve

ON_TIME_MS = 1.0  # a frame that starts this late or less started on time
INTERVAL = 5  # frames between clearings
LOGINS_AT_ONCE = 8  # the server checks passwords one at a time anyway


def scenario(n: int) -> dict[str, Any]:
    """Four routers in a ring, ``n`` terminals around them, sources and loads alternating."""
    per = -(-n // 4)
    routers = [{"id": f"R{r + 1}", "ports": per + 2} for r in range(4)]
    terminals = []
    for i in range(n):
        source = i % 2 == 0
        terminals.append(
            {
                "id": f"{'PV' if source else 'LD'}{i + 1}",
                "kind": "source" if source else "load",
                "at": f"R{i % 4 + 1}:{2 + i // 4}",
                "voltage_v": 48.0,
                "max_current_a": 10.0,
                "resistance_ohm": 0.02 if source else 0.03,
            }
        )
    lines = [
        {"id": f"LINE{a + 1}{(a + 1) % 4 + 1}", "a": f"R{a + 1}:0", "b": f"R{(a + 1) % 4 + 1}:1",
         "resistance_ohm": 0.1, "max_current_a": 20.0}
        for a in range(4)
    ]  # fmt: skip
    return {
        "name": f"web-{n}",
        "frame": {"slots": 200, "slot_ms": 5.0, "guard_us": 100.0},
        "costs": {"loss_price_per_j": 0.001},
        "routers": routers,
        "terminals": terminals,
        "lines": lines,
        "market": {"interval_frames": INTERVAL},
    }


def enrol(db: Path, terminals: list[dict[str, Any]]) -> list[tuple[str, int, dict[str, Any]]]:
    """An admin, and one approved participant per terminal, straight into the store (one
    argon2 hash shared by all: registering a hundred over HTTP is not what is measured)."""
    store = Store(db)
    try:
        accounts.create_admin(store, "root", PASSWORD)
        shared = PasswordHasher().hash(PASSWORD)
        out = []
        with store.transaction() as conn:
            for i, term in enumerate(terminals):
                name = f"p{i + 1:03d}"
                cur = conn.execute(
                    "INSERT INTO users (name, pw_hash, role, status, created) "
                    "VALUES (?, ?, 'participant', 'active', ?)",
                    (name, shared, time.time()),
                )
                conn.execute(
                    "INSERT INTO user_terminals VALUES (?, ?)", (cur.lastrowid, term["id"])
                )
                out.append((name, int(cur.lastrowid or 0), term))
        return out
    finally:
        store.close()


@dataclass
class Window:
    start: float = 0.0
    end: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=dict)  # ms, by request kind
    errors: int = 0
    events: int = 0

    def record(self, kind: str, ms: float, ok: bool) -> None:
        self.latencies.setdefault(kind, []).append(ms)
        self.errors += not ok

    @property
    def all_ms(self) -> list[float]:
        return [x for v in self.latencies.values() for x in v]


class Participant:
    def __init__(self, url: str, name: str, uid: int, terminal: dict[str, Any], seed: int) -> None:
        self.client = httpx.AsyncClient(base_url=url, timeout=30)
        self.name, self.uid, self.terminal = name, uid, terminal
        self.rng = random.Random(seed)

    def order(self) -> dict[str, Any]:
        """The next order: an offer (sources) or a bid (loads), 1-5 packets, valid 20 frames."""
        source = self.terminal["kind"] == "source"
        price = self.rng.uniform(0.5, 2.0) if source else self.rng.uniform(1.0, 3.0)
        return {
            "side": "offer" if source else "bid",
            "terminal": self.terminal["id"],
            "quantity": self.rng.randint(1, 5),
            "price": round(price, 2),
            "valid_frames": 20,
        }

    async def place_orders(
        self, until: float, place: Callable[[dict[str, Any]], Awaitable[None]]
    ) -> None:
        """An order every 1-3 s until ``until``."""
        while (left := until - time.monotonic()) > 0:
            await asyncio.sleep(min(left, self.rng.uniform(1.0, 3.0)))
            if time.monotonic() < until:
                await place(self.order())

    async def login(self) -> None:
        csrf = (await self.client.get("/api/session")).json()["csrf"]
        r = await self.client.post(
            "/api/login", json={"name": self.name, "password": PASSWORD},
            headers={"x-csrf-token": csrf},
        )  # fmt: skip
        r.raise_for_status()
        self.client.headers["x-csrf-token"] = r.json()["csrf"]

    async def timed(self, window: Window, kind: str, method: str, path: str, **kw: Any) -> None:
        t0 = time.perf_counter()
        try:
            r = await self.client.request(method, path, **kw)
            ok = r.is_success
        except httpx.HTTPError:
            ok = False
        window.record(kind, (time.perf_counter() - t0) * 1e3, ok)

    async def page(self, window: Window, until: float) -> None:
        """The live stream; the view fetched after each event (one at a time)."""
        view: asyncio.Task[None] | None = None
        async with self.client.stream("GET", "/api/events", timeout=None) as stream:
            async for line in stream.aiter_lines():
                if time.monotonic() >= until:
                    break
                if not line.startswith("data:"):
                    continue
                window.events += 1
                if view is None or view.done():
                    view = asyncio.create_task(self.timed(window, "view", "GET", "/api/view"))
        if view is not None:
            await view

    async def trade(self, window: Window, until: float) -> None:
        async def post(order: dict[str, Any]) -> None:
            await self.timed(window, "order", "POST", "/api/orders", json=order)

        await self.place_orders(until, post)

    async def close(self) -> None:
        await self.client.aclose()


class Direct:
    """Orders straight into the server's store (its own SQLite connection; checked by the
    same code), no HTTP: the market's load without the web's."""

    def __init__(self, db: Path, scenario: Scenario, journal: Path) -> None:
        self.store, self.scenario, self.journal = Store(db), scenario, journal

    def frame(self) -> int:
        from router.cli.serve_cmd import journal_next_frame

        return journal_next_frame(self.journal)

    def placer(self, p: Participant, window: Window) -> Callable[[dict[str, Any]], Awaitable[None]]:
        async def place(order: dict[str, Any]) -> None:
            t0 = time.perf_counter()
            await asyncio.to_thread(
                orders.place, self.store, self.scenario, p.uid, [p.terminal["id"]], order,
                self.frame(), self.scenario.market.interval_frames,
            )  # fmt: skip
            window.record("order", (time.perf_counter() - t0) * 1e3, True)

        return place


async def load(
    url: str, people: list[tuple[str, int, dict[str, Any]]], seconds: float, direct: Direct
) -> tuple[list[Window], float]:
    """Everyone logs in; then three windows: the bench alone, orders straight into the
    store, everyone trading through the page."""
    parts = [Participant(url, n, uid, t, seed=i) for i, (n, uid, t) in enumerate(people)]
    gate = asyncio.Semaphore(LOGINS_AT_ONCE)
    t0 = time.monotonic()

    async def login(p: Participant) -> None:
        async with gate:
            await p.login()

    try:
        await asyncio.gather(*(login(p) for p in parts))
        login_s = time.monotonic() - t0
        alone, market, web = Window(), Window(), Window()
        alone.start = time.time()
        await asyncio.sleep(seconds)
        alone.end = market.start = time.time()
        until = time.monotonic() + seconds
        await asyncio.gather(*(p.place_orders(until, direct.placer(p, market)) for p in parts))
        market.end = web.start = time.time()
        until = time.monotonic() + seconds
        await asyncio.gather(*(p.page(web, until) for p in parts),
                             *(p.trade(web, until) for p in parts))  # fmt: skip
        web.end = time.time()
        return [alone, market, web], login_s
    finally:
        await asyncio.gather(*(p.close() for p in parts))


def frames_in(journal: Path, w: Window) -> list[dict[str, Any]]:
    return [
        r.payload
        for r in read_records(journal)
        if r.kind == "frame" and r.payload.get("phase") == "done"
        and w.start <= r.time_ns / 1e9 <= w.end
    ]  # fmt: skip


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def row(name: str, n: int, w: Window, frames: list[dict[str, Any]]) -> tuple[str, dict[str, float]]:
    span = max(w.end - w.start, 1e-9)
    ms = w.all_ms
    late = [f["late_ms"] for f in frames if (f["late_ms"] or 0.0) > ON_TIME_MS]
    worst = max((f["late_ms"] or 0.0 for f in frames), default=0.0)
    trading = [f for f in frames if f["packets_planned"]]
    plan = max((f["plan_ms"] for f in trading), default=0.0)
    nums = {"late": len(late), "worst": worst}
    rate = f"{len(ms) / span:.1f}" if ms else "-"
    p50, p99 = (f"{pct(ms, 0.5):.1f}", f"{pct(ms, 0.99):.1f}") if ms else ("-", "-")
    line = (
        f"| {name} | {n} | {len(ms)} | {rate} | {p50} | {p99} | {w.errors} | {len(frames)} | "
        f"{len(trading)} | {plan:.0f} | {len(late)} | {worst:.1f} |"
    )
    return line, nums


def logged_in_as(name: str) -> Callable[[Any], bool]:
    return lambda page: bool(page.find_element("id", "who").text.startswith(f"{name} ("))


def screenshots(url: str, shots: Path, participant: str) -> list[Path]:
    """The main pages in Chromium: the login, a participant's, the admin's (which shows
    the operator's panel too)."""
    from selenium.webdriver.common.by import By

    from tests.web_browser import chromium, fill, screenshot, until

    saved = []
    with chromium() as page:
        page.get(url + "/")
        until(page, "the page", lambda d: d.find_element(By.ID, "bench-name").text)
        saved.append(screenshot(page, shots / "web-login.png"))
        for name, file in ((participant, "web-participant.png"), ("root", "web-admin.png")):
            fill(page, {"#login-name": name, "#login-password": PASSWORD})
            page.find_element(By.ID, "login-button").click()
            until(page, "logged in", logged_in_as(name))
            until(page, "the book", lambda d: d.find_element(By.ID, "book-frame").text)
            saved.append(screenshot(page, shots / file))
            page.find_element(By.ID, "logout").click()
            until(page, "logged out", lambda d: d.find_element(By.ID, "auth").is_displayed())
    return saved


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--participants", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0, help="each window (60)")
    parser.add_argument("--quick", action="store_true", help="6 participants, 6 s windows")
    parser.add_argument(
        "--shots", type=Path, default=Path(__file__).parent / "out",
        help="where the screenshots go (benchmarks/out; *.png is not committed)",
    )  # fmt: skip
    parser.add_argument("--keep", type=Path, help=argparse.SUPPRESS)  # copy the run here
    args = parser.parse_args()
    n, seconds = (6, 6.0) if args.quick else (args.participants, args.seconds)
    data = scenario(n)
    with tempfile.TemporaryDirectory(prefix="ppr-web-bench-") as tmp_name:
        tmp = Path(tmp_name)
        path = tmp / "bench.toml"
        path.write_text(dumps(data))
        serve = Serve(tmp, path)
        people = enrol(serve.db, data["terminals"])
        journal = tmp / "out" / "journal.sqlite"
        direct = Direct(serve.db, parse_dict(data)[0], journal)
        try:
            with serve.start():
                windows, login_s = asyncio.run(load(serve.url, people, seconds, direct))
                shots = screenshots(serve.url, args.shots, people[0][0])
                code = serve.stop()
        finally:
            direct.store.close()
        if code != 0:
            print(serve.output(), file=sys.stderr)
            return 1
        if args.keep:
            import shutil

            shutil.copytree(tmp, args.keep, dirs_exist_ok=True)
        names = ("bench alone", "orders into the store, no web", "pages trading over HTTP")
        rows = [
            row(name, 0 if i == 0 else n, w, frames_in(journal, w))
            for i, (name, w) in enumerate(zip(names, windows, strict=True))
        ]
        settled = serve.rows("SELECT COUNT(*) AS n FROM clearings WHERE status = 'settled'")[0]
        placed = serve.rows("SELECT COUNT(*) AS n FROM orders")[0]["n"]
    web = windows[2]
    print(
        f"{data['name']}: {n} terminals, 200 slots x 5 ms (1 s frames), the book cleared every "
        f"{INTERVAL} frames (VCG); three windows of {seconds:g} s in one ppr serve run "
        f"({n} logins took {login_s:.1f} s before them)."
    )
    print("Machine: " + describe("uvicorn", "starlette", "httpx", "numba",
                                 note="ppr serve and this load script share the CPUs"))  # fmt: skip
    print()
    print(
        "| window | participants | requests | req/s | p50 (ms) | p99 (ms) | errors | frames | "
        "frames with trades | slowest plan of those (ms) | "
        f"late frames (> {ON_TIME_MS:g} ms) | latest start (ms) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for line, _ in rows:
        print(line)
    print()
    kinds = ", ".join(
        f"{k} p50 {pct(v, 0.5):.1f} / p99 {pct(v, 0.99):.1f} ms ({len(v)})"
        for k, v in sorted(web.latencies.items())
    )
    print(f"Over HTTP: {kinds}; {web.events} live events. In all {placed} orders placed, "
          f"{settled['n']} clearings settled on the bench.")  # fmt: skip
    (_, alone), (_, market), (_, pages) = rows
    print(
        f"Late frames: {alone['late']} alone, {market['late']} trading without the web, "
        f"{pages['late']} trading over the web (goal: none because of the web)."
    )
    print("Screenshots: " + ", ".join(str(p) for p in shots))
    return 0


if __name__ == "__main__":
    sys.exit(main())
