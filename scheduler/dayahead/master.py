"""The operator's restricted master: the cheapest mix of the quotes it has been given.

Every prosumer has quoted schedules at the prices of the iterations (its ``Columns``:
the net purchase it would make per period, what it would buy, and what the grid would
cost it). A mix of one prosumer's quotes is a schedule it can keep (its constraints are
linear); a prosumer without a battery can mix them period by period. The master chooses
the mixes that balance the trades at least total cost: Dantzig-Wolfe's restricted master,
with the subgradient's responses as its columns. Its inputs are quotes and public terms
(prices, fee, the peer links), nothing else: no load, PV or battery reaches it.

Pool: in every period the mixed net purchases sum to 0; a quote pays the fee on what it
buys. Bilateral: the operator also routes the trades along the peer links (one flow per
link and period, the fee paid on every kWh a link carries), so that what each prosumer
receives less what it sends is its mixed net purchase. Where the quotes cannot balance,
a seller may sell less (at no cost here: it exports or curtails instead, which the
settlement prices) or, as a last resort, a buyer buy less (at ``UNMET`` times the dearest
grid price: it may have no grid capacity left to import instead).

A prosumer without a battery enters period by period through the lower convex hull of
its quotes (cost against net purchase): one bounded column per hull segment, no
convexity row; in the pool, segments of one period with one slope are one column. A
prosumer with a battery enters with one column per quote and a row that makes its
weights sum to 1.

Its row prices (``Mix.prices``) say what a kWh more bought at a row would cost: the
repair asks the prosumers for their schedules at those prices (column generation) until
the master's cost stops falling.

A bilateral master of a large VPP is one LP as costly as the centralised one (the
batteries' quote columns are dense); ``split_master`` takes it in steps instead: the
pool's master, one routing LP a period (``Router``) and located moves of the batteries'
mixes between them (docs/dayahead.md, "Primal recovery and repair").
"""

from __future__ import annotations

from dataclasses import dataclass

import highspy
import numpy as np
from numba import njit

from scheduler.dayahead.lp import INF, LpBuilder, solve
from scheduler.dayahead.problem import Array, MarketTerms
from scheduler.dayahead.prosumer import Columns
from scheduler.errors import SolverError

UNMET = 10.0  # a bid left unmet costs this many times the dearest grid price


@dataclass(frozen=True)
class Mix:
    weights: list[Array]  # per prosumer: (quotes,) or, separable, (quotes, T)
    net: Array  # (N, T) the mixed net purchases
    flows: Array | None  # (links, T) kW routed along each link (bilateral)
    cost: float  # the master's objective
    prices: Array  # (1, T) pool or (N, T) per prosumer: the balance rows' prices


@njit(cache=True, nogil=True)
def hull_segments(net: np.ndarray, cost: np.ndarray) -> tuple:
    """Per period, the lower convex hull of the points (net[k, t], cost[k, t]): the
    leftmost point's quote (T,) and the segments as (period, left quote, right quote)."""
    K, T = net.shape
    base = np.empty(T, dtype=np.int64)
    seg = np.empty((K * T, 3), dtype=np.int64)
    n_seg = 0
    hull = np.empty(K, dtype=np.int64)
    for t in range(T):
        order = np.argsort(net[:, t], kind="mergesort")
        m = 0
        for a in range(K):
            k = order[a]
            x, y = net[k, t], cost[k, t]
            if m > 0 and abs(net[hull[m - 1], t] - x) <= 1e-12:
                if y < cost[hull[m - 1], t]:
                    m -= 1  # the same net purchase, cheaper: replaces it
                else:
                    continue
            while m >= 2:
                i, j = hull[m - 2], hull[m - 1]
                # drop j unless it lies strictly below the line from i to k
                cross = (net[j, t] - net[i, t]) * (y - cost[i, t]) - (cost[j, t] - cost[i, t]) * (
                    x - net[i, t]
                )
                if cross <= 1e-15 * (1.0 + abs(y)):
                    m -= 1
                else:
                    break
            hull[m] = k
            m += 1
        base[t] = hull[0]
        for a in range(m - 1):
            seg[n_seg, 0] = t
            seg[n_seg, 1] = hull[a]
            seg[n_seg, 2] = hull[a + 1]
            n_seg += 1
    return base, seg[:n_seg]


@njit(cache=True, nogil=True)
def hull_weights(net: np.ndarray, base: np.ndarray, seg: np.ndarray, fill: np.ndarray) -> tuple:
    """Weights (quotes, T) and net purchases (T,): in each period, the mix of the two
    hull quotes around the point the segments' fill reaches."""
    K, T = net.shape
    w = np.zeros((K, T))
    target = np.empty(T)
    for t in range(T):
        target[t] = net[base[t], t]
        w[base[t], t] = 1.0
    for j in range(seg.shape[0]):
        target[seg[j, 0]] += fill[j]
    for j in range(seg.shape[0]):
        t, a, b = seg[j, 0], seg[j, 1], seg[j, 2]
        if target[t] <= net[a, t]:
            continue
        share = min((target[t] - net[a, t]) / (net[b, t] - net[a, t]), 1.0)
        for k in range(K):
            w[k, t] = 0.0
        w[a, t] = 1.0 - share
        w[b, t] = share
    return w, target


def restricted_master(
    market: MarketTerms,
    columns: list[Columns],
    links: list[tuple[int, int]] | None,
    kept: WarmMaster | None = None,
) -> Mix:
    """``links``: the directed peer links (bilateral), or None for the pool. ``kept``:
    the master of the last repair, solved again from its basis with these quotes."""
    if kept is None:
        return RestrictedMaster(market, columns, links).solve()
    return kept.solve(market, columns, links)


class RestrictedMaster:
    """The master's LP, kept so that it can be solved again with other costs for the
    quotes of the prosumers with a battery, or with more quotes (``update``), from the
    last basis."""

    def __init__(
        self,
        market: MarketTerms,
        columns: list[Columns],
        links: list[tuple[int, int]] | None,
    ) -> None:
        T, h, N = market.periods, market.period_h, len(columns)
        self.T, self.h = T, h
        self.market, self.links = market, links  # what it was built for
        self.bilateral = links is not None
        self.fee = 0.0 if self.bilateral else h * market.fee  # bilateral: the flows pay it
        lp = LpBuilder()
        # balance rows: the pool one per period, bilateral one per prosumer and period
        self.rows = lp.rows(0.0, 0.0, N * T if self.bilateral else T)
        # a prosumer with a battery: its weights sum to 1; its quotes' columns by serial
        self.convex = {i: int(lp.rows(1.0, 1.0, 1)[0]) for i, c in enumerate(columns)
                       if not c.separable}  # fmt: skip
        self.index: dict[int, dict[int, int]] = {i: {} for i in self.convex}
        self.flows = None
        if links is not None:
            self.flows = _flows(lp, self.rows, links, h * market.fee, T)
        _slacks(lp, self.rows, market)
        self.dead = 0  # columns of forgotten quotes and old hull segments, fixed at 0
        self.groups: dict[tuple[float, ...], int] = {}  # a hull segment's key -> column
        rhs = self._add(lp, columns)
        lp.set_bounds(self.rows, rhs, rhs)
        self.highs = lp.highs()
        self.changed = False  # the battery quotes' costs are not their own

    def fits(
        self, market: MarketTerms, columns: list[Columns], links: list[tuple[int, int]] | None
    ) -> bool:
        """Whether ``update`` can take these quotes: the same VPP and framework, and
        quotes with serial numbers (without, they cannot be told from the last ones)."""
        batteries = [i for i, c in enumerate(columns) if not c.separable]
        return (
            market is self.market
            and links == self.links
            and batteries == list(self.convex)
            and all(c.ids is not None for c in columns)
        )

    def update(self, columns: list[Columns]) -> None:
        """The prosumers' quotes now: new ones become columns, forgotten ones and the
        old hull segments are fixed at 0; the basis stays, so the next solve goes on
        from the last one's (column generation)."""
        highs = self.highs
        gone: list[int] = []
        for i in self.convex:
            now = set(columns[i].serials().tolist())
            index = self.index[i]
            for k in [k for k in index if k not in now]:
                gone.append(index.pop(k))
        lp = LpBuilder(cols=highs.getNumCol())
        rhs = self._add(lp, columns)
        lp.add_to(highs)
        gone += self.unused
        kept, length = self.resized
        if len(kept):
            highs.changeColsBounds(len(kept), kept.astype(np.int32), np.zeros(len(kept)), length)
        if gone:
            zero = np.zeros(len(gone))
            highs.changeColsBounds(len(gone), np.array(gone, dtype=np.int32), zero, zero)
        highs.changeRowsBounds(len(self.rows), self.rows.astype(np.int32), rhs, rhs)
        self.dead += len(gone)

    def _add(self, lp: LpBuilder, columns: list[Columns]) -> Array:
        """Columns for the quotes not in the LP yet and for the hulls' segments; the
        balance rows' right sides (the hulls' left ends moved there)."""
        T, bilateral = self.T, self.bilateral
        self.columns = columns
        rhs = np.zeros(len(self.rows))
        periods = np.arange(T)
        hulls: dict[int, tuple[Array, Array, Array, Array]] = {}  # i -> base, seg, length, slope
        self.mixes: dict[int, Array] = {}  # i -> column indices of its quotes, in order
        self.costs: dict[int, Array] = {}  # i -> what each of its quotes costs
        self.constant = 0.0
        for i, col in enumerate(columns):
            cost = col.grid + self.fee * col.bought
            if col.separable:
                hulls[i] = _hull(col.net, cost)
                base = hulls[i][0]
                rhs[_row(i, periods, T, bilateral)] -= col.net[base, periods]
                self.constant += float(cost[base, periods].sum())
                continue
            self.costs[i] = cost.sum(axis=1)
            index, serials = self.index[i], col.serials()
            new = np.flatnonzero([s not in index for s in serials.tolist()])
            if len(new):
                idx = lp.cols(self.costs[i][new], 0.0, 1.0)  # a weight: at most 1 (boxed,
                # which keeps the dual simplex from phase 1 when quotes come or costs change)
                k, t = np.nonzero(np.abs(col.net[new]) > 1e-12)
                lp.entries(self.rows[_row(i, t, T, bilateral)], idx[k], col.net[new][k, t])
                lp.entries(np.full(len(idx), self.convex[i]), idx, 1.0)
                index.update(zip(serials[new].tolist(), idx.tolist(), strict=True))
            self.mixes[i] = np.array([index[s] for s in serials.tolist()], dtype=np.int64)
        self.hulls = hulls
        self._segments(lp, columns)
        return rhs

    def _segments(self, lp: LpBuilder, columns: list[Columns]) -> None:
        """The hull segments as bounded columns, one per key: bilateral, a segment is
        keyed by its prosumer, period and end quotes; pool, by its period and slope (any
        split of one slope costs the same), its fill shared by the segments in proportion
        to their lengths. A key the LP has keeps its column (``resized``: their new
        lengths); ``unused``: the columns of keys gone; ``fills``: per prosumer, a
        function of the solution that gives its segments' fill."""
        hulls, T = self.hulls, self.T
        old, self.groups, self.fills = self.groups, {}, {}
        self.resized: tuple[Array, Array] = (np.zeros(0, dtype=np.int64), np.zeros(0))
        self.unused = list(old.values())
        if not hulls:
            return
        owner, seg, length, slope = _stacked(hulls)
        t = seg[:, 0]
        if self.bilateral:
            ends = np.concatenate([columns[i].serials()[hulls[i][1][:, 1:]] for i in hulls])
            keys = np.column_stack([owner, t, ends]).astype(np.float64)
            rows = self.rows[owner * T + t]
        else:
            keys = np.column_stack([t, np.round(slope, 12)])
            rows = self.rows[t]
        groups, group = np.unique(keys, axis=0, return_inverse=True)
        group = group.ravel()
        total = np.bincount(group, weights=length, minlength=len(groups))
        col = np.empty(len(groups), dtype=np.int64)
        new = []
        for g, key in enumerate(map(tuple, groups.tolist())):
            c = old.pop(key, None)
            if c is None:
                new.append(g)
            else:
                col[g] = c
            self.groups[key] = g
        self.unused = list(old.values())
        is_new = np.zeros(len(groups), dtype=np.bool_)
        is_new[new] = True
        first = np.zeros(len(groups), dtype=np.int64)  # a segment of each group
        first[group[::-1]] = np.arange(len(group))[::-1]
        col[is_new] = lp.cols(slope[first[is_new]], 0.0, total[is_new])
        lp.entries(rows[first[is_new]], col[is_new], 1.0)
        self.resized = (col[~is_new], total[~is_new])
        self.groups = {key: int(col[g]) for key, g in self.groups.items()}
        share = np.divide(length, total[group], out=np.zeros_like(length), where=total[group] > 0)
        start = 0
        for i in hulls:
            part = slice(start, start + len(hulls[i][1]))
            self.fills[i] = lambda v, c=col[group[part]], s=share[part]: v[c] * s
            start = part.stop

    def solve(self, extra: dict[int, Array] | None = None) -> Mix:
        """The cheapest mix; ``extra``: per prosumer with a battery, a cost (quotes,)
        added to its quotes' own for this solve (the others' and later solves' without)."""
        T, h, columns = self.T, self.h, self.columns
        highs = self.highs
        if extra or self.changed:
            change = extra or {}
            idx = np.concatenate([self.mixes[i] for i in self.costs]).astype(np.int32)
            cost = np.concatenate([self.costs[i] + change.get(i, 0.0) for i in self.costs])
            highs.changeColsCost(len(idx), idx, cost)
            # the dual simplex goes on from the last basis: the quotes' columns are
            # boxed (a weight is at most 1), so bound flips keep it dual feasible
            self.changed = bool(extra)
        v = solve(highs, "the operator's restricted master")
        weights: list[Array] = []
        net = np.zeros((len(columns), T))
        for i, col in enumerate(columns):
            if i in self.mixes:
                w = np.maximum(v[self.mixes[i]], 0.0)
                w /= max(w.sum(), 1e-300)
                weights.append(w)
                net[i] = w @ col.net
            else:
                base, seg, _, _ = self.hulls[i]
                w, net[i] = hull_weights(col.net, base, seg, self.fills[i](v))
                weights.append(w)
        # a kWh more to buy at a row costs its dual: the price a quote at that row faces
        prices = -np.asarray(highs.getSolution().row_dual)[self.rows].reshape(-1, T) / h
        total = float(highs.getInfo().objective_function_value) + self.constant
        routed = None if self.flows is None else np.maximum(v[self.flows], 0.0)
        return Mix(weights, net, routed, total, prices)


class WarmMaster:
    """The operator's master kept between repairs: each solve adds the new quotes to the
    last LP (``RestrictedMaster.update``) and goes on from its basis. Built anew when the
    columns fixed at 0 are more than half of all."""

    def __init__(self) -> None:
        self.master: RestrictedMaster | None = None

    def master_for(
        self, market: MarketTerms, columns: list[Columns], links: list[tuple[int, int]] | None
    ) -> RestrictedMaster:
        m = self.master
        if m is None or not m.fits(market, columns, links) or 2 * m.dead > m.highs.getNumCol():
            self.master = m = RestrictedMaster(market, columns, links)
        else:
            m.update(columns)
        return m

    def solve(
        self, market: MarketTerms, columns: list[Columns], links: list[tuple[int, int]] | None
    ) -> Mix:
        try:
            return self.master_for(market, columns, links).solve()
        except SolverError:  # once more from scratch, in case the warm start went wrong
            self.master = RestrictedMaster(market, columns, links)
            return self.master.solve()


def _slacks(lp: LpBuilder, rows: Array, market: MarketTerms) -> None:
    """Per balance row, a seller selling less (free) and, as a last resort, a buyer
    buying less (``UNMET`` times the dearest grid price)."""
    unmet_price = market.period_h * UNMET * (1.0 + float(market.buy.max()))
    lp.entries(rows, lp.cols(np.zeros(len(rows)), 0.0, INF), 1.0)
    lp.entries(rows, lp.cols(np.full(len(rows), unmet_price), 0.0, INF), -1.0)


def _hull(net: Array, cost: Array) -> tuple[Array, Array, Array, Array]:
    """One prosumer's quotes per period as its lower convex hull: the leftmost quote per
    period, the segments (period, left, right), their lengths (kW) and slopes."""
    base, seg = hull_segments(net, cost)
    t, lo, hi = seg[:, 0], seg[:, 1], seg[:, 2]
    length = net[hi, t] - net[lo, t]
    slope = (cost[hi, t] - cost[lo, t]) / np.where(length > 0, length, 1.0)
    return base, seg, length, slope


def _stacked(hulls: dict[int, tuple[Array, Array, Array, Array]]) -> tuple[Array, ...]:
    """Every prosumer's hull segments in one list, in the dict's order: each one's
    owner, (period, left, right), length and slope."""
    if not hulls:
        return np.zeros(0, np.int64), np.zeros((0, 3), np.int64), np.zeros(0), np.zeros(0)
    owner = np.concatenate([np.full(len(h[1]), i, dtype=np.int64) for i, h in hulls.items()])
    seg = np.concatenate([h[1] for h in hulls.values()]).astype(np.int64)
    length = np.concatenate([h[2] for h in hulls.values()])
    slope = np.concatenate([h[3] for h in hulls.values()])
    return owner, seg, length, slope


def _row(i: int, t: Array, T: int, bilateral: bool) -> Array:
    return i * T + t if bilateral else t


def _flows(lp: LpBuilder, rows: Array, links: list[tuple[int, int]], fee: float, T: int) -> Array:
    """One flow per link and period, paying the fee; it supplies its buyer's row and
    draws on its seller's."""
    a = np.array([p[0] for p in links], dtype=np.int64)
    z = np.array([p[1] for p in links], dtype=np.int64)
    x = lp.cols(np.full(len(links) * T, fee), 0.0, INF).reshape(len(links), T)
    periods = np.arange(T)
    lp.entries(rows[(z[:, None] * T + periods).ravel()], x.ravel(), -1.0)
    lp.entries(rows[(a[:, None] * T + periods).ravel()], x.ravel(), 1.0)
    return x


def split_master(
    market: MarketTerms,
    columns: list[Columns],
    links: list[tuple[int, int]],
    kept: WarmMaster | None = None,
) -> Mix:
    """The bilateral master in steps, for VPPs too large for one LP. The prosumers with a
    battery first take their mixes from the pool's master (as if every trade took one
    link); then, period by period, the operator routes along the links and mixes the
    quotes of those without a battery around them (``Router``). The routing's node prices
    say where a battery's kWh is dear: the pool's master, its battery quotes' costs
    corrected by (node price - the first pool price), proposes located mixes, and the
    batteries move towards them by the largest share of ``SHARES`` that lowers the routed
    cost (successive linear programming with a line search, from one share above the last
    that did), ``LOCATE_STEPS`` at most. ``kept``: the pool master of the last repair."""
    h = market.period_h
    one_hop = [Columns(c.net, np.maximum(c.net, 0.0), c.grid, c.separable, c.ids) for c in columns]
    if kept is None:
        master = RestrictedMaster(market, one_hop, None)
    else:  # the last repair's pool master, solved on
        master = kept.master_for(market, one_hop, None)
    pool = master.solve()
    batteries = [i for i, c in enumerate(columns) if not c.separable]
    router = Router(market, columns, links, batteries)
    weights = {i: pool.weights[i] for i in batteries}
    routed = _routed(router, columns, weights)
    price = pool.prices[0]  # kept: the pool's level, the node prices' departures from it
    first = 0  # the share tried first: one above the last that lowered the cost
    for _ in range(LOCATE_STEPS if batteries else 0):
        # the one-hop fee on buys stays too, though the node prices hold the fees: the
        # exact linearisation (less h fee bought) proposed nothing that lowered the cost
        # (stuck at +1.2 % on the benchmark's 100 x 96, against +0.45 % with the fee)
        extra = {i: h * columns[i].net @ (routed.prices[i] - price) for i in batteries}
        target = master.solve(extra)
        for k in range(first, len(SHARES)):
            share = SHARES[k]
            trial = {i: (1 - share) * weights[i] + share * target.weights[i] for i in batteries}
            moved = _routed(router, columns, trial)
            if moved.cost < routed.cost - LOCATE_GAIN * abs(routed.cost):
                weights, routed, first = trial, moved, max(k - 1, 0)
                break
        else:
            # the cost is convex along the move: if its smallest share does not lower
            # it, no share does, and the mixes stay
            break
    return routed


LOCATE_STEPS = 50  # located mixes proposed at most
SHARES = (0.5, 0.25, 0.1, 0.03)  # of a proposal tried, largest first
LOCATE_GAIN = 1e-5  # a move must lower the cost by this share at least


def _routed(router: Router, columns: list[Columns], weights: dict[int, Array]) -> Mix:
    """The routing around the batteries' mixes; its cost includes theirs."""
    fixed = {i: w @ columns[i].net for i, w in weights.items()}
    routed = router(fixed)
    battery_cost = sum(float(w @ columns[i].grid.sum(axis=1)) for i, w in weights.items())
    out = list(routed.weights)
    for i, w in weights.items():
        out[i] = w
    return Mix(out, routed.net, routed.flows, routed.cost + battery_cost, routed.prices)


class Router:
    """The routing LPs of one set of quotes, one per period, kept between calls: only
    the fixed prosumers' net purchases (the rows' bounds) change, so each call starts
    from the last basis."""

    def __init__(
        self,
        market: MarketTerms,
        columns: list[Columns],
        links: list[tuple[int, int]],
        fixed: list[int],
    ) -> None:
        T, h, N = market.periods, market.period_h, len(columns)
        self.T, self.h, self.N = T, h, N
        self.columns = columns
        self.free = sorted(set(range(N)) - set(fixed))
        self.hulls = {i: _hull(columns[i].net, columns[i].grid) for i in self.free}
        # the free prosumers' hull ends: constants on the right side, and their cost
        self.rhs = np.zeros((N, T))
        self.constant = 0.0
        periods = np.arange(T)
        for i, (base, _, _, _) in self.hulls.items():
            self.rhs[i] = -columns[i].net[base, periods]
            self.constant += float(columns[i].grid[base, periods].sum())
        owner, seg, length, slope = _stacked(self.hulls)
        seg_t = seg[:, 0]
        first = np.cumsum([0] + [len(self.hulls[i][1]) for i in self.free])
        self.owner_part = {i: slice(first[k], first[k + 1]) for k, i in enumerate(self.free)}
        self.models: list[tuple[highspy.Highs, Array, Array, Array]] = []
        for t in range(T):
            lp = LpBuilder()
            rows = lp.rows(self.rhs[:, t], self.rhs[:, t], N)
            at = np.flatnonzero(seg_t == t)
            segs = lp.cols(slope[at], 0.0, length[at])
            lp.entries(rows[owner[at]], segs, 1.0)
            x = _flows(lp, rows, links, h * market.fee, 1)[:, 0]
            _slacks(lp, rows, market)
            self.models.append((lp.highs(), at, segs, x))
        self.n_seg = len(owner)

    def __call__(self, fixed: dict[int, Array]) -> Mix:
        T, h, N = self.T, self.h, self.N
        rhs = self.rhs.copy()
        ids = np.array(list(fixed), dtype=np.int32)
        for i, n in fixed.items():
            rhs[i] = -n
        fill = np.zeros(self.n_seg)
        flows = np.zeros((len(self.models[0][3]), T))
        prices = np.zeros((N, T))
        cost = self.constant
        for t, (highs, at, segs, x) in enumerate(self.models):
            if len(ids):
                highs.changeRowsBounds(len(ids), ids, rhs[ids, t], rhs[ids, t])
            v = solve(highs, "the operator's routing LP")
            cost += float(highs.getInfo().objective_function_value)
            flows[:, t] = np.maximum(v[x], 0.0)
            prices[:, t] = -np.asarray(highs.getSolution().row_dual)[:N] / h
            fill[at] = v[segs]
        weights: list[Array] = [np.zeros(0)] * N
        net = np.zeros((N, T))
        for i, n in fixed.items():
            net[i] = n
        for i, (base, seg, _, _) in self.hulls.items():
            weights[i], net[i] = hull_weights(
                self.columns[i].net, base, seg, fill[self.owner_part[i]]
            )
        return Mix(weights, net, flows, cost, prices)
