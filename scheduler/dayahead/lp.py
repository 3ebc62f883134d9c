"""A small LP builder for HiGHS: columns, rows and coefficients in (one at a time or in
bulk as arrays), a solved ``Highs`` out."""

from __future__ import annotations

from typing import Any

import highspy
import numpy as np

from scheduler.errors import SolverError
from scheduler.highs import new_highs

INF = highspy.kHighsInf


class LpBuilder:
    """``cols``: columns a model already has; the builder's new ones follow them
    (``add_to``)."""

    def __init__(self, cols: int = 0) -> None:
        self.first_col = cols
        self.n_cols = cols
        self.n_rows = 0
        self._cost: list[np.ndarray] = []
        self._lower: list[np.ndarray] = []
        self._upper: list[np.ndarray] = []
        self._row_lo: list[np.ndarray] = []
        self._row_hi: list[np.ndarray] = []
        self._r: list[np.ndarray] = []
        self._c: list[np.ndarray] = []
        self._v: list[np.ndarray] = []
        self._bounds: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def cols(self, cost: np.ndarray, lo: np.ndarray | float, hi: np.ndarray | float) -> np.ndarray:
        """Columns with these costs and bounds; their indices."""
        cost = np.asarray(cost, dtype=np.float64).ravel()
        n = len(cost)
        self._cost.append(cost)
        self._lower.append(np.broadcast_to(np.asarray(lo, dtype=np.float64), (n,)).ravel())
        self._upper.append(np.broadcast_to(np.asarray(hi, dtype=np.float64), (n,)).ravel())
        first = self.n_cols
        self.n_cols += n
        return np.arange(first, first + n)

    def rows(self, lo: np.ndarray | float, hi: np.ndarray | float, n: int) -> np.ndarray:
        """``n`` rows with these bounds; their indices."""
        self._row_lo.append(np.broadcast_to(np.asarray(lo, dtype=np.float64), (n,)).ravel())
        self._row_hi.append(np.broadcast_to(np.asarray(hi, dtype=np.float64), (n,)).ravel())
        first = self.n_rows
        self.n_rows += n
        return np.arange(first, first + n)

    def set_bounds(self, rows: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
        """New bounds for rows made earlier (constants known only later)."""
        n = len(rows)
        self._bounds.append(
            (np.asarray(rows), np.broadcast_to(lo, (n,)), np.broadcast_to(hi, (n,)))
        )

    def entries(self, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray | float) -> None:
        """Coefficients (triplets; a repeated (row, column) adds up)."""
        rows = np.asarray(rows, dtype=np.int64).ravel()
        self._r.append(rows)
        self._c.append(np.asarray(cols, dtype=np.int64).ravel())
        self._v.append(np.broadcast_to(np.asarray(vals, dtype=np.float64), rows.shape).ravel())

    def col(self, cost: float, lo: float, hi: float) -> int:
        return int(self.cols(np.array([cost]), lo, hi)[0])

    def row(self, terms: list[tuple[int, float]], lo: float, hi: float) -> int:
        r = int(self.rows(lo, hi, 1)[0])
        if terms:
            cols, vals = zip(*terms, strict=True)
            self.entries(np.full(len(cols), r), np.asarray(cols), np.asarray(vals))
        return r

    def _matrix(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The new columns' coefficients, column-wise: starts, row indices, values."""
        rows, cols = _cat(self._r, np.int64), _cat(self._c, np.int64) - self.first_col
        if len(cols) and cols.min() < 0:
            raise ValueError("a coefficient on a column the model had before: add_to adds columns")
        vals = _cat(self._v, np.float64)
        order = np.lexsort((rows, cols))
        rows, cols, vals = rows[order], cols[order], vals[order]
        if len(rows) > 1:  # a repeated (row, column) adds up
            first = np.concatenate([[True], (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])])
            if not first.all():
                vals = np.add.reduceat(vals, np.flatnonzero(first))
                rows, cols = rows[first], cols[first]
        starts = np.searchsorted(cols, np.arange(self.n_cols - self.first_col + 1))
        return starts.astype(np.int32), rows.astype(np.int32), vals

    def highs(self, **options: Any) -> highspy.Highs:
        n, m = self.n_cols, self.n_rows
        start, index, value = self._matrix()
        lp = highspy.HighsLp()
        lp.num_col_ = n
        lp.num_row_ = m
        lp.col_cost_ = _cat(self._cost, np.float64)
        lp.col_lower_ = _cat(self._lower, np.float64)
        lp.col_upper_ = _cat(self._upper, np.float64)
        row_lo, row_hi = _cat(self._row_lo, np.float64), _cat(self._row_hi, np.float64)
        for r, lo, hi in self._bounds:
            row_lo[r], row_hi[r] = lo, hi
        lp.row_lower_ = row_lo
        lp.row_upper_ = row_hi
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.num_col_ = n
        lp.a_matrix_.num_row_ = m
        lp.a_matrix_.start_ = start
        lp.a_matrix_.index_ = index
        lp.a_matrix_.value_ = value
        h = new_highs(**options)
        h.passModel(lp)
        return h

    def add_to(self, h: highspy.Highs) -> None:
        """Add the new columns to ``h`` (a model of ``cols`` columns and the rows their
        coefficients name); its basis stays, the new columns nonbasic at their bounds."""
        if self.n_rows:
            raise ValueError("add_to adds columns only")
        n = self.n_cols - self.first_col
        if n == 0:
            return
        start, index, value = self._matrix()
        h.addCols(
            n, _cat(self._cost, np.float64), _cat(self._lower, np.float64),
            _cat(self._upper, np.float64), len(index), start[:-1], index, value,
        )  # fmt: skip


def _cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)


def solve(h: highspy.Highs, what: str) -> np.ndarray:
    """Run ``h``; the primal solution, or a ``SolverError`` naming ``what`` failed."""
    h.run()
    status = h.getModelStatus()
    if status != highspy.HighsModelStatus.kOptimal:
        raise SolverError(f"{what}: HiGHS ended with '{h.modelStatusToString(status)}'")
    return np.asarray(h.getSolution().col_value)
