"""Read a day-ahead VPP file (``[dayahead]`` and ``[[prosumers]]``) into checked models.

Errors are the scenario loader's located one-line ``ScenarioError`` (file, line, entry,
what is wrong); the numeric core in ``scheduler.dayahead`` takes the frozen models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bench.errors import ScenarioError
from bench.loader import locate_in, problems_error, validation_problems
from bench.toml_read import read_toml

Id = Field(pattern=r"^[A-Za-z0-9_.\-]{1,40}$")
Framework = Literal["pool", "bilateral"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Market(_Frozen):
    periods: int = Field(ge=1, le=10_000)
    period_h: float = Field(gt=0, allow_inf_nan=False)
    grid_buy_price: tuple[float, ...]
    grid_sell_price: tuple[float, ...]
    p2p_fee: float = Field(ge=0, allow_inf_nan=False)


class Prosumer(_Frozen):
    id: str = Id
    load_kw: tuple[float, ...]
    pv_kw: tuple[float, ...]
    battery_kwh: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    battery_kw: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    efficiency: float = Field(default=0.95, gt=0, le=1)
    soc0: float = Field(default=0.5, ge=0, le=1)
    grid_kw: float = Field(ge=0, allow_inf_nan=False)
    peers: tuple[str, ...] = ()


class DayAhead(_Frozen):
    name: str = "vpp"
    dayahead: Market
    # no min_length: pydantic would add "at least 1 item" whenever every entry is bad
    prosumers: tuple[Prosumer, ...]

    @model_validator(mode="after")
    def _consistent(self) -> DayAhead:
        m = self.dayahead
        if not self.prosumers:
            raise ScenarioError("prosumers", "no prosumers; give at least one [[prosumers]]")
        for key in ("grid_buy_price", "grid_sell_price"):
            _check_list(getattr(m, key), m.periods, f"dayahead.{key}")
        for t, (buy, sell) in enumerate(zip(m.grid_buy_price, m.grid_sell_price, strict=True)):
            if buy < sell:
                raise ScenarioError(
                    "dayahead.grid_buy_price",
                    f"period {t}: buy price {buy:g} is below the sell price {sell:g} "
                    f"(a prosumer could buy and sell back without end); make buy >= sell",
                )
        ids = [p.id for p in self.prosumers]
        seen: set[str] = set()
        for k, p in enumerate(self.prosumers):
            if p.id in seen:
                raise ScenarioError(
                    f"prosumers[{k}].id",
                    f"duplicate prosumer id '{p.id}' (it names an earlier prosumer); "
                    f"give every prosumer its own id",
                )
            seen.add(p.id)
        for p in self.prosumers:
            where = f"prosumers[{p.id}]"
            for key in ("load_kw", "pv_kw"):
                _check_list(getattr(p, key), m.periods, f"{where}.{key}", nonneg=True)
            for peer in p.peers:
                if peer not in ids:
                    raise ScenarioError(
                        f"{where}.peers", f"unknown peer '{peer}' (prosumer ids: {_few(ids)})"
                    )
                if peer == p.id:
                    raise ScenarioError(f"{where}.peers", "a prosumer cannot be its own peer")
        return self

    def links(self) -> list[tuple[str, str]]:
        """Directed trading links of the bilateral framework (a peer link goes both ways)."""
        pairs: set[tuple[str, str]] = set()
        for p in self.prosumers:
            for q in p.peers:
                pairs.add((p.id, q))
                pairs.add((q, p.id))
        return sorted(pairs)


def _few(ids: list[str]) -> str:
    return ", ".join(ids[:6]) + (", ..." if len(ids) > 6 else "")


def _check_list(values: tuple[float, ...], n: int, where: str, nonneg: bool = False) -> None:
    if len(values) != n:
        raise ScenarioError(where, f"has {len(values)} values; give one per period ({n})")
    for t, v in enumerate(values):
        if v != v or v in (float("inf"), float("-inf")):
            raise ScenarioError(where, f"period {t}: must be a finite number (got {v!r})")
        if nonneg and v < 0:
            raise ScenarioError(where, f"period {t}: must be >= 0 (got {v:g})")


def load_dayahead(path: str | Path) -> DayAhead:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError("", "no such file", source=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError("", f"cannot read: {exc}", source=str(path)) from exc
    return parse_dayahead_text(text, source=str(path))


def parse_dayahead_text(text: str, source: str = "<dayahead>") -> DayAhead:
    data = read_toml(text, source)
    try:
        return parse_dayahead(data)
    except ScenarioError as exc:
        raise locate_in(exc, text, source) from None


def parse_dayahead(data: dict[str, Any]) -> DayAhead:
    try:
        return DayAhead.model_validate(data)
    except ValidationError as exc:
        raise problems_error(validation_problems(exc, data, DayAhead)) from None
