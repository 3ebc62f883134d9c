"""Stopping background tasks for certain.

On Python 3.11, ``asyncio.wait_for`` (pymodbus awaits it on every request, and so does
our driver) can swallow a cancellation that arrives just as the awaited call completes
(CPython gh-86296, fixed in 3.12 by rebuilding ``wait_for`` on ``asyncio.timeout``). A
task whose body loops for ever (a heartbeat, a clock sampler) then keeps running after
``cancel()``, and whoever awaits it waits for ever: a run that should end hangs. So
cancel, wait a moment, and cancel again until the task has ended.
"""

from __future__ import annotations

import asyncio
from typing import Any

RECANCEL_S = 0.05  # a swallowed cancellation is repeated after this long


async def stop_tasks(*tasks: asyncio.Task[Any] | None) -> list[BaseException]:
    """Cancel ``tasks`` and wait until every one has ended. Returns the exceptions the
    ones that failed raised (not their cancellations), so that none goes unretrieved."""
    todo = [t for t in tasks if t is not None]
    pending = {t for t in todo if not t.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=RECANCEL_S)
    return [e for t in todo if not t.cancelled() and (e := t.exception()) is not None]
