"""Planning: market results and transfer requests into (route, slot) plans.

Pure math on numpy/numba arrays: no I/O, no asyncio, no other layer imported.
"""

from __future__ import annotations

from typing import Literal

from bench import Scenario, Topology
from scheduler.checker import check_plan, verify_plan
from scheduler.errors import NoRouteError, PlanCheckError, SchedulerError, SolverError
from scheduler.greedy import solve_greedy
from scheduler.lagrangian import (
    Finishing,
    LrOptions,
    Progress,
    WarmStart,
    ensure_compiled,
    solve_lr,
)
from scheduler.milp import MilpOptions, solve_milp
from scheduler.plan import Plan, PlannedPacket
from scheduler.problem import PlanningProblem, build_problem
from scheduler.routes import DEFAULT_K

SolverName = Literal["lr", "milp", "greedy"]
SOLVERS: tuple[SolverName, ...] = ("lr", "milp", "greedy")


def plan_transfers(
    scenario: Scenario,
    topology: Topology,
    solver: SolverName = "lr",
    *,
    k_routes: int = DEFAULT_K,
    lr_options: LrOptions | None = None,
    milp_options: MilpOptions | None = None,
    progress: Progress | None = None,
    down_routers: frozenset[str] = frozenset(),
    warm: object | None = None,
    finishing: Finishing | None = None,
) -> Plan:
    """Plan every transfer of a checked scenario with the named solver. ``warm``: an
    earlier lr plan's ``Plan.warm``, a start for lr if the problem is the same. Routes through
    ``down_routers`` are left out; a transfer left without a route is then reported
    undelivered (with every router up, it is a ``NoRouteError``)."""
    if solver not in SOLVERS:
        raise SolverError(f"unknown solver '{solver}' (choose from {', '.join(SOLVERS)})")
    problem = build_problem(
        scenario,
        topology,
        k_routes=k_routes,
        down_routers=down_routers,
        unroutable="undelivered" if down_routers else "error",
    )
    if solver == "lr":
        start = warm if isinstance(warm, WarmStart) else None
        return solve_lr(problem, lr_options or LrOptions(), progress, start, finishing)
    if solver == "milp":
        return solve_milp(problem, milp_options or MilpOptions())
    return solve_greedy(problem)


__all__ = [
    "DEFAULT_K",
    "SOLVERS",
    "Finishing",
    "LrOptions",
    "MilpOptions",
    "NoRouteError",
    "Plan",
    "PlanCheckError",
    "PlannedPacket",
    "PlanningProblem",
    "SchedulerError",
    "SolverError",
    "SolverName",
    "build_problem",
    "check_plan",
    "ensure_compiled",
    "plan_transfers",
    "solve_greedy",
    "solve_lr",
    "solve_milp",
    "verify_plan",
]
