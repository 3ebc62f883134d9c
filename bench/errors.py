"""Errors raised while reading or checking a bench description."""

from __future__ import annotations

from collections.abc import Sequence

from bench.text import plural


class BenchError(Exception):
    """Root of every error this package raises."""


class ScenarioError(BenchError):
    """A scenario file (or dict) is unreadable or inconsistent.

    ``where`` is the dotted location inside the scenario (``lines[LBC].resistance_ohm``:
    entries by their id, or by their position from 0 when they have none), ``source``
    the file name and ``line`` its 1-based line number when known. ``more`` holds the
    other problems found, in order (``problems`` lists them all, this one first).
    ``str()`` gives the one-line message the command line prints.
    """

    def __init__(
        self,
        where: str,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        more: Sequence[ScenarioError] = (),
    ) -> None:
        self.where = where
        self.message = message
        self.source = source
        self.line = line
        self.more = tuple(more)
        super().__init__(self.one_line())

    def one_line(self) -> str:
        rest = f" (and {plural(len(self.more), 'more problem')})" if self.more else ""
        return self._text() + rest

    def _text(self) -> str:
        prefix = ""
        if self.source:
            prefix = f"{self.source}:{self.line}: " if self.line else f"{self.source}: "
        location = f"{self.where}: " if self.where else ""
        return f"{prefix}{location}{self.message}"

    @property
    def problems(self) -> list[ScenarioError]:
        """Every problem found, this one first, each on its own (``--all-errors``)."""
        alone = ScenarioError(self.where, self.message, source=self.source, line=self.line)
        return [alone, *self.more]

    @classmethod
    def of(cls, problems: Sequence[ScenarioError]) -> ScenarioError:
        """One error for several problems: the first, and the others as ``more``."""
        first = problems[0]
        return cls(
            first.where, first.message, source=first.source, line=first.line, more=problems[1:]
        )

    def located(self, source: str | None, line: int | None) -> ScenarioError:
        """The same error, pointing into a file."""
        return ScenarioError(
            self.where, self.message, source=source, line=line or self.line, more=self.more
        )


class RouteError(BenchError):
    """A route is not a connected simple path within the limits of its resources."""
