"""The Starlette application: the page, its static assets and the JSON API.

Every answer to a refused request is ``{"error": ONE LINE, "field": FORM FIELD}`` with a
4xx status. Private data (own orders, accounts) is only ever read through the session's
user id; no endpoint takes another user's id except the admin's.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from router.web import accounts, orders
from router.web.clearing import clear_book, last_clearings, mechanism_names
from router.web.errors import AccountError, OrderError, RateLimitedError
from router.web.security import Refused, check_csrf, csrf_token, current_user
from router.web.terminal import WebTerminal

STATIC = Path(__file__).parent / "static"
SESSION_MAX_AGE_S = 12 * 3600
Handler = Callable[[Request, WebTerminal], Awaitable[Any]]


def create_app(terminal: WebTerminal, *, secure_cookies: bool = True) -> Starlette:
    key = terminal.store.setting("session_key", secrets.token_hex(32))

    def api(handler: Handler, *, post: bool = False) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                if post:
                    form = await _form(request)
                    check_csrf(request, form)
                    request.state.form = form
                out = await handler(request, terminal)
            except Refused as exc:
                return _refusal(exc.status, exc.message, exc.field)
            except (AccountError, OrderError) as exc:
                status = 429 if isinstance(exc, RateLimitedError) else 400
                return _refusal(status, exc.message, exc.field)
            return out if isinstance(out, Response) else JSONResponse(out)

        return endpoint

    routes = [
        Route("/", lambda r: FileResponse(STATIC / "index.html")),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        Route("/api/session", api(session)),
        Route("/api/register", api(register, post=True), methods=["POST"]),
        Route("/api/login", api(login, post=True), methods=["POST"]),
        Route("/api/logout", api(logout, post=True), methods=["POST"]),
        Route("/api/book", api(book)),
        Route("/api/orders", api(my_orders)),
        Route("/api/orders", api(place_order, post=True), methods=["POST"]),
        Route("/api/orders/{id:int}/cancel", api(cancel_order, post=True), methods=["POST"]),
        Route("/api/clearings", api(clearings)),
        Route("/api/bench", api(bench)),
        Route("/api/events", api(events)),
        Route("/api/operator/settings", api(configure, post=True), methods=["POST"]),
        Route("/api/operator/clear", api(clear_now, post=True), methods=["POST"]),
        Route("/api/operator/estop", api(estop, post=True), methods=["POST"]),
        Route("/api/admin/users", api(users)),
        Route("/api/admin/users/{id:int}", api(admin_user, post=True), methods=["POST"]),
    ]
    middleware = [
        Middleware(
            SessionMiddleware,
            secret_key=key,
            session_cookie="ppr_session",
            max_age=SESSION_MAX_AGE_S,
            same_site="strict",
            https_only=secure_cookies,
        )
    ]
    app = Starlette(routes=routes, middleware=middleware)
    app.state.terminal = terminal
    return app


# --- accounts ------------------------------------------------------------------------------
async def session(request: Request, t: WebTerminal) -> dict[str, Any]:
    out: dict[str, Any] = {"csrf": csrf_token(request), "user": None, "bench": t.scenario.name}
    try:
        user = current_user(request, t.store)
    except Refused:
        return out
    out["user"] = {"name": user.name, "role": user.role}
    out["terminals"] = [
        {"id": tid, "kind": t.scenario.terminal(tid).kind}
        for tid in accounts.terminals_of(t.store, user.id)
    ]
    if user.role in ("operator", "admin"):
        out["settings"] = t.settings() | {"mechanisms": list(mechanism_names())}
    return out


async def register(request: Request, t: WebTerminal) -> dict[str, Any]:
    form = request.state.form
    user = accounts.register(t.store, str(form.get("name", "")), str(form.get("password", "")))
    return {"name": user.name, "status": user.status, "role": user.role}


async def login(request: Request, t: WebTerminal) -> dict[str, Any]:
    form = request.state.form
    address = request.client.host if request.client else "unknown"
    user = await asyncio.to_thread(  # argon2 takes tens of ms: keep the loop turning
        accounts.login, t.store, str(form.get("name", "")), str(form.get("password", "")), address
    )
    request.session.clear()  # a fresh session (and CSRF token) at every login
    request.session["user"] = user.id
    return {"name": user.name, "role": user.role, "csrf": csrf_token(request)}


async def logout(request: Request, t: WebTerminal) -> dict[str, Any]:
    request.session.clear()
    return {"csrf": csrf_token(request)}


# --- orders --------------------------------------------------------------------------------
async def book(request: Request, t: WebTerminal) -> dict[str, Any]:
    return orders.book(t.store, t.bench.frame)


async def my_orders(request: Request, t: WebTerminal) -> list[dict[str, Any]]:
    user = current_user(request, t.store)
    return [o.private() for o in orders.of_user(t.store, user.id)]


async def place_order(request: Request, t: WebTerminal) -> dict[str, Any]:
    user = current_user(request, t.store, "participant")
    owned = accounts.terminals_of(t.store, user.id)
    order = orders.place(t.store, t.scenario, user.id, owned, request.state.form, t.bench.frame)
    t.touch()
    return order.private()


async def cancel_order(request: Request, t: WebTerminal) -> dict[str, Any]:
    user = current_user(request, t.store)
    orders.cancel(t.store, user.id, int(request.path_params["id"]))
    t.touch()
    return {"cancelled": int(request.path_params["id"])}


async def clearings(request: Request, t: WebTerminal) -> list[dict[str, Any]]:
    return [c.to_json() for c in last_clearings(t.store)]


# --- the live bench ------------------------------------------------------------------------
async def bench(request: Request, t: WebTerminal) -> dict[str, Any]:
    return t.bench.to_json()


async def events(request: Request, t: WebTerminal) -> StreamingResponse:
    """Server-sent events: the bench view now and after every change."""

    async def stream() -> AsyncIterator[str]:
        seen = -1
        while not await request.is_disconnected():
            if t.bench.version != seen:
                seen = t.bench.version
                yield f"data: {json.dumps(t.bench.to_json())}\n\n"
            else:
                yield ": keep-alive\n\n"
            await t.changed(timeout=5.0)

    return StreamingResponse(stream(), media_type="text/event-stream")


# --- operator ------------------------------------------------------------------------------
async def configure(request: Request, t: WebTerminal) -> dict[str, Any]:
    user = current_user(request, t.store, "operator")
    form = request.state.form
    return await t.configure(user.name, form.get("mechanism"), form.get("interval"))


async def clear_now(request: Request, t: WebTerminal) -> dict[str, Any]:
    user = current_user(request, t.store, "operator")
    mechanism = t.settings()["mechanism"]
    await t.audit(user.name, "clear", {"frame": t.bench.frame, "mechanism": mechanism})
    _, done = await asyncio.to_thread(
        clear_book, t.store, t.scenario, t.topology, mechanism, t.bench.frame
    )
    t.touch()
    return {"clearing": done.to_json() if done else None}


async def estop(request: Request, t: WebTerminal) -> dict[str, Any]:
    user = current_user(request, t.store, "operator")
    await t.estop(user.name)
    return {"estopped": True}


# --- admin ---------------------------------------------------------------------------------
async def users(request: Request, t: WebTerminal) -> list[dict[str, Any]]:
    current_user(request, t.store, "admin")
    return [
        u.__dict__ | {"terminals": accounts.terminals_of(t.store, u.id)}
        for u in accounts.list_users(t.store)
    ]


async def admin_user(request: Request, t: WebTerminal) -> dict[str, Any]:
    admin = current_user(request, t.store, "admin")
    uid = int(request.path_params["id"])
    form = request.state.form
    action = str(form.get("action", ""))
    if action in ("approve", "disable"):
        status = "active" if action == "approve" else "disabled"
        user = accounts.set_status(t.store, uid, status)
    elif action == "role":
        user = accounts.set_role(t.store, uid, str(form.get("role", "")))
    elif action == "assign":
        known = {term.id for term in t.scenario.terminals}
        accounts.assign_terminal(t.store, uid, str(form.get("terminal", "")), known)
        user = accounts.get_user(t.store, uid)
        assert user is not None
    else:
        raise Refused(400, "action must be approve, disable, role or assign", "action")
    detail = {k: str(v) for k, v in form.items() if k in ("role", "terminal")}
    await t.audit(admin.name, action, {"user": user.name} | detail)
    return user.__dict__ | {"terminals": accounts.terminals_of(t.store, uid)}


# --- helpers -------------------------------------------------------------------------------
async def _form(request: Request) -> dict[str, Any]:
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = await request.json()
        except ValueError:
            raise Refused(400, "the body is not JSON") from None
        if not isinstance(body, dict):
            raise Refused(400, "the body must be a JSON object")
        return body
    return dict(await request.form())


def _refusal(status: int, message: str, field: str = "") -> JSONResponse:
    return JSONResponse({"error": message, "field": field}, status_code=status)
