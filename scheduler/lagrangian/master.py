"""The master problem over packet columns, in HiGHS.

    minimise   sum_j cost_j x_j                        (cost: true cost - value)
    subject to sum_{j of k} x_j            <= n_k      every transfer
               sum_{j using r in block} x_j <= |block|  every resource-block
               sum_{j holding b in block} x_j <= B_b |block|   every storage-block
               sum_{j of k starting at t} x_j <= 1     every (transfer, slot), blocks > 1
               0 <= x_j <= 1

Its LP, restricted to the columns generated so far, is the restricted master of
column generation (Dantzig-Wolfe), the LP dual of the Lagrangian relaxation: its row
duals are prices, and pricing them with the exact subproblems gives a certified bound
and the next columns. With blocks of slots its duals are the best prices that are
constant over each block, which the subgradient then refines (``levels``). With
``block = 1`` and integer columns it is the exact model restricted to a pool of
columns: HiGHS picks the best plan made of them (``pool``).
"""

from __future__ import annotations

import highspy
import numpy as np
from numpy.typing import NDArray

from scheduler.highs import new_highs
from scheduler.lagrangian.columns import Columns, capacities, column_entries, key_space
from scheduler.problem import PlanningProblem

Floats = NDArray[np.float64]
REDUCED_COST_TOL = 1e-9  # a column enters the LP only if it would improve it by more


class ColumnMaster:
    def __init__(self, problem: PlanningProblem, block: int) -> None:
        p = problem
        self.p, self.block = p, block
        self.n_res, self.n_store = p.n_resources, len(p.store_ids)
        space = key_space(self.n_res, self.n_store, p.n_transfers, p.n_slots, block)
        self.row_of = np.full(space, -1, dtype=np.int64)
        self.caps = capacities(p.store_cap, self.n_res, p.n_slots, block)
        self.pair_base = len(self.caps)
        # primal simplex from the last basis: new columns leave it primal feasible
        self.h = new_highs(presolve="off", simplex_strategy=4)
        n = p.n_transfers
        self._add_rows(np.full(n, -np.inf), p.tr_packets.astype(np.float64))
        self.n_rows = n
        self.chunks: list[Columns] = []
        self.keys: set[int] = set()

    @property
    def n_columns(self) -> int:
        return sum(len(c.k) for c in self.chunks)

    def columns(self) -> Columns:
        return Columns.concat(self.chunks)

    def _add_rows(self, lower: Floats, upper: Floats) -> None:
        none_i, none_f = np.zeros(0, dtype=np.int32), np.zeros(0)
        self.h.addRows(len(upper), lower, upper, 0, none_i, none_i, none_f)

    def add(self, cols: Columns, duals: Floats | None = None) -> int:
        """Add the columns not seen before; with ``duals``, only those whose reduced cost
        is negative. Returns how many were added."""
        cols = cols.distinct()
        fresh = np.fromiter((int(k) not in self.keys for k in cols.key), bool, len(cols.key))
        if not fresh.any():
            return 0
        cols = cols.take(fresh)
        a, p = self.p.arrays, self.p
        ptr, keys, coefs = column_entries(
            a, cols.k, cols.r, cols.slots, self.block, p.n_slots, self.n_res
        )
        if duals is not None:
            rows = self.row_of[keys]
            y = np.where(rows >= 0, duals[np.maximum(rows, 0)], 0.0)
            priced = np.add.reduceat(coefs * y, ptr[:-1]) if keys.size else np.zeros(len(cols.k))
            priced[np.diff(ptr) == 0] = 0.0  # reduceat repeats a value for empty columns
            reduced = cols.cost - duals[cols.k] - priced
            keep = np.flatnonzero(reduced < -REDUCED_COST_TOL)
            if keep.size == 0:
                return 0
            cols = cols.take(keep)
            ptr, keys, coefs = column_entries(
                a, cols.k, cols.r, cols.slots, self.block, p.n_slots, self.n_res
            )
        self._create_rows(keys)
        n = len(cols.k)
        # each column: its transfer row, then its resource/storage/pair rows
        counts = np.diff(ptr) + 1
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        index = np.empty(int(counts.sum()), dtype=np.int64)
        value = np.ones(len(index))
        index[starts] = cols.k
        body = np.ones(len(index), dtype=bool)
        body[starts] = False
        index[body] = self.row_of[keys]
        value[body] = coefs
        self.h.addCols(
            n,
            cols.cost,
            np.zeros(n),
            np.ones(n),
            len(index),
            starts.astype(np.int32),
            index.astype(np.int32),
            value,
        )
        self.chunks.append(cols)
        self.keys.update(int(k) for k in cols.key)
        return n

    def _create_rows(self, keys: NDArray[np.int64]) -> None:
        new = np.unique(keys[self.row_of[keys] < 0])
        if new.size == 0:
            return
        self.row_of[new] = self.n_rows + np.arange(new.size)
        self.n_rows += new.size
        caps = np.where(new < self.pair_base, self.caps[np.minimum(new, self.pair_base - 1)], 1.0)
        self._add_rows(np.full(new.size, -np.inf), caps)

    def solve(self, time_limit_s: float = float("inf")) -> tuple[float, Floats]:
        """The restricted master's LP value (with the values of all packets added back,
        comparable to plan objectives; NaN if not solved to optimality) and its row
        duals (<= 0). Stopped by the time limit, the duals are not optimal, but still
        prices: any prices give a bound."""
        self.h.setOptionValue("time_limit", max(0.001, float(time_limit_s)))
        self.h.run()
        duals = np.asarray(self.h.getSolution().row_dual, dtype=np.float64)
        if self.h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return float("nan"), duals
        value = self.h.getInfo().objective_function_value
        return float(value) + float(self.p.tr_value @ self.p.tr_packets), duals

    def prices(self, duals: Floats, lam: Floats, mu: Floats) -> None:
        """Write the duals of resource- and storage-block rows as slot prices >= 0."""
        n_slots, block = self.p.n_slots, self.block
        n_blocks = -(-n_slots // block)
        by_key = np.zeros(self.pair_base)
        known = np.flatnonzero(self.row_of[: self.pair_base] >= 0)
        by_key[known] = np.maximum(0.0, -duals[self.row_of[known]])
        per_block = by_key.reshape(self.n_res + self.n_store, n_blocks)
        per_slot = np.repeat(per_block, block, axis=1)[:, :n_slots]
        lam[:] = per_slot[: self.n_res]
        mu[:] = per_slot[self.n_res :]

    def best_integer(
        self, time_limit_s: float, start: Columns | None
    ) -> tuple[Columns, float] | None:
        """The best plan made of the columns, by HiGHS's MIP within ``time_limit_s``,
        from ``start`` (columns already added) if given. Returns the chosen columns and
        their objective, or None if HiGHS found none."""
        h, n = self.h, self.n_columns
        if n == 0:
            return None
        h.changeColsIntegrality(
            n, np.arange(n, dtype=np.int32), np.full(n, highspy.HighsVarType.kInteger)
        )
        # the objective counted from zero, so that relative gaps mean what they say
        h.changeObjectiveOffset(float(self.p.tr_value @ self.p.tr_packets))
        for name, value in (("presolve", "on"), ("time_limit", float(time_limit_s)),
                            ("mip_rel_gap", 1e-6)):  # fmt: skip
            h.setOptionValue(name, value)
        cols = self.columns()
        if start is not None:
            chosen = np.isin(cols.key, start.key).astype(np.float64)
            solution = highspy.HighsSolution()
            solution.col_value = chosen.tolist()
            solution.value_valid = True
            h.setSolution(solution)
        h.run()
        info = h.getInfo()
        if info.primal_solution_status != highspy.SolutionStatus.kSolutionStatusFeasible:
            return None
        x = np.asarray(h.getSolution().col_value)
        pick = np.flatnonzero(x > 0.5)
        return cols.take(pick), float(info.objective_function_value)
