"""Writing to a non-blocking serial or pseudo-terminal descriptor from asyncio."""

from __future__ import annotations

import asyncio
import os

DRAIN_POLL_S = 0.0005  # the tty buffer is full: give the other side time to drain it


async def write_all(fd: int, data: bytes) -> int:
    """Write all of ``data``, waiting while the terminal's buffer is full."""
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            n = 0
        view = view[n:]
        if view:
            await asyncio.sleep(DRAIN_POLL_S)
    return len(data)
