"""The Numba kernels a command needs, compiled (or loaded from Numba's on-disk cache)
before its work starts, so that the first run on a machine says that it compiles and
shows it, rather than stalling for half a minute in its first plan.

Cold or warm is read from Numba's own cache index, the check Numba makes before it
loads a kernel: a kernel is cached when its index (in ``NUMBA_CACHE_DIR``, else beside
its source) holds an entry for this bytecode on this machine. Nothing is said on a warm
cache; the loading then takes about a second.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from router.progress import ProgressBar

POLL_S = 0.2  # how often the compiled kernels are counted


@dataclass(frozen=True)
class KernelSet:
    what: str  # what the user is told is compiling
    modules: tuple[str, ...]  # where its kernels are defined
    first_run: str  # how long compiling takes, roughly (the 2-core machine of benchmarks.md)
    warm_up: Callable[[], object]  # runs every kernel of the set once


def _plan_tiny() -> None:
    from scheduler import ensure_compiled

    ensure_compiled()


def _route_tiny() -> None:
    from scheduler.lagrangian.warmup import tiny_problem

    tiny_problem()  # its candidate routes: Yen's K shortest paths


PLANNER = KernelSet(
    "the planner's kernels",
    (
        "scheduler.yen",
        "scheduler.bundles",
        "scheduler.lagrangian.columns",
        "scheduler.lagrangian.dp",
        "scheduler.lagrangian.dual",
        "scheduler.lagrangian.local_search",
        "scheduler.lagrangian.occupancy",
        "scheduler.lagrangian.repair",
    ),
    "~30-60 s",
    _plan_tiny,
)
ROUTES = KernelSet("the route finder's kernels", ("scheduler.yen",), "~15 s", _route_tiny)


def _dayahead_tiny() -> None:
    from scheduler.dayahead.warmup import tiny_day

    tiny_day()


DAYAHEAD = KernelSet(
    "the day-ahead kernels",
    ("scheduler.dayahead.kernel", "scheduler.dayahead.master"),
    "~20-30 s",
    _dayahead_tiny,
)


def dispatchers(modules: Sequence[str]) -> list[Any]:
    """The Numba dispatchers defined in ``modules``."""
    from numba.core.dispatcher import Dispatcher

    found = []
    for name in modules:
        module = importlib.import_module(name)
        found += [
            v
            for v in vars(module).values()
            if isinstance(v, Dispatcher) and getattr(v, "__module__", None) == name
        ]
    return found


def cached(dispatcher: Any) -> bool:
    """Numba's cache holds this kernel for this bytecode on this machine. Read with
    Numba's own (private) cache API; a Numba that changed it counts as cached, so a
    cold start is never claimed without evidence."""
    try:
        cache = dispatcher._cache
        index = cache._cache_file._load_index()
        key = cache._index_key(None, dispatcher.targetctx.codegen())
    except (AttributeError, TypeError):
        return True
    return any(entry[1:] == key[1:] for entry in index)


def ensure_kernels(kernels: KernelSet, stream: TextIO | None = None) -> bool:
    """Compile (or load) ``kernels`` now. On a cold cache, first say so on ``stream``
    (stderr), then count the kernels compiled on a progress bar. True: it was cold."""
    stream = stream or sys.stderr
    found = dispatchers(kernels.modules)
    if all(cached(d) for d in found):
        kernels.warm_up()
        return False
    print(f"compiling {kernels.what} (first run only, {kernels.first_run})", file=stream)
    stream.flush()
    done = threading.Event()
    with ProgressBar("compiling kernels", stream) as bar:

        def count() -> None:
            while not done.wait(POLL_S):
                bar.update(sum(1 for d in found if d.overloads), len(found))

        counter = threading.Thread(target=count, daemon=True, name="kernel count")
        counter.start()
        try:
            kernels.warm_up()
        finally:
            done.set()
            counter.join()
    return True
