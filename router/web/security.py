"""Session and CSRF helpers: who is asking, and did the request come from our page.

The session is Starlette's signed cookie (itsdangerous HMAC, HttpOnly, SameSite=strict,
Secure unless the server listens on loopback only). Every state-changing request must
carry the session's CSRF token in the ``X-CSRF-Token`` header or a ``csrf`` form field.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from starlette.requests import Request

from router.web.accounts import User, get_user
from router.web.store import Store


class Refused(Exception):
    """Answer the request with ``status`` and a one-line ``message`` (``field`` for forms)."""

    def __init__(self, status: int, message: str, field: str = "") -> None:
        self.status = status
        self.message = message
        self.field = field
        super().__init__(message)


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


def check_csrf(request: Request, form: dict[str, Any]) -> None:
    sent = request.headers.get("x-csrf-token") or str(form.get("csrf", ""))
    expected = request.session.get("csrf", "")
    if not (sent and expected and hmac.compare_digest(sent, expected)):
        raise Refused(403, "missing or wrong CSRF token; reload the page and try again")


def current_user(request: Request, store: Store, *roles: str) -> User:
    """The logged-in active user, holding one of ``roles`` (any role when none given)."""
    uid = request.session.get("user")
    user = get_user(store, int(uid)) if uid is not None else None
    if user is None or user.status != "active":
        request.session.pop("user", None)
        raise Refused(401, "log in first")
    if roles and user.role not in roles and user.role != "admin":
        raise Refused(403, f"needs the {' or '.join(roles)} role")
    return user
