"""Day-ahead P2P trading in a VPP by Lagrangian relaxation (see docs/dayahead.md)."""

from scheduler.dayahead.joint import JointSchedule, joint_lp
from scheduler.dayahead.problem import MarketTerms, Problem, ProsumerData, build_problem
from scheduler.dayahead.solver import DayAheadResult, Iterate, solve_dayahead
from scheduler.dayahead.subproblem import ProsumerLP, Schedule, solve_prosumer

__all__ = [
    "DayAheadResult",
    "Iterate",
    "JointSchedule",
    "MarketTerms",
    "Problem",
    "ProsumerData",
    "ProsumerLP",
    "Schedule",
    "build_problem",
    "joint_lp",
    "solve_dayahead",
    "solve_prosumer",
]
