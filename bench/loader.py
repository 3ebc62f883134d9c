"""Read a scenario TOML file into a checked ``Scenario``.

Every problem becomes one ``ScenarioError`` whose text names the file, the line when it
can be found, the entry and what is wrong; nothing is half loaded.
"""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from bench.errors import ScenarioError
from bench.mec_trace import with_traces
from bench.models import Scenario
from bench.topology import Topology
from bench.validate import check_scenario

BUNDLED = ("bench-4", "bench-4-market", "bench-4-mec", "microgrids-sop")


def bundled_path(name: str = "bench-4") -> Path:
    """Path of a scenario shipped with the package."""
    if name not in BUNDLED:
        raise ScenarioError("", f"no bundled scenario '{name}' (bundled: {', '.join(BUNDLED)})")
    return Path(str(resources.files("bench") / "data" / f"{name}.toml"))


def load_scenario(path: str | Path) -> Scenario:
    return load_with_topology(path)[0]


def load_with_topology(path: str | Path) -> tuple[Scenario, Topology]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError("", "no such file", source=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError("", f"cannot read: {exc}", source=str(path)) from exc
    return parse_text(text, source=str(path))


def parse_text(text: str, source: str = "<scenario>") -> tuple[Scenario, Topology]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = _toml_error_line(str(exc))
        raise ScenarioError("", f"TOML syntax error: {exc}", source=source, line=line) from None
    try:
        scenario, topology = parse_dict(data)
        traced = with_traces(scenario, Path(source).parent)  # read once, here
    except ScenarioError as exc:
        if exc.source:  # located already, in a file the scenario names (a trace)
            raise exc from None
        raise exc.located(source, _locate(text, exc.where)) from None
    return (traced, topology) if traced is scenario else (traced, Topology(traced))


def parse_dict(data: dict[str, Any]) -> tuple[Scenario, Topology]:
    """Validate an already-parsed scenario (from TOML, JSON or code)."""
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        raise ScenarioError(_loc_text(first["loc"], data), _message(first) + more) from None
    return scenario, check_scenario(scenario)


def _loc_text(loc: tuple[int | str, ...], data: dict[str, Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


_ID_RULE = "1-40 letters, digits, '_', '.' or '-'"


def _message(err: ErrorDetails) -> str:
    kind = err["type"]
    ctx = err.get("ctx", {})
    got = err.get("input")
    shown = f" (got {got!r})" if not isinstance(got, dict | list) else ""
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "unknown field (check its spelling against docs/design.md's scenario format)"
    bounds = {
        "greater_than": ">",
        "greater_than_equal": ">=",
        "less_than": "<",
        "less_than_equal": "<=",
    }
    if kind in bounds:
        limit = next(iter(ctx.values()))
        return f"must be {bounds[kind]} {limit}{shown}"
    if kind == "finite_number":
        return f"must be a finite number{shown}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"must be a whole number{shown}"
    if kind in ("float_type", "float_parsing"):
        return f"must be a number{shown}"
    if kind == "string_type":
        return f"must be a string{shown}"
    if kind == "string_pattern_mismatch":
        if ":" in str(ctx.get("pattern", "")):
            return f"must name a router port like 'R1:0'{shown}"
        return f"must be {_ID_RULE}{shown}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}{shown}"
    if kind in ("tuple_type", "list_type"):
        return f"must be a list{shown}"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"must be a table{shown}"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    return err["msg"][0].lower() + err["msg"][1:]


def _toml_error_line(message: str) -> int | None:
    match = re.search(r"at line (\d+)", message)
    return int(match.group(1)) if match else None


_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-]+)\s*\]\]?\s*(#.*)?$")
_WHERE = re.compile(r"^([a-z_]+)(?:\[([^\]]+)\])?(?:\.([a-z0-9_]+))?")
# a nested array of tables such as ``mec.servers[0].terminal``
_WHERE_NESTED = re.compile(r"^([a-z_]+(?:\.[a-z_]+)*?)(?:\[([^\]]+)\])?(?:\.([a-z0-9_]+))?$")


def _locate(text: str, where: str) -> int | None:
    """Best-effort 1-based line of ``table[index-or-id].key`` in the TOML text."""
    match = _WHERE_NESTED.match(where) or _WHERE.match(where)
    if not match:
        return None
    table, selector, key = match.groups()
    lines = text.splitlines()
    blocks: list[tuple[int, int]] = []  # (header line index, end line index)
    start = None
    for i, line in enumerate(lines):
        header = _HEADER.match(line)
        if header:
            if start is not None:
                blocks.append((start, i))
                start = None
            if header.group(2) == table:
                start = i
    if start is not None:
        blocks.append((start, len(lines)))
    if not blocks:
        # top-level key such as `name`
        return _find_key(lines, 0, len(lines), table) if selector is None else None
    chosen = None
    if selector is None:
        chosen = blocks[0]
    elif selector.isdigit() and int(selector) < len(blocks):
        chosen = blocks[int(selector)]
    else:
        for block in blocks:
            if _find_value(lines, block, "id", selector):
                chosen = block
                break
    if chosen is None:
        return None
    if key:
        found = _find_key(lines, chosen[0] + 1, chosen[1], key)
        if found:
            return found
    return chosen[0] + 1


def _find_key(lines: list[str], start: int, end: int, key: str) -> int | None:
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
    for i in range(start, end):
        if pattern.match(lines[i]):
            return i + 1
    return None


def _find_value(lines: list[str], block: tuple[int, int], key: str, value: str) -> bool:
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=\s*[\"']{re.escape(value)}[\"']")
    return any(pattern.match(lines[i]) for i in range(block[0] + 1, block[1]))
