"""Errors of the web terminal: one root, fields that name what was wrong."""

from __future__ import annotations


class WebError(Exception):
    """Root of every error of ``router.web``."""


class StoreError(WebError):
    """The database file cannot be opened or migrated (``path`` names it)."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}")


class AccountError(WebError):
    """A registration or login refused; ``field`` is the form field to show it next to."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class RateLimitedError(AccountError):
    """Too many failed logins for this account or address; try again later."""


class OrderError(WebError):
    """An order refused as the scenario checker would refuse the same quote."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")
