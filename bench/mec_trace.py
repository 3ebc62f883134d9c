"""MEC request traces (``requests_trace = "file.csv"``), read once when a scenario is loaded.

A trace holds one request count per frame, one a line: a CSV's first column, an optional
header as its first line, blank lines and ``#`` comments skipped. The path is relative
to the scenario file's folder. Frame i uses count i modulo the trace's length (a day's
trace repeats). Every problem is one located ``ScenarioError``: the scenario's line for
a missing file, the trace's own line for a bad count.
"""

from __future__ import annotations

from pathlib import Path

from bench.errors import ScenarioError
from bench.models import MecServer, Scenario

MAX_REQUESTS = 1_000_000  # per frame, as for a fixed ``requests``


def with_traces(scenario: Scenario, folder: Path) -> Scenario:
    """The scenario with every server's trace read (paths relative to ``folder``)."""
    if scenario.mec is None or not any(s.requests_trace for s in scenario.mec.servers):
        return scenario
    servers: list[MecServer] = []
    for i, server in enumerate(scenario.mec.servers):
        if server.requests_trace is not None:
            where = f"mec.servers[{i}].requests_trace"
            server = server.with_trace(read_trace(folder / server.requests_trace, where))
        servers.append(server)
    mec = scenario.mec.model_copy(update={"servers": tuple(servers)})
    return scenario.model_copy(update={"mec": mec})


def read_trace(path: Path, where: str) -> tuple[int, ...]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(
            where,
            f"no such file '{path}' (a trace's path is relative to the scenario file's folder)",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(where, f"cannot read '{path}': {exc}") from None
    counts: list[int] = []
    first = True
    for number, raw in enumerate(text.splitlines(), start=1):
        field = raw.split("#", 1)[0].split(",", 1)[0].strip()
        if not field:
            continue
        header, first = first and any(c.isalpha() for c in field), False
        if header:  # a column name such as 'requests'
            continue

        def bad(message: str, number: int = number) -> ScenarioError:
            return ScenarioError(where, message, source=str(path), line=number)

        if not _is_int(field):
            raise bad(f"'{field}' is not a whole number of requests (one count a line)")
        count = int(field)
        if count < 0:
            raise bad(f"{count} requests; a count must be >= 0")
        if count > MAX_REQUESTS:
            raise bad(f"{count} requests; at most {MAX_REQUESTS} a frame")
        counts.append(count)
    if not counts:
        raise ScenarioError(
            where, "too short: no request counts (one count a line)", source=str(path)
        )
    return tuple(counts)


def _is_int(text: str) -> bool:
    return text.lstrip("+-").isdigit()
