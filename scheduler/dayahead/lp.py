"""A small column-wise LP builder for HiGHS (triplets in, a solved ``Highs`` out)."""

from __future__ import annotations

import highspy
import numpy as np

from scheduler.errors import SolverError
from scheduler.highs import new_highs

INF = highspy.kHighsInf


class LpBuilder:
    def __init__(self) -> None:
        self.cost: list[float] = []
        self.lower: list[float] = []
        self.upper: list[float] = []
        self.row_lo: list[float] = []
        self.row_hi: list[float] = []
        self.rows: list[int] = []
        self.cols: list[int] = []
        self.vals: list[float] = []

    def col(self, cost: float, lo: float, hi: float) -> int:
        self.cost.append(cost)
        self.lower.append(lo)
        self.upper.append(hi)
        return len(self.cost) - 1

    def row(self, terms: list[tuple[int, float]], lo: float, hi: float) -> int:
        r = len(self.row_lo)
        self.row_lo.append(lo)
        self.row_hi.append(hi)
        for c, v in terms:
            self.rows.append(r)
            self.cols.append(c)
            self.vals.append(v)
        return r

    def highs(self, **options: bool | int | float | str) -> highspy.Highs:
        n = len(self.cost)
        order = np.lexsort((np.asarray(self.rows), np.asarray(self.cols)))
        cols = np.asarray(self.cols, dtype=np.int64)[order]
        lp = highspy.HighsLp()
        lp.num_col_ = n
        lp.num_row_ = len(self.row_lo)
        lp.col_cost_ = np.asarray(self.cost, dtype=np.float64)
        lp.col_lower_ = np.asarray(self.lower, dtype=np.float64)
        lp.col_upper_ = np.asarray(self.upper, dtype=np.float64)
        lp.row_lower_ = np.asarray(self.row_lo, dtype=np.float64)
        lp.row_upper_ = np.asarray(self.row_hi, dtype=np.float64)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.num_col_ = n
        lp.a_matrix_.num_row_ = len(self.row_lo)
        lp.a_matrix_.start_ = np.searchsorted(cols, np.arange(n + 1)).astype(np.int32)
        lp.a_matrix_.index_ = np.asarray(self.rows, dtype=np.int32)[order]
        lp.a_matrix_.value_ = np.asarray(self.vals, dtype=np.float64)[order]
        h = new_highs(**options)
        h.passModel(lp)
        return h


def solve(h: highspy.Highs, what: str) -> np.ndarray:
    """Run ``h``; the primal solution, or a ``SolverError`` naming ``what`` failed."""
    h.run()
    status = h.getModelStatus()
    if status != highspy.HighsModelStatus.kOptimal:
        raise SolverError(f"{what}: HiGHS ended with '{h.modelStatusToString(status)}'")
    return np.asarray(h.getSolution().col_value)
