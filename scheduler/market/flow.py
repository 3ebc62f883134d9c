"""Min-cost flow by HiGHS's simplex, with warm-started re-solves.

The LP of a min-cost flow with integer capacities has integral vertices, and the simplex
method ends on a vertex, so the rounded solution is the exact integer optimum; rounding
is checked, not assumed. Welfare is recomputed from the integer flow with ``math.fsum``
rather than read from HiGHS, so that two solves compare to the last bit that matters.

A re-solve without one participant sets its arc's upper bound to zero and starts the dual
simplex from the basis of the full optimum: only that one bound changed, so a few pivots
restore optimality.
"""

from __future__ import annotations

import math

import highspy
import numpy as np

from scheduler.highs import new_highs
from scheduler.market.errors import MarketError
from scheduler.market.network import SINK, SOURCE, FloatArray, IntArray, MarketNetwork

_INTEGRAL_TOL = 1e-6  # a vertex of this LP is integral; more than this off means a bug
_TOLERANCE = 1e-10  # HiGHS's tightest: near-ties between prices must not be misjudged


class FlowSolver:
    """One HiGHS model of a market network, solved once in full and then without each
    participant in turn."""

    def __init__(self, net: MarketNetwork) -> None:
        self.net = net
        self.highs = new_highs(
            solver="simplex",
            primal_feasibility_tolerance=_TOLERANCE,
            dual_feasibility_tolerance=_TOLERANCE,
        )
        self.highs.passModel(self._lp())
        self._basis: highspy.HighsBasis | None = None
        self._volume_row: int | None = None

    def _lp(self) -> highspy.HighsLp:
        net = self.net
        n_arcs, n_rows = net.n_arcs, net.n_nodes - 2
        lp = highspy.HighsLp()
        lp.num_col_ = n_arcs
        lp.num_row_ = n_rows
        lp.col_cost_ = net.cost.copy()
        lp.col_lower_ = np.zeros(n_arcs)
        lp.col_upper_ = net.cap.astype(np.float64)
        lp.row_lower_ = np.zeros(n_rows)
        lp.row_upper_ = np.zeros(n_rows)
        # column j: -1 in its tail's row, +1 in its head's row; source and sink have none
        index: list[int] = []
        value: list[float] = []
        start = [0]
        for a, b in zip(net.tail.tolist(), net.head.tolist(), strict=True):
            for node, sign in sorted(((a, -1.0), (b, 1.0))):
                if node not in (SOURCE, SINK):
                    index.append(node - 2)
                    value.append(sign)
            start.append(len(index))
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.num_col_ = n_arcs
        lp.a_matrix_.num_row_ = n_rows
        lp.a_matrix_.start_ = np.asarray(start, dtype=np.int32)
        lp.a_matrix_.index_ = np.asarray(index, dtype=np.int32)
        lp.a_matrix_.value_ = np.asarray(value, dtype=np.float64)
        return lp

    def solve(self) -> IntArray:
        """The welfare-maximising integer flow with every participant."""
        flow = self._run("the welfare solve")
        self._basis = self.highs.getBasis()
        return flow

    def solve_without(self, arc: int) -> IntArray:
        """The optimum with arc ``arc`` closed, warm-started from the full optimum."""
        if self._basis is None:
            raise MarketError("", "solve() must run before solve_without()")
        self.highs.changeColBounds(arc, 0.0, 0.0)
        self.highs.setBasis(self._basis)
        try:
            return self._run(f"the solve without {self.net.participants[arc].id}")
        finally:
            self.highs.changeColBounds(arc, 0.0, float(self.net.cap[arc]))

    def set_costs(self, cost: FloatArray) -> None:
        """Price every arc anew (max-volume first counts packets, then welfare)."""
        arcs = np.arange(self.net.n_arcs, dtype=np.int32)
        self.highs.changeColsCost(arcs.size, arcs, np.asarray(cost, dtype=np.float64))

    def set_upper(self, arcs: IntArray, upper: IntArray) -> None:
        """New capacities for ``arcs`` (0 closes an arc)."""
        index = np.asarray(arcs, dtype=np.int32)
        self.highs.changeColsBounds(
            index.size, index, np.zeros(index.size), np.asarray(upper, dtype=np.float64)
        )

    def fix_volume(self, volume: int) -> None:
        """Require exactly ``volume`` packets into the sink (one row, added once). The
        row is the sink's balance, so the matrix stays a network matrix: vertices stay
        integral."""
        if self._volume_row is None:
            into_sink = np.flatnonzero(self.net.head == SINK).astype(np.int32)
            self.highs.addRow(
                float(volume), float(volume), into_sink.size, into_sink, np.ones(into_sink.size)
            )
            self._volume_row = self.highs.getNumRow() - 1
        else:
            self.highs.changeRowBounds(self._volume_row, float(volume), float(volume))

    def run(self, what: str) -> IntArray:
        """Solve the model as it stands now (from the last basis HiGHS holds)."""
        return self._run(what)

    def _run(self, what: str) -> IntArray:
        if self.net.n_arcs == 0:  # nobody quotes: HiGHS calls an empty model no optimum
            return np.zeros(0, dtype=np.int64)
        self.highs.run()
        status = self.highs.getModelStatus()
        if status != highspy.HighsModelStatus.kOptimal:
            text = self.highs.modelStatusToString(status)
            raise MarketError("", f"HiGHS did not finish {what}: {text}")
        values = np.asarray(self.highs.getSolution().col_value, dtype=np.float64)
        flow = np.rint(values)
        if values.size and np.max(np.abs(values - flow)) > _INTEGRAL_TOL:
            raise MarketError("", f"HiGHS returned a fractional flow in {what}")
        return flow.astype(np.int64)


def welfare(net: MarketNetwork, flow: IntArray) -> float:
    """Buyers' values minus sellers' asks minus priced losses, of an integer flow."""
    used = np.flatnonzero(flow)
    return 0.0 - math.fsum((net.cost[used] * flow[used]).tolist())  # 0.0 -: never -0.0


def cancel_opposite(net: MarketNetwork, flow: IntArray) -> IntArray:
    """Flow both ways on one line shares its slots; take the smaller part off both
    directions. It changes nothing when losses are priced (an optimum never does it) and
    keeps zero-price optima within each line's slots."""
    out = flow.copy()
    links = np.flatnonzero(net.reverse >= 0)
    forward = links[links < net.reverse[links]]
    back = net.reverse[forward]
    both = np.minimum(out[forward], out[back])
    out[forward] -= both
    out[back] -= both
    return out
