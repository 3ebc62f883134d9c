"""Errors raised while reading or checking a bench description."""

from __future__ import annotations


class BenchError(Exception):
    """Root of every error this package raises."""


class ScenarioError(BenchError):
    """A scenario file (or dict) is unreadable or inconsistent.

    ``where`` is the dotted location inside the scenario (``lines[3].resistance_ohm``),
    ``source`` the file name and ``line`` its 1-based line number when known. ``str()``
    gives the one-line message the command line prints.
    """

    def __init__(
        self,
        where: str,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
    ) -> None:
        self.where = where
        self.message = message
        self.source = source
        self.line = line
        super().__init__(self.one_line())

    def one_line(self) -> str:
        prefix = ""
        if self.source:
            prefix = f"{self.source}:{self.line}: " if self.line else f"{self.source}: "
        location = f"{self.where}: " if self.where else ""
        return f"{prefix}{location}{self.message}"

    def located(self, source: str | None, line: int | None) -> ScenarioError:
        """The same error, pointing into a file."""
        return ScenarioError(self.where, self.message, source=source, line=line or self.line)


class RouteError(BenchError):
    """A route is not a connected simple path within the limits of its resources."""
