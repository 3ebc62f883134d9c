"""The ``milp`` planner: the exact model of docs/design.md solved by HiGHS.

Per transfer k and candidate route r, a time-expanded flow: ``x[k,r,j,t]`` packets run
segment j in slot t, ``h[k,r,j,t]`` packets wait at the storage router after segment j
during slot t. Conservation at each storage router, at most ``n_k`` packets per transfer,
one packet per resource per slot, buffer places per storage router per slot. Packets are
identical within a transfer, so any integer flow decomposes into packets (first in,
first out at each store).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import highspy
import numpy as np

from scheduler.errors import SolverError
from scheduler.highs import new_highs
from scheduler.plan import Assignment, Plan, to_plan
from scheduler.problem import PlanningProblem


@dataclass(frozen=True)
class MilpOptions:
    time_limit_s: float = 60.0
    mip_rel_gap: float = 1e-9  # prove optimality, not HiGHS's default 1e-4
    threads: int | None = None


class _ModelBuilder:
    def __init__(self, problem: PlanningProblem) -> None:
        self.p = problem
        self.cost: list[float] = []
        self.upper: list[float] = []
        self.rows_lo: list[float] = []
        self.rows_hi: list[float] = []
        self.entries: list[tuple[int, int, float]] = []  # (row, col, value)
        # (k, r, j) -> first column of x (width slots) / of h (width - 1 slots)
        self.x_col: dict[tuple[int, int, int], int] = {}
        self.h_col: dict[tuple[int, int, int], int] = {}
        self.res_rows: dict[tuple[int, int], list[int]] = {}
        self.store_rows: dict[tuple[int, int], list[int]] = {}

    def _cols(self, n: int, cost: list[float] | float, upper: float) -> int:
        first = len(self.cost)
        self.cost.extend(cost if isinstance(cost, list) else [cost] * n)
        self.upper.extend([upper] * n)
        return first

    def _row(self, lo: float, hi: float, terms: list[tuple[int, float]]) -> None:
        row = len(self.rows_lo)
        self.rows_lo.append(lo)
        self.rows_hi.append(hi)
        self.entries.extend((row, col, val) for col, val in terms)

    def build(self) -> None:
        p = self.p
        for k in range(p.n_transfers):
            rel, dl = int(p.tr_release[k]), int(p.tr_deadline[k])
            width = dl - rel + 1
            first_x: list[int] = []
            for r in range(p.tr_route_ptr[k], p.tr_route_ptr[k + 1]):
                segs = range(p.route_seg_ptr[r], p.route_seg_ptr[r + 1])
                last = len(segs) - 1
                for j, s in enumerate(segs):
                    if j == last:
                        base = p.route_cost[r] - p.tr_value[k]
                        costs = [base + p.delay_price * w for w in range(width)]
                    else:
                        costs = [0.0] * width
                    col = self._cols(width, costs, 1.0)
                    self.x_col[(k, r, j)] = col
                    for i in range(p.seg_res_ptr[s], p.seg_res_ptr[s + 1]):
                        res = int(p.route_res[i])
                        for w in range(width):
                            self.res_rows.setdefault((res, rel + w), []).append(col + w)
                    if j < last and width > 1:
                        b = int(p.seg_store[s])
                        hcol = self._cols(width - 1, p.hold_price, float(p.store_cap[b]))
                        self.h_col[(k, r, j)] = hcol
                        for w in range(width - 1):
                            self.store_rows.setdefault((b, rel + w), []).append(hcol + w)
                first_x.extend(self.x_col[(k, r, 0)] + w for w in range(width))
                for j in range(last):
                    self._conservation(k, r, j, width)
            if first_x:
                self._row(-np.inf, float(p.tr_packets[k]), [(c, 1.0) for c in first_x])
        for cols in self.res_rows.values():
            if len(cols) > 1:
                self._row(-np.inf, 1.0, [(c, 1.0) for c in cols])
        for (b, _t), cols in self.store_rows.items():
            if len(cols) > p.store_cap[b]:
                self._row(-np.inf, float(p.store_cap[b]), [(c, 1.0) for c in cols])

    def _conservation(self, k: int, r: int, j: int, width: int) -> None:
        # x[j,w] + h[j,w-1] = x[j+1,w] + h[j,w]
        xj, xn = self.x_col[(k, r, j)], self.x_col[(k, r, j + 1)]
        hj = self.h_col.get((k, r, j))
        for w in range(width):
            terms = [(xj + w, 1.0), (xn + w, -1.0)]
            if hj is not None:
                if w > 0:
                    terms.append((hj + w - 1, 1.0))
                if w < width - 1:
                    terms.append((hj + w, -1.0))
            self._row(0.0, 0.0, terms)

    def lp(self) -> highspy.HighsLp:
        lp = highspy.HighsLp()
        n_cols, n_rows = len(self.cost), len(self.rows_lo)
        lp.num_col_ = n_cols
        lp.num_row_ = n_rows
        lp.col_cost_ = np.asarray(self.cost)
        lp.col_lower_ = np.zeros(n_cols)
        lp.col_upper_ = np.asarray(self.upper)
        lp.row_lower_ = np.asarray(self.rows_lo)
        lp.row_upper_ = np.asarray(self.rows_hi)
        lp.offset_ = float(self.p.tr_value @ self.p.tr_packets)
        entries = np.asarray(self.entries, dtype=np.float64).reshape(-1, 3)
        order = np.lexsort((entries[:, 0], entries[:, 1]))
        rows = entries[order, 0].astype(np.int32)
        cols = entries[order, 1].astype(np.int64)
        start = np.searchsorted(cols, np.arange(n_cols + 1)).astype(np.int32)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.num_col_ = n_cols
        lp.a_matrix_.num_row_ = n_rows
        lp.a_matrix_.start_ = start
        lp.a_matrix_.index_ = rows
        lp.a_matrix_.value_ = entries[order, 2]
        lp.integrality_ = [highspy.HighsVarType.kInteger] * n_cols
        return lp

    def assignment(self, values: np.ndarray) -> Assignment:
        """Decompose the integer flow into packets, first in first out at each store."""
        p = self.p
        out = Assignment.empty(p)
        ptr = p.packet_ptr
        for k in range(p.n_transfers):
            rel = int(p.tr_release[k])
            width = int(p.tr_deadline[k]) - rel + 1
            nxt = int(ptr[k])
            for r in range(p.tr_route_ptr[k], p.tr_route_ptr[k + 1]):
                n_segs = int(p.route_seg_ptr[r + 1] - p.route_seg_ptr[r])
                per_seg = []
                for j in range(n_segs):
                    col = self.x_col[(k, r, j)]
                    counts = np.rint(values[col : col + width]).astype(np.int64)
                    per_seg.append(np.repeat(np.arange(width), counts) + rel)
                n = len(per_seg[0])
                if any(len(s) != n for s in per_seg):
                    raise SolverError(f"HiGHS returned a flow that does not conserve ({k=}, {r=})")
                for i in range(n):
                    out.route[nxt] = r
                    out.seg_slots[nxt, :n_segs] = [s[i] for s in per_seg]
                    nxt += 1
        return out


def solve_milp(problem: PlanningProblem, options: MilpOptions = MilpOptions()) -> Plan:
    start = time.perf_counter()
    builder = _ModelBuilder(problem)
    builder.build()
    h = new_highs(
        threads=options.threads or None,
        time_limit=float(options.time_limit_s),
        mip_rel_gap=float(options.mip_rel_gap),
        mip_abs_gap=1e-12,
    )
    h.passModel(builder.lp())
    h.run()
    status = h.getModelStatus()
    info = h.getInfo()
    solve_ms = (time.perf_counter() - start) * 1000.0
    if info.primal_solution_status != highspy.SolutionStatus.kSolutionStatusFeasible:
        raise SolverError(
            f"HiGHS found no plan within {options.time_limit_s:g} s "
            f"({h.modelStatusToString(status)}); raise --time-limit or use --solver lr"
        )
    values = np.asarray(h.getSolution().col_value)
    assignment = builder.assignment(values)
    optimal = status == highspy.HighsModelStatus.kOptimal
    return to_plan(
        problem,
        assignment,
        solver="milp",
        objective=float(info.objective_function_value),
        lower_bound=float(info.mip_dual_bound),
        solve_ms=solve_ms,
        status="optimal" if optimal else h.modelStatusToString(status).lower(),
        stats={
            "columns": len(builder.cost),
            "rows": len(builder.rows_lo),
            "nodes": int(info.mip_node_count),
        },
    )
