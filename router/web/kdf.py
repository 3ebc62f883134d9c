"""Password hashing off the event loop.

argon2id takes about 0.2 s of CPU per hash or check, on purpose. Run on the event loop
that also arms the bench's frames, a few registrations in a row would make frames start
late; run in the loop's default thread pool, a burst of logins would queue the
controller's own planning work behind them. So every hash and check runs in one thread
of its own, one at a time, and a burst beyond ``MAX_WAITING`` is refused at once rather
than queued for minutes.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from router.web.errors import RateLimitedError

T = TypeVar("T")
MAX_WAITING = 32  # hashes waiting for the thread; about 6 s of work

_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ppr-argon2")
_waiting = 0
_lock = threading.Lock()


async def run(field: str, fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)`` in the password thread; RateLimitedError (on ``field``) when too many
    wait already."""
    global _waiting
    with _lock:
        if _waiting >= MAX_WAITING:
            raise RateLimitedError(field, "the server is busy checking passwords; try again")
        _waiting += 1
    try:
        return await asyncio.get_running_loop().run_in_executor(_executor, lambda: fn(*args))
    finally:
        with _lock:
            _waiting -= 1
