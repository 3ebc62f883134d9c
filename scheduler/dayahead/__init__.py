"""Day-ahead P2P trading in a VPP by Lagrangian relaxation (see docs/dayahead.md)."""

from scheduler.dayahead.joint import CentralOptimum, joint_lp, shortfall
from scheduler.dayahead.problem import MarketTerms, Problem, ProsumerData, build_problem
from scheduler.dayahead.prosumer import Prosumer, Quote, Schedule, solve_prosumer
from scheduler.dayahead.solver import (
    ITERATIONS,
    DayAheadResult,
    Iterate,
    RepairError,
    UncoveredError,
    solve_dayahead,
)

__all__ = [
    "ITERATIONS",
    "CentralOptimum",
    "DayAheadResult",
    "Iterate",
    "MarketTerms",
    "Problem",
    "Prosumer",
    "ProsumerData",
    "Quote",
    "RepairError",
    "Schedule",
    "UncoveredError",
    "build_problem",
    "joint_lp",
    "shortfall",
    "solve_dayahead",
    "solve_prosumer",
]
