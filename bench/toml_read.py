"""Read TOML text for the loaders (scenario, day-ahead file) as a dict, or raise one
located ``ScenarioError``.

``tomllib`` recurses once per nested array or inline table, so a few thousand ``[``
exhaust Python's recursion limit and end in a ``RecursionError`` (a traceback, exit 1).
The text is scanned first: nesting deeper than ``MAX_NESTING`` is refused at the line
where it gets too deep. No file of the formats this project reads nests more than a
handful of levels (a transfer's ``paths`` is two).
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

from bench.errors import ScenarioError

MAX_NESTING = 32


def read_toml(text: str, source: str) -> dict[str, Any]:
    line = too_deep(text)
    if line is not None:
        raise ScenarioError(
            "",
            f"arrays and inline tables nest more than {MAX_NESTING} deep; a file of this "
            f"format needs a few levels at most",
            source=source,
            line=line,
        )
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"at line (\d+)", str(exc))
        line = int(match.group(1)) if match else None
        raise ScenarioError("", f"TOML syntax error: {exc}", source=source, line=line) from None
    except RecursionError:  # the scan above should make this unreachable
        raise ScenarioError("", "nested too deeply to read", source=source) from None


def too_deep(text: str) -> int | None:
    """The 1-based line where ``[`` and ``{`` outside strings and comments first nest
    deeper than MAX_NESTING (None: never). Table headers count as a level or two while
    they are open, which is far below the limit."""
    depth, line, i, n = 0, 1, 0, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
        elif c == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        elif c in "\"'":
            quote = c * 3 if text.startswith(c * 3, i) else c
            end = _string_end(text, i + len(quote), quote)
            line += text.count("\n", i, end)
            i = end
            continue
        elif c in "[{":
            depth += 1
            if depth > MAX_NESTING:
                return line
        elif c in "]}":
            depth = max(0, depth - 1)
        i += 1
    return None


def _string_end(text: str, i: int, quote: str) -> int:
    """Index just past the string that starts before ``i`` (or the end of a line / the
    text for an unterminated one: tomllib reports that)."""
    escapes = quote[0] == '"'  # literal strings ('...') have no escapes
    n = len(text)
    while i < n:
        if escapes and text[i] == "\\":
            i += 2
            continue
        if text.startswith(quote, i):
            return i + len(quote)
        if len(quote) == 1 and text[i] == "\n":
            return i
        i += 1
    return n
