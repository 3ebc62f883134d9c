"""A tiny day ahead that runs every day-ahead Numba kernel once (``router.kernels``
compiles them before a command's work starts): a prosumer with a battery and one
without, both frameworks."""

from __future__ import annotations

import numpy as np

from scheduler.dayahead.problem import MarketTerms, Problem, ProsumerData
from scheduler.dayahead.solver import solve_dayahead


def tiny_day() -> None:
    m = MarketTerms(2, 1.0, np.array([0.3, 0.3]), np.array([0.1, 0.1]), 0.01)
    a = ProsumerData("a", np.array([1.0, 0.0]), np.array([0.0, 3.0]), 2.0, 1.0, 0.9, 0.5, 5.0, m)
    b = ProsumerData("b", np.array([1.0, 1.0]), np.zeros(2), 0.0, 0.0, 0.9, 0.0, 5.0, m)
    problem = Problem("tiny", m, (a, b), ((0, 1), (1, 0)))
    for framework in ("pool", "bilateral"):
        solve_dayahead(problem, framework, iterations=2)
