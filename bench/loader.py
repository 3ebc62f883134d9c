"""Read a scenario TOML file into a checked ``Scenario``.

Every problem becomes one ``ScenarioError`` whose text names the file, the line when it
can be found, the entry and what is wrong; nothing is half loaded.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from bench.errors import ScenarioError
from bench.mec_trace import with_traces
from bench.models import Scenario
from bench.toml_read import read_toml
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
    data = read_toml(text, source)
    try:
        scenario, topology = parse_dict(data)
        traced = with_traces(scenario, Path(source).parent)  # read once, here
    except ScenarioError as exc:
        raise locate_in(exc, text, source) from None
    return (traced, topology) if traced is scenario else (traced, Topology(traced))


def parse_dict(data: dict[str, Any]) -> tuple[Scenario, Topology]:
    """Validate an already-parsed scenario (from TOML, JSON or code)."""
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise problems_error(validation_problems(exc, data, Scenario)) from None
    return scenario, check_scenario(scenario)


def validation_problems(
    exc: ValidationError, data: Any, model: type[BaseModel]
) -> list[ScenarioError]:
    """Every problem pydantic found, as located errors: unknown keys first (a misspelt
    key is usually the cause of the 'is required' that comes with it), then the rest in
    the order of the file's structure."""
    out = []
    for err in exc.errors():
        cause = err.get("ctx", {}).get("error")
        if err["type"] == "value_error" and isinstance(cause, ScenarioError):
            out.append(cause)  # a model's own cross-check, named by it
        else:
            out.append(ScenarioError(loc_text(err["loc"], data), _message(err, model)))
    unknown = [p for p in out if p.message.startswith(UNKNOWN)]
    return unknown + [p for p in out if not p.message.startswith(UNKNOWN)]


def problems_error(problems: Sequence[ScenarioError]) -> ScenarioError:
    """One error for all the problems: the first, and how many more (``more``)."""
    return ScenarioError.of(problems)


def locate_in(exc: ScenarioError, text: str, source: str) -> ScenarioError:
    """``exc`` and its other problems, each pointing at its line of ``text`` (a problem
    already located in a file the scenario names, a trace, keeps its place)."""
    found = [p if p.source else p.located(source, _locate(text, p.where)) for p in exc.problems]
    return problems_error(found)


def loc_text(loc: tuple[int | str, ...], data: Any) -> str:
    """``lines[LBC].resistance_ohm``: an entry of a list by its id, or by its position
    when it has none (a transfer's paths, MEC servers) or its id is itself wrong."""
    out, node = "", data
    for part in loc:
        if isinstance(part, int):
            entry = node[part] if isinstance(node, list | tuple) and part < len(node) else None
            entry_id = entry.get("id") if isinstance(entry, dict) else None
            named = isinstance(entry_id, str) and _ID.match(entry_id) and not entry_id.isdigit()
            out += f"[{entry_id if named else part}]"
            node = entry
        else:
            out += f".{part}" if out else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out


UNKNOWN = "unknown field"
_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,40}$")
_ID_RULE = "1-40 letters, digits, '_', '.' or '-'"


def _message(err: ErrorDetails, model: type[BaseModel]) -> str:
    kind = err["type"]
    ctx = err.get("ctx", {})
    got = err.get("input")
    shown = f" (got {got!r})" if not isinstance(got, dict | list) else ""
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return _unknown(err["loc"], model)
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


def _unknown(loc: tuple[int | str, ...], model: type[BaseModel]) -> str:
    """'unknown field', with the closest known name at that place in the model."""
    known = _fields_at(model, loc[:-1])
    close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
    if close:
        return f"{UNKNOWN}; did you mean {close[0]}?"
    listed = ", ".join(known[:8]) + (", ..." if len(known) > 8 else "")
    return f"{UNKNOWN} (known here: {listed})" if known else f"{UNKNOWN} (see docs/design.md)"


def _fields_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The field names of the model found at ``loc`` inside ``model`` ([] if none)."""
    current: type[BaseModel] | None = model
    for part in loc:
        if isinstance(part, int):
            continue  # an entry of a list: the list's annotation names its model
        field = current.model_fields.get(part) if current is not None else None
        current = None if field is None else _model_in(field.annotation)
        if current is None:
            return []
    return [] if current is None else list(current.model_fields)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation (``tuple[Line, ...] | None`` -> Line)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    args = typing.get_args(annotation)
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for arg in args:
            found = _model_in(arg)
            if found is not None:
                return found
    return None


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
    else:  # an entry's id, or its position when it has none
        chosen = next((b for b in blocks if _find_value(lines, b, "id", selector)), None)
        if chosen is None and selector.isdigit() and int(selector) < len(blocks):
            chosen = blocks[int(selector)]
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
