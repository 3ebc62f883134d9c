"""Write a scenario dict as TOML (``tomllib`` only reads).

Covers exactly what scenario files hold: top-level scalars, tables of scalars and of
arrays of tables (``[mec]`` with ``[[mec.servers]]``), arrays of tables, and lists (of
lists) of strings.
"""

from __future__ import annotations

import json
import math
from typing import Any


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"cannot write {v} to a scenario file")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # TOML basic strings share JSON's escapes
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to a scenario file")


def dumps(data: dict[str, Any], header: str = "") -> str:
    out = [f"# {line}".rstrip() for line in header.splitlines()]
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict | list)}
    for key, v in scalars.items():
        out.append(f"{key} = {_value(v)}")
    for key, v in data.items():
        if isinstance(v, dict):
            out += ["", f"[{key}]"]
            out += [f"{k} = {_value(x)}" for k, x in v.items() if x is not None and not _tables(x)]
            for k, x in v.items():
                for entry in x if _tables(x) else ():
                    out += ["", f"[[{key}.{k}]]"]
                    out += [f"{n} = {_value(y)}" for n, y in entry.items() if y is not None]
    for key, v in data.items():
        if isinstance(v, list):
            for entry in v:
                out += ["", f"[[{key}]]"]
                out += [f"{k} = {_value(x)}" for k, x in entry.items() if x is not None]
    return "\n".join(out) + "\n"


def _tables(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)
