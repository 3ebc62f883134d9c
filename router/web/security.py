"""Session, CSRF and header helpers: who is asking, did the request come from our page,
and what the browser may do with our answers.

The session is Starlette's signed cookie (itsdangerous HMAC, HttpOnly, SameSite=strict,
Secure unless the server listens on loopback only). It carries a CSRF token and, once
logged in, a session token whose row in the store must still exist (``sessions``).
Every state-changing request must carry the CSRF token in the ``X-CSRF-Token`` header or
a ``csrf`` form field.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from router.web import sessions
from router.web.accounts import User, get_user
from router.web.store import Store

# The page is one HTML file, one script and one stylesheet of our own: nothing inline,
# nothing from elsewhere, never in a frame (clickjacking), no referrer leaves the site.
HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


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


def log_in(request: Request, store: Store, user: User) -> None:
    """A fresh session (and CSRF token) at every login."""
    request.session.clear()
    request.session["sid"] = sessions.start(store, user.id)


def log_out(request: Request, store: Store) -> None:
    sid = request.session.get("sid")
    if sid:
        sessions.end(store, str(sid))
    request.session.clear()


def current_user(request: Request, store: Store, *roles: str) -> User:
    """The logged-in active user, holding one of ``roles`` (any role when none given; an
    admin passes every role check)."""
    sid = request.session.get("sid")
    uid = sessions.user_of(store, str(sid)) if sid else None
    user = get_user(store, uid) if uid is not None else None
    if user is None or user.status != "active":
        request.session.pop("sid", None)
        raise Refused(401, "log in first")
    if roles and user.role not in roles and user.role != "admin":
        raise Refused(403, f"needs the {' or '.join(roles)} role")
    return user


class SecurityHeaders:
    """Adds ``HEADERS`` to every response (ASGI middleware: streams pass through)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], *HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)
