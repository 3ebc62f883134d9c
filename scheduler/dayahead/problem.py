"""The day-ahead model as plain arrays: one ``ProsumerData`` per prosumer (its own data
only) and the shared market terms. See docs/dayahead.md for the formulas."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.dayahead import DayAhead

Array = np.ndarray


@dataclass(frozen=True)
class MarketTerms:
    """What every prosumer knows: periods, grid tariffs and the P2P fee."""

    periods: int
    period_h: float
    buy: Array
    sell: Array
    fee: float


@dataclass(frozen=True)
class ProsumerData:
    """One prosumer's private data (the only data its subproblem ever sees)."""

    id: str
    load: Array
    pv: Array
    battery_kwh: float
    battery_kw: float
    efficiency: float
    soc0: float
    grid_kw: float
    market: MarketTerms

    @property
    def e0(self) -> float:
        return self.soc0 * self.battery_kwh

    @property
    def charge_kw(self) -> float:
        return self.battery_kw if self.battery_kwh > 0 else 0.0

    def sell_cap(self) -> Array:
        """No optimum needs to sell more than PV, discharge and import (see the docs)."""
        return self.pv + self.charge_kw + self.grid_kw

    def buy_cap(self) -> Array:
        return self.load + self.charge_kw + self.grid_kw

    def surplus_cap(self) -> Array:
        """The most it can offer from its own PV and battery net of its load (kW)."""
        return np.maximum(self.pv + self.charge_kw - self.load, 0.0)

    def beyond_grid(self) -> Array:
        """The most it can need beyond what its grid connection brings (kW)."""
        return np.maximum(self.load + self.charge_kw - self.pv - self.grid_kw, 0.0)


@dataclass(frozen=True)
class Problem:
    name: str
    market: MarketTerms
    prosumers: tuple[ProsumerData, ...]
    links: tuple[tuple[int, int], ...]  # directed (seller, buyer) indices, bilateral

    @property
    def ids(self) -> list[str]:
        return [p.id for p in self.prosumers]

    def link_cap(self) -> Array:
        """A bound on any peer link's trade per period (kW) that some optimum keeps, so
        that the Lagrangian bound stays valid with relaying (docs/dayahead.md proves it):
        what all prosumers can offer from PV and batteries, plus what all can need beyond
        their grid connections. Each prosumer announces its own two profiles; only the
        sums are used."""
        offer = np.sum([p.surplus_cap() for p in self.prosumers], axis=0)
        need = np.sum([p.beyond_grid() for p in self.prosumers], axis=0)
        return offer + need


def build_problem(day: DayAhead) -> Problem:
    m = day.dayahead
    terms = MarketTerms(
        periods=m.periods,
        period_h=m.period_h,
        buy=np.asarray(m.grid_buy_price, dtype=np.float64),
        sell=np.asarray(m.grid_sell_price, dtype=np.float64),
        fee=m.p2p_fee,
    )
    pros = tuple(
        ProsumerData(
            id=p.id,
            load=np.asarray(p.load_kw, dtype=np.float64),
            pv=np.asarray(p.pv_kw, dtype=np.float64),
            battery_kwh=p.battery_kwh,
            battery_kw=p.battery_kw,
            efficiency=p.efficiency,
            soc0=p.soc0,
            grid_kw=p.grid_kw,
            market=terms,
        )
        for p in day.prosumers
    )
    index = {p.id: i for i, p in enumerate(pros)}
    links = tuple((index[a], index[b]) for a, b in day.links())
    return Problem(day.name, terms, pros, links)


def grid_alone_costs(problem: Problem) -> Array:
    """Each prosumer's optimum trading with the grid alone (no P2P), from its own LP; NaN
    for a prosumer whose grid connection, PV and battery cannot cover its load alone."""
    from scheduler.dayahead.prosumer import Prosumer

    T = problem.market.periods
    out = np.zeros(len(problem.prosumers))
    none = np.zeros((0, T))
    for i, p in enumerate(problem.prosumers):
        settled = Prosumer(p, none, none).settle(none, none)
        out[i] = np.nan if settled.short.max(initial=0.0) > 1e-9 else settled.cost
    return out
