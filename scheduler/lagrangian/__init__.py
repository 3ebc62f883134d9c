"""Lagrangian-relaxation planner (the default ``lr`` solver)."""

from scheduler.lagrangian.solver import (
    LagrangianSolver,
    LrOptions,
    Progress,
    WarmStart,
    ensure_compiled,
    solve_lr,
)

__all__ = [
    "LagrangianSolver",
    "LrOptions",
    "Progress",
    "WarmStart",
    "ensure_compiled",
    "solve_lr",
]
