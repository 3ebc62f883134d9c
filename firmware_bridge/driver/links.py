"""Links shared by several routers: one TCP endpoint or one RS-485 port, one lock.

Routers on one RS-485 line share its serial port; requests on a port are serialised by
the link's lock (one request in flight per port). A link is opened by its first driver
and closed by its last.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

L = TypeVar("L")


@dataclass
class Shared(Generic[L]):
    link: L
    refs: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


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

    async def release(self, key: Hashable, closer: Callable[[L], Awaitable[None]]) -> None:
        async with self._lock():
            k = self._key(key)
            shared = self._open.get(k)
            if shared is None:
                return
            shared.refs -= 1
            if shared.refs <= 0:
                del self._open[k]
                await closer(shared.link)
        if not self._open:
            self._guard.pop(id(asyncio.get_running_loop()), None)

    def __len__(self) -> int:
        return len(self._open)
