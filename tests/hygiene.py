"""Test hygiene as a gate: a test that leaves tasks, sockets, pseudo-terminals or child
processes behind fails (as aioesphomeapi's and pymodbus's suites do).

``no_leaks`` (every test) compares the process's open sockets and child processes
(zombies included: a child nobody waited for is a leak) before and after the test;
``no_leaked_tasks`` (every coroutine test) checks that the test's event loop has no task
still running when the test ends. Both give things a moment to wind down first.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import os
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

SETTLE_S = 1.0  # closing a socket or reaping a child may take a loop turn or two


def open_sockets() -> set[str]:
    """Open sockets and terminals (the twin's pseudo-terminals) of this process."""
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed meanwhile (the listing's own fd)
        if target.startswith(("socket:", "/dev/pts/", "/dev/ptmx")):
            out.add(f"fd {fd} -> {target}")
    return out


def child_processes() -> set[str]:
    me, out = os.getpid(), set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses
        state, ppid = stat.rpartition(")")[2].split()[:2]
        if int(ppid) == me:
            out.add(f"pid {pid} {stat[stat.find('(') : stat.rfind(')') + 1]} state {state}")
    return out


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    gc.collect()
    sockets, children = open_sockets(), child_processes()
    yield
    deadline = time.monotonic() + SETTLE_S
    while True:
        gc.collect()
        new_sockets = open_sockets() - sockets
        new_children = child_processes() - children
        if not (new_sockets or new_children):
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    left = sorted(new_sockets) + sorted(new_children)
    pytest.fail(f"the test left behind: {'; '.join(left)}")


@pytest_asyncio.fixture
async def no_leaked_tasks() -> AsyncIterator[None]:
    yield
    me = asyncio.current_task()
    deadline = time.monotonic() + SETTLE_S
    while True:
        running = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
        if not running or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.02)
    if running:
        pytest.fail(f"tasks still running: {', '.join(sorted(t.get_name() for t in running))}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names: list[str] = getattr(item, "fixturenames", [])  # test functions have them
        coroutine = inspect.iscoroutinefunction(getattr(item, "function", None))
        if coroutine and "no_leaked_tasks" not in names:
            # first in, last out: it checks after every other fixture (a running twin,
            # say) has been torn down
            names.insert(0, "no_leaked_tasks")
