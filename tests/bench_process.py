"""The twin and the controller as separate processes, as on a real bench."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

from bench import bundled_path
from bench.toml_write import dumps
from firmware_bridge.driver import RouterStatus, open_driver

ADDRESS = re.compile(r"^\s+(\S+)\s+(modbus-tcp://\S+)$")


def ppr(*args: str) -> list[str]:
    return [sys.executable, "-m", "router.cli", *args]


class TwinProcess:
    """``ppr twin`` on loopback TCP: its routers keep running between controller runs."""

    def __init__(self, keys: Path) -> None:
        self.keys = keys
        self.proc: subprocess.Popen[str] | None = None
        self.addresses: dict[str, str] = {}
        self.lines: list[str] = []
        self._drain: threading.Thread | None = None

    def __enter__(self) -> TwinProcess:
        self.proc = subprocess.Popen(
            ppr("twin", "--keys", str(self.keys)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 60
        assert self.proc.stdout is not None
        while len(self.addresses) < 4:
            line = self.proc.stdout.readline()
            if not line or time.monotonic() > deadline:
                raise RuntimeError(f"ppr twin did not print its addresses (last: {line!r})")
            if m := ADDRESS.match(line.rstrip()):
                self.addresses[m.group(1)] = m.group(2)
        # Keep reading what it reports, so a full pipe never stalls the routers.
        self._drain = threading.Thread(target=self.lines.extend, args=(self.proc.stdout,))
        self._drain.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self._drain is not None:
            self._drain.join(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def scenario_file(self, path: Path) -> Path:
        """bench-4 with the twin's addresses, as a lab engineer's --hardware file."""
        data = tomllib.loads(bundled_path().read_text())
        for r in data["routers"]:
            r["address"] = self.addresses[r["id"]]
        path.write_text(dumps(data))
        return path


def wait_line(proc: subprocess.Popen[str], needle: str, timeout: float = 120) -> str:
    """Read the process's output until a line with ``needle`` (the lines before it are
    in the error, should it never come)."""
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    seen: list[str] = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if needle in line:
            return line
        seen.append(line)
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"no line with {needle!r} from {proc.args}:\n{''.join(seen)}")


async def router_statuses(addresses: dict[str, str]) -> dict[str, RouterStatus]:
    """Each router's status, read by a client without keys."""

    async def one(rid: str, address: str) -> RouterStatus:
        async with open_driver(address, rid) as d:
            return await d.read_status()

    statuses = await asyncio.gather(*(one(r, a) for r, a in addresses.items()))
    return dict(zip(addresses, statuses, strict=True))


async def router_states(addresses: dict[str, str]) -> dict[str, str]:
    return {rid: s.state for rid, s in (await router_statuses(addresses)).items()}
