"""One prosumer as an agent: the only place its private data (load, PV, battery, grid
connection) is used.

Privacy is structural: a ``Prosumer`` is built from its own ``ProsumerData`` and the
public caps of its trading channels. Afterwards it is given prices (``respond``),
weights over its own past quotes (``combine``) or trade quantities (``settle``), and what
it gives back is trade quantities and numbers: quotes (what it would sell and buy at the
prices, and what that schedule costs it), the least net purchase it can live with per
period (``floor``), its settled cost and what it could not cover. Its schedules stay
inside until the report asks for the final one (``schedule``).

In the bilateral framework the same prosumer first trades in the pool (its prices start
the pairs): its bilateral self ``recall``s the quotes its pool self gave, nothing else.

Channels: the pool framework has one sell and one buy channel (the pool); the bilateral
framework one per peer link. Selling on channel k earns ``sell_price[k, t]``; buying pays
``buy_price[k, t] + p2p_fee``; both per kWh. The optimum is exact (``kernel.respond``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scheduler.dayahead.kernel import respond
from scheduler.dayahead.problem import Array, ProsumerData

GRID_IN, GRID_OUT, CURTAIL, SHORT = 0, 1, 2, 3
_OWN = 4  # channels before the trades
KEEP = 48  # distinct quotes a prosumer remembers (the operator's columns)


@dataclass(frozen=True)
class Quote:
    """What a prosumer tells the others at given prices."""

    value: float  # its objective: model cost plus what its trades pay at the prices
    s: Array  # (sell channels, T) kW offered
    b: Array  # (buy channels, T) kW bid
    short: float  # kWh it could not cover at all (> 0: no trade can balance it)
    short_kw: Array  # (T,) the same per period


@dataclass(frozen=True)
class Columns:
    """Its remembered quotes, as the operator's restricted master uses them."""

    net: Array  # (quotes, T) net purchase (buys - sells, kW)
    bought: Array  # (quotes, T) buys (kW): the P2P fee is paid on them
    grid: Array  # (quotes, T) what the grid costs it, per period
    separable: bool  # no battery: any mix of quotes per period is a schedule too
    ids: Array | None = None  # (quotes,) serial numbers: a quote keeps its own (None: 0..)

    def serials(self) -> Array:
        return np.arange(len(self.net)) if self.ids is None else self.ids


@dataclass(frozen=True)
class Settled:
    """What a prosumer tells the operator once its trades are fixed."""

    cost: float  # its model cost: grid and fee
    short: Array  # (T,) kW of need it cannot cover with these trades


@dataclass(frozen=True)
class Schedule:
    """A prosumer's own schedule (kW per period; ``e`` in kWh, T + 1 values)."""

    cost: float
    g_in: Array
    g_out: Array
    c: Array
    d: Array
    e: Array
    s: Array  # (sell channels, T)
    b: Array  # (buy channels, T)
    short: Array  # (T,)


class Prosumer:
    def __init__(self, own: ProsumerData, sell_cap: Array, buy_cap: Array) -> None:
        m = own.market
        self._own = own
        T = m.periods
        self.n_sell, self.n_buy = len(sell_cap), len(buy_cap)
        self.separable = not (own.charge_kw > 0 and own.battery_kwh > 0)
        self._y0 = own.load - own.pv
        # unmet need costs far more than any price: used only when nothing else covers it
        self._short_price = 1e3 * (1.0 + float(np.abs(m.buy).max()))
        big = 1.0 + own.grid_kw + own.charge_kw + float(np.abs(self._y0).max())
        big += float(np.sum(np.max(sell_cap, axis=1, initial=0.0)))
        big += float(np.sum(np.max(buy_cap, axis=1, initial=0.0)))
        n = _OWN + self.n_sell + self.n_buy
        self._src = np.zeros(n, dtype=np.bool_)
        self._src[[GRID_IN, SHORT]] = True
        self._src[_OWN + self.n_sell :] = True
        self._price = np.zeros((n, T))
        self._price[GRID_IN] = m.buy
        self._price[GRID_OUT] = m.sell
        self._price[SHORT] = self._short_price
        self._cap = np.zeros((n, T))
        self._cap[GRID_IN] = self._cap[GRID_OUT] = own.grid_kw
        self._cap[CURTAIL] = self._cap[SHORT] = big
        self._cap[_OWN : _OWN + self.n_sell] = sell_cap
        self._cap[_OWN + self.n_sell :] = buy_cap
        self._q = np.zeros((n, T))
        self._e = np.zeros(T + 1)
        self._c = np.zeros(T)
        self._d = np.zeros(T)
        # remembered quotes, in the order first quoted: rows net, bought, grid cost,
        # battery (c - d)
        self._memory: dict[bytes, Array] = {}
        self._seen: dict[bytes, int] = {}  # when each was last quoted
        self._clock = 0
        # serial numbers of the quotes the operator has been given (``columns``): given
        # then, not when quoted, so that they count only what the operator saw
        self._ids: dict[bytes, int] = {}
        self._serial = 0
        self._net_battery = np.zeros(T)  # c - d of the schedule it last took
        self._last: Schedule | None = None
        self._best: Schedule | None = None
        self.fresh = False  # its last quote was new to the operator (a new column)
        self._used: set[bytes] = set()  # quotes the operator's last mix used

    def explore(self, sell_price: Array, buy_price: Array) -> None:
        """With several links, also remember the schedules it would keep if all its trades
        cleared at one price: its links' mean price, and that less and plus the fee. They
        give the operator's master mixes that the link prices' ups and downs miss."""
        if self.n_sell + self.n_buy <= 2:
            return
        fee = self._own.market.fee
        level = (np.mean(sell_price, axis=0) + np.mean(buy_price, axis=0)) / 2
        for shift in (-fee, 0.0, fee):
            p = level + shift
            self.respond(np.tile(p, (self.n_sell, 1)), np.tile(p, (self.n_buy, 1)))

    def respond(self, sell_price: Array, buy_price: Array) -> Quote:
        """Its best schedule when channel prices are ``sell_price`` (n_sell, T) and
        ``buy_price`` (n_buy, T); it remembers the schedule and quotes its trades."""
        m = self._own.market
        s0, b0 = _OWN, _OWN + self.n_sell
        self._price[s0:b0] = sell_price
        self._price[b0:] = np.asarray(buy_price) + m.fee
        value = self._run(self._y0, self._price, self._cap, self._src, self._q)
        self.fresh = self._remember()
        return Quote(
            value=value,
            s=self._q[s0:b0].copy(),
            b=self._q[b0:].copy(),
            short=m.period_h * float(self._q[SHORT].sum()),
            short_kw=self._q[SHORT].copy(),
        )

    def _remember(self) -> bool:
        """Remember the schedule just solved; False if it was known already."""
        m = self._own.market
        q = self._q
        bought = q[_OWN + self.n_sell :].sum(axis=0)
        net = bought - q[_OWN : _OWN + self.n_sell].sum(axis=0)
        battery = self._c - self._d
        key = np.round(net, 9).tobytes() + np.round(battery, 9).tobytes()
        self._clock += 1
        if key in self._memory:
            # quoted again: newer, but in its place (the operator's last weights are by
            # position, and a repair may combine them after a round of known quotes)
            self._seen[key] = self._clock
            return False
        grid = m.period_h * (m.buy * q[GRID_IN] - m.sell * q[GRID_OUT])
        self._memory[key] = np.stack([net, bought, grid, battery])
        self._seen[key] = self._clock
        if len(self._memory) > KEEP:
            # forget the least recently quoted that the operator's last mix did not use:
            # dropping a used one would make the next master dearer than the last
            unused = [k for k in self._memory if k not in self._used] or list(self._memory)
            old = min(unused, key=self._seen.__getitem__)
            del self._memory[old], self._seen[old]
            self._ids.pop(old, None)
        return True

    def recall(self, other: Prosumer) -> None:
        """Remember the quotes this same prosumer gave in another framework (the pool's,
        whose prices start the bilateral pairs). Its own schedules: net purchase, buys,
        grid cost and battery per period, whatever channels carried the trades."""
        if other._own is not self._own:
            raise ValueError(f"{other._own.id}'s quotes offered to {self._own.id}")
        self._memory = dict(other._memory)
        self._seen = dict(other._seen)
        self._clock = other._clock
        self._ids, self._serial = dict(other._ids), other._serial
        self._used = set(other._used)  # kept when new quotes come: the pool's mix is in them

    def used(self, weights: Array) -> None:
        """The operator's last mix of its quotes (as ``combine``): those it used are kept."""
        w = np.asarray(weights).reshape(len(self._memory), -1)
        keys = list(self._memory)
        self._used = {keys[k] for k in np.flatnonzero(w.max(axis=1) > 1e-12)}

    def columns(self) -> Columns:
        """Its remembered quotes (the operator's columns), in the order first quoted."""
        kept = np.stack(list(self._memory.values()))
        for key in self._memory:
            if key not in self._ids:
                self._ids[key] = self._serial
                self._serial += 1
        ids = np.fromiter((self._ids[k] for k in self._memory), np.int64, len(self._memory))
        return Columns(kept[:, 0], kept[:, 1], kept[:, 2], self.separable, ids)

    def combine(self, weights: Array) -> None:
        """Take the schedule that mixes its remembered quotes by ``weights`` (quotes,) or,
        if separable, (quotes, T). A mix of its own schedules is one of its schedules;
        its battery part sets ``floor``."""
        kept = np.stack(list(self._memory.values()))
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim == 1:
            w = np.tile(w[:, None], (1, self._own.market.periods))
        self._net_battery = np.einsum("kt,kt->t", w, kept[:, 3])

    def floor(self) -> Array:
        """The least net purchase (buys - sells, kW) per period its combined battery
        schedule can live with: the need its grid connection cannot cover. Negative: it
        can sell that much. Trades that meet it in every period are feasible for it."""
        own = self._own
        return own.load + self._net_battery - own.pv - own.grid_kw

    def settle(self, sells: Array, buys: Array) -> Settled:
        """Its best schedule with its trades fixed to ``sells`` (n_sell, T) and ``buys``
        (n_buy, T): grid and battery move; ``short`` says what it cannot cover. The
        battery it settles on sets its next ``floor``."""
        m = self._own.market
        sells = np.asarray(sells, dtype=np.float64)
        buys = np.asarray(buys, dtype=np.float64)
        y = self._y0 + np.sum(sells, axis=0) - np.sum(buys, axis=0)
        own_q = np.zeros((_OWN, m.periods))
        self._run(y, self._price[:_OWN], self._cap[:_OWN], self._src[:_OWN], own_q)
        h = m.period_h
        cost = h * float(m.buy @ own_q[GRID_IN] - m.sell @ own_q[GRID_OUT] + m.fee * buys.sum())
        self._net_battery = self._c - self._d
        self._last = Schedule(
            cost=cost,
            g_in=own_q[GRID_IN],
            g_out=own_q[GRID_OUT],
            c=self._c.copy(),
            d=self._d.copy(),
            e=self._e.copy(),
            s=sells.copy(),
            b=buys.copy(),
            short=own_q[SHORT].copy(),
        )
        return Settled(cost, self._last.short.copy())

    def keep(self) -> None:
        """Keep the last settled schedule (the operator found the VPP's cheapest yet)."""
        self._best = self._last

    def schedule(self) -> Schedule:
        """Its kept schedule, for the report."""
        if self._best is None:
            raise RuntimeError("no schedule kept yet")
        return self._best

    def _run(self, y: Array, price: Array, cap: Array, src: Array, q: Array) -> float:
        own = self._own
        return float(
            respond(
                y, price, cap, src, own.market.period_h, own.efficiency, own.battery_kwh,
                own.charge_kw, own.e0, q, self._e, self._c, self._d,
            )
        )  # fmt: skip


def solve_prosumer(own: ProsumerData, sell_price: Array, buy_price: Array) -> Quote:
    """One-shot form of ``Prosumer.respond`` with the pool's caps: own data and prices
    in, own quote out."""
    sell_price, buy_price = np.atleast_2d(sell_price), np.atleast_2d(buy_price)
    ns, nb = len(sell_price), len(buy_price)
    agent = Prosumer(own, np.tile(own.sell_cap(), (ns, 1)), np.tile(own.buy_cap(), (nb, 1)))
    return agent.respond(sell_price, buy_price)
