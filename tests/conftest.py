"""Suite-wide gates: async hygiene (no task, socket, pty or child process outlives its
test) and the opt-in hardware tests (``--hil-port=/dev/ttyUSB0``)."""

from __future__ import annotations

import asyncio
import inspect
import os
from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--hil-port",
        default=None,
        help="serial port of a real router (e.g. /dev/ttyUSB0); hardware tests skip without it",
    )
    parser.addoption(
        "--hil-address",
        default=None,
        help="full driver address of the real router (default: modbus-rtu://PORT?unit=1)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    hil = config.getoption("--hil-port")
    skip = pytest.mark.skip(reason="needs real router hardware: pass --hil-port=/dev/ttyUSB0")
    for item in items:
        if "hil" in item.keywords and not hil:
            item.add_marker(skip)
        function = getattr(item, "function", None)
        if function is not None and inspect.iscoroutinefunction(function):
            item.fixturenames.insert(0, "no_leaked_tasks")  # type: ignore[attr-defined]


def _fds() -> dict[int, str]:
    """Open sockets and terminals of this process, by descriptor."""
    out = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(("socket:", "/dev/pts/", "/dev/ptmx")):
            out[int(fd)] = target
    return out


def _children() -> set[int]:
    pids: set[int] = set()
    for task in Path("/proc/self/task").iterdir():
        try:
            pids |= {int(p) for p in (task / "children").read_text().split()}
        except OSError:
            continue
    return pids


@pytest.fixture(autouse=True)
def no_leaked_resources():
    """Fail a test that leaves sockets, pseudo-terminals or child processes behind."""
    fds, children = _fds(), _children()
    yield
    leaked = {fd: t for fd, t in _fds().items() if fds.get(fd) != t}
    orphans = _children() - children
    for pid in orphans:  # do not let one leak poison the rest of the run
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    assert not leaked, f"test left open: {sorted(set(leaked.values()))}"
    assert not orphans, f"test left child processes running: {sorted(orphans)}"


@pytest.fixture
async def no_leaked_tasks():
    """Fail an async test that leaves tasks running on its event loop."""
    yield
    await asyncio.sleep(0)  # let just-finished tasks complete
    current = asyncio.current_task()
    left = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    for t in left:
        t.cancel()
    assert not left, f"test left tasks running: {[t.get_name() for t in left]}"


@pytest.fixture(scope="session")
def twin_keys(tmp_path_factory: pytest.TempPathFactory):
    """A key store for bench-4, shared by the twin tests (the twin reads the routers' and
    meters' private keys from it, the tests seal with the controller's)."""
    from firmware_bridge.keystore import KeyStore
    from tests.twin_support import SCENARIO

    return KeyStore.init(tmp_path_factory.mktemp("twin") / "keys", SCENARIO)
