"""Errors of the twin: one rooted tree."""

from __future__ import annotations


class TwinError(Exception):
    """Root of every twin error (a user mistake: bad fault spec, missing keys, ...)."""


class FaultSpecError(TwinError):
    """A fault description that cannot be parsed or names nothing in the scenario."""
