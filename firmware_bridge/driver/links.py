"""Links shared by several routers: one TCP endpoint or one RS-485 port, one lock.

Routers on one RS-485 line share its serial port; requests on a port are serialised by
the link's lock (one request in flight per port). A link is opened by its first driver
and closed by its last.

Bulk traffic (slot-table uploads, ``bulk()``) yields the link to everything else: on a
115200-baud line one upload write takes tens to hundreds of milliseconds, and a
heartbeat queued behind the uploads of four routers would miss the watchdog.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar


class Link(Protocol):
    def close(self) -> None: ...


L = TypeVar("L", bound=Link)

_BULK: contextvars.ContextVar[bool] = contextvars.ContextVar("bulk", default=False)


@contextlib.contextmanager
def bulk() -> Iterator[None]:
    """Requests made inside (in this task) wait for the link behind all others."""
    token = _BULK.set(True)
    try:
        yield
    finally:
        _BULK.reset(token)


class LinkLock:
    """A lock with two queues: requests first, in order; then bulk requests, in order."""

    def __init__(self) -> None:
        self._held = False
        self._waiting: tuple[deque[asyncio.Future[None]], deque[asyncio.Future[None]]] = (
            deque(),
            deque(),
        )

    def locked(self) -> bool:
        return self._held

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        await self._acquire(_BULK.get())
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, is_bulk: bool) -> None:
        if not self._held and not any(self._waiting):
            self._held = True
            return
        turn = asyncio.get_running_loop().create_future()
        queue = self._waiting[1 if is_bulk else 0]
        queue.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._release()  # handed the link as we were cancelled: pass it on
            else:
                queue.remove(turn)
            raise

    def _release(self) -> None:
        for queue in self._waiting:
            while queue:
                turn = queue.popleft()
                if not turn.done():
                    turn.set_result(None)  # the link passes on, still held
                    return
        self._held = False


@dataclass
class Shared(Generic[L]):
    link: L
    refs: int = 0
    lock: LinkLock = field(default_factory=LinkLock)


class LinkPool(Generic[L]):
    def __init__(self) -> None:
        self._open: dict[Hashable, Shared[L]] = {}
        self._guard: dict[int, asyncio.Lock] = {}  # per event loop: opening and closing

    def _key(self, key: Hashable) -> Hashable:
        return (id(asyncio.get_running_loop()), key)

    def _lock(self) -> asyncio.Lock:
        return self._guard.setdefault(id(asyncio.get_running_loop()), asyncio.Lock())

    async def acquire(self, key: Hashable, opener: Callable[[], Awaitable[L]]) -> Shared[L]:
        async with self._lock():
            k = self._key(key)
            shared = self._open.get(k)
            if shared is None:
                shared = self._open[k] = Shared(await opener())
            shared.refs += 1
            return shared

    async def release(self, key: Hashable) -> None:
        """One driver fewer on the link; the last one closes it."""
        async with self._lock():
            k = self._key(key)
            shared = self._open.get(k)
            if shared is None:
                return
            shared.refs -= 1
            if shared.refs <= 0:
                del self._open[k]
                shared.link.close()
        if not self._open:
            self._guard.pop(id(asyncio.get_running_loop()), None)

    def __len__(self) -> int:
        return len(self._open)
