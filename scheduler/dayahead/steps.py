"""Price steps of the subgradient method.

Both rules move a price in the direction of its row's imbalance (kWh bought - sold in
that market and period: a price rises while its market is short).

``PolyakStep`` (pool): the operator knows the VPP's bound L and its best repaired cost
UB, so it takes Polyak's step theta (UB - L) / |g|^2 g on all periods at once, theta
halved when the bound has not improved for ``stall`` iterations.

``PairStep`` (bilateral): each pair's price, period by period, moves from the two
parties' quantities alone: by its own step size in the direction of the sign of its
imbalance. The step grows by ``GROW`` while the sign stays (the price is still far from
clearing) and shrinks by ``SHRINK`` when it flips (the price crossed the clearing point),
but never below spread / iteration: a relay that swings a link by hundreds of kW moves
its price no more than a small trade would, and no price freezes before it clears.
"""

from __future__ import annotations

import numpy as np

from scheduler.dayahead.problem import Array

GROW = 1.2
SHRINK = 0.8


class PolyakStep:
    def __init__(self, theta: float = 2.0, stall: int = 20) -> None:
        self.theta, self.stall = theta, stall
        self._best, self._since = -np.inf, 0

    def step(self, price: Array, imbalance: Array, bound: float, cost: float) -> Array:
        if bound > self._best + 1e-9 * max(1.0, abs(bound)):
            self._best, self._since = bound, 0
        else:
            self._since += 1
            if self._since >= self.stall:
                self.theta, self._since = self.theta / 2, 0
        norm = float(np.sum(imbalance * imbalance))
        if norm == 0.0 or not np.isfinite(cost):
            return price
        return price + self.theta * max(cost - bound, 1e-9 * abs(cost)) / norm * imbalance


class PairStep:
    def __init__(self, spread: Array, shape: tuple[int, int]) -> None:
        # per market and period: the grid's spread bounds the step; the first is an eighth
        self._top = np.broadcast_to(np.maximum(spread, 1e-3), shape).copy()
        self._size = self._top / 8
        self._last = np.zeros(shape)
        self._it = 0

    def step(self, price: Array, imbalance: Array, bound: float, cost: float) -> Array:
        """``bound`` and ``cost`` are not used: a pair knows only its own quantities."""
        self._it += 1
        sign = np.sign(imbalance) * (np.abs(imbalance) > 1e-9)
        turn = sign * self._last
        size = np.where(turn > 0, np.minimum(self._size * GROW, self._top), self._size)
        size = np.where(turn < 0, size * SHRINK, size)
        self._size = np.maximum(size, self._top / self._it)
        self._last = np.where(sign != 0, sign, self._last)
        return price + self._size * sign
