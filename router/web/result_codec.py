"""A cleared market result as JSON and back, so that a clearing stored with its trades
can be executed on a later frame (after a restart too) exactly as it was cleared.

Generic over the dataclasses ``MarketResult`` is made of (read from their fields and type
hints), so fields the market package adds travel along without a change here.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any

from scheduler.market import MarketResult


def dumps(result: MarketResult) -> str:
    return json.dumps(dataclasses.asdict(result), allow_nan=False)


def loads(text: str) -> MarketResult:
    out = _decode(MarketResult, json.loads(text))
    assert isinstance(out, MarketResult)
    return out


def _decode(kind: Any, value: Any) -> Any:
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        hints = typing.get_type_hints(kind)
        return kind(
            **{
                f.name: _decode(hints[f.name], value[f.name])
                for f in dataclasses.fields(kind)
                if f.init and f.name in value
            }
        )
    origin = typing.get_origin(kind)
    if origin is tuple:
        args = typing.get_args(kind)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], v) for v in value)
        return tuple(_decode(a, v) for a, v in zip(args, value, strict=True))
    if origin in (typing.Union, types.UnionType) and value is not None:
        for arg in typing.get_args(kind):
            if arg is not type(None):
                return _decode(arg, value)
    return value
