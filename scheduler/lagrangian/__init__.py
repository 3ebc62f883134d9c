"""Lagrangian-relaxation planner (the default ``lr`` solver)."""

from scheduler.lagrangian.solver import (
    Finishing,
    LagrangianSolver,
    LrOptions,
    Progress,
    WarmStart,
    ensure_compiled,
    solve_lr,
)

__all__ = [
    "Finishing",
    "LagrangianSolver",
    "LrOptions",
    "Progress",
    "WarmStart",
    "ensure_compiled",
    "solve_lr",
]
