"""Errors of the planning layer."""

from __future__ import annotations


class SchedulerError(Exception):
    """Root of every error the scheduler raises."""


class NoRouteError(SchedulerError):
    """A transfer has no route within the current and power limits of the bench."""

    def __init__(self, transfer_id: str, source: str, sink: str) -> None:
        self.transfer_id = transfer_id
        super().__init__(
            f"transfers[{transfer_id}]: no route from {source} to {sink} within the current "
            f"and power limits of the lines and SOPs; raise a limit, lower current_a, or "
            f"give a path"
        )


class SolverError(SchedulerError):
    """A solver could not produce a plan (time limit without a solution, bad option)."""


class PlanCheckError(SchedulerError):
    """A plan breaks a constraint of the scheduling model (see ``scheduler.checker``)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"plan is invalid: {problems[0]}{more}")
