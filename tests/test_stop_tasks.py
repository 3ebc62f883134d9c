"""Background tasks end when stopped, even one that swallowed a cancellation (Python
3.11's wait_for can: CPython gh-86296) and would otherwise loop for ever."""

from __future__ import annotations

import asyncio

import pytest

from firmware_bridge.tasks import stop_tasks


async def test_a_task_that_swallows_one_cancellation_still_ends():
    cancels = 0

    async def heartbeat_like() -> None:
        nonlocal cancels
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancels += 1
                if cancels > 1:
                    raise  # the first one is lost, as in wait_for's race

    task = asyncio.create_task(heartbeat_like())
    await asyncio.sleep(0)
    # what the callers did before: cancel once and wait
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=0.2)
    assert not done and cancels == 1  # still running: awaiting it would hang
    assert await asyncio.wait_for(stop_tasks(task), 5) == []
    assert task.cancelled() and cancels == 2


async def test_failures_are_returned_and_finished_tasks_left_alone():
    async def fails() -> None:
        raise RuntimeError("bus model bug")

    async def ends() -> int:
        return 7

    bad, good = asyncio.create_task(fails()), asyncio.create_task(ends())
    await asyncio.sleep(0.01)
    slow = asyncio.create_task(asyncio.sleep(3600))
    failed = await stop_tasks(bad, good, slow, None)
    assert [str(e) for e in failed] == ["bus model bug"]
    assert good.result() == 7 and slow.cancelled()


def test_the_race_is_real_on_this_python():
    """The reason for stop_tasks: on 3.11 wait_for returns the result of a future that
    completed and drops a cancellation that arrived meanwhile (fixed in 3.12)."""
    import sys

    if sys.version_info >= (3, 12):
        pytest.skip("wait_for no longer swallows cancellations")

    async def main() -> bool:
        async def waiter(fut: asyncio.Future[None]) -> bool:
            await asyncio.wait_for(fut, 10)
            return True  # reached: the cancellation below was swallowed

        fut = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(waiter(fut))
        await asyncio.sleep(0)  # task now awaits inside wait_for
        fut.set_result(None)  # the call completes ...
        task.cancel()  # ... and the cancellation arrives in the same loop turn
        try:
            return await task
        except asyncio.CancelledError:
            return False

    assert asyncio.run(main()) is True
