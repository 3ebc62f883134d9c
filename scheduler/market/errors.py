"""Errors of the market stage."""

from __future__ import annotations

from scheduler.errors import SchedulerError


class MarketError(SchedulerError):
    """The quotes cannot be matched as given (mixed voltages, a terminal on both sides,
    an unknown participant in the weights), or a solver result is inconsistent.

    ``where`` names the scenario entry (``bids[B3].terminal``) when there is one.
    """

    def __init__(self, where: str, message: str) -> None:
        self.where = where
        self.message = message
        super().__init__(f"{where}: {message}" if where else message)
