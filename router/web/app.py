"""The Starlette application: the page, its static assets and the JSON API.

Every answer to a refused request is ``{"error": ONE LINE, "field": FORM FIELD}`` with a
4xx status. Private data (own orders, deliveries, certificates, accounts) is only ever
read through the session's user id; no endpoint takes another user's id except the
admin's. Everything but the page itself, logging in and registering needs a login: the
book shows what the bench's participants intend to do with their terminals, which is
theirs and the operator's business, not the network's (docs/web.md).
"""

from __future__ import annotations

import asyncio
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

from router.web import accounts, certificates, kdf, orders
from router.web.clearing import last_clearings, mechanism_names
from router.web.errors import AccountError, OrderError, RateLimitedError
from router.web.ledger import deliveries_of, order_totals, trades_of
from router.web.security import (
    Refused,
    SecurityHeaders,
    check_csrf,
    csrf_token,
    current_user,
    log_in,
    log_out,
)
from router.web.sessions import MAX_AGE_S
from router.web.terminal import WebTerminal

STATIC = Path(__file__).parent / "static"
KEEP_ALIVE_S = 5.0  # a comment line on the live stream this often (proxies drop idle ones)
# Each event makes a page fetch its view: at most one a second per page, and at most
# EVENTS_PER_S in all, shared by the open pages (a hundred pages refresh every 5 s): the
# web's work stays bounded however many pages are open, and the bench's timing first.
MIN_EVENT_S = 1.0
EVENTS_PER_S = 20.0
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
        Route("/favicon.ico", lambda r: FileResponse(STATIC / "favicon.svg")),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        Route("/api/session", api(session)),
        Route("/api/register", api(register, post=True), methods=["POST"]),
        Route("/api/login", api(login, post=True), methods=["POST"]),
        Route("/api/logout", api(logout, post=True), methods=["POST"]),
        Route("/api/book", api(book)),
        Route("/api/orders", api(my_orders)),
        Route("/api/orders", api(place_order, post=True), methods=["POST"]),
        Route("/api/orders/{id:int}/cancel", api(cancel_order, post=True), methods=["POST"]),
        Route("/api/trades", api(my_trades)),
        Route("/api/deliveries", api(my_deliveries)),
        Route("/api/certificates", api(my_certificates)),
        Route(
            "/api/certificates/{id:int}/retire",
            api(retire_certificate, post=True),
            methods=["POST"],
        ),
        Route("/api/clearings", api(clearings)),
        Route("/api/view", api(view)),
        Route("/api/bench", api(bench)),
        Route("/api/events", api(events)),
        Route("/api/operator/settings", api(configure, post=True), methods=["POST"]),
        Route("/api/operator/clear", api(clear_now, post=True), methods=["POST"]),
        Route("/api/operator/estop", api(estop, post=True), methods=["POST"]),
        Route("/api/admin/users", api(users)),
        Route("/api/admin/users/{id:int}", api(admin_user, post=True), methods=["POST"]),
    ]
    middleware = [
        Middleware(SecurityHeaders),
        Middleware(
            SessionMiddleware,
            secret_key=key,
            session_cookie="ppr_session",
            max_age=MAX_AGE_S,
            same_site="strict",
            https_only=secure_cookies,
        ),
    ]
    app = Starlette(routes=routes, middleware=middleware)
    app.state.terminal = terminal
    return app


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


# --- accounts ------------------------------------------------------------------------------
async def session(request: Request, t: WebTerminal) -> dict[str, Any]:
    out: dict[str, Any] = {
        "csrf": csrf_token(request),
        "user": None,
        "bench": t.scenario.name,
        "has_admin": accounts.has_admin(t.store),
    }
    try:
        user = current_user(request, t.store)
    except Refused:
        return out
    out["user"] = {"name": user.name, "role": user.role}
    out["terminals"] = [
        {"id": tid, "kind": t.scenario.terminal(tid).kind}
        for tid in accounts.terminals_of(t.store, user.id)
    ]
    out["settings"] = t.settings()
    if user.role in ("operator", "admin"):
        out["mechanisms"] = list(mechanism_names())
    return out


async def register(request: Request, t: WebTerminal) -> dict[str, Any]:
    form = request.state.form
    name, password = str(form.get("name", "")), str(form.get("password", ""))
    user = await kdf.run("name", accounts.register, t.store, name, password, _address(request))
    return {"name": user.name, "status": user.status, "role": user.role}


async def login(request: Request, t: WebTerminal) -> dict[str, Any]:
    form = request.state.form
    name, password = str(form.get("name", "")), str(form.get("password", ""))
    user = await kdf.run("password", accounts.login, t.store, name, password, _address(request))
    log_in(request, t.store, user)
    return {"name": user.name, "role": user.role, "csrf": csrf_token(request)}


async def logout(request: Request, t: WebTerminal) -> dict[str, Any]:
    log_out(request, t.store)
    return {"csrf": csrf_token(request)}


# --- orders and what came of them ----------------------------------------------------------
async def book(request: Request, t: WebTerminal) -> dict[str, Any]:
    current_user(request, t.store)
    return orders.book(t.store, t.next_frame) | {"frame": t.next_frame}


async def my_orders(request: Request, t: WebTerminal) -> list[dict[str, Any]]:
    user = current_user(request, t.store)
    totals = order_totals(t.store, user.id)
    return [
        o.private(t.next_frame) | totals.get(o.id, {}) for o in orders.of_user(t.store, user.id)
    ]


async def place_order(request: Request, t: WebTerminal) -> dict[str, Any]:
    user = current_user(request, t.store, "participant")
    if t.bench.estopped:
        raise Refused(409, "the bench is e-stopped: no orders until the operator restarts it")
    owned = accounts.terminals_of(t.store, user.id)
    order = orders.place(
        t.store, t.scenario, user.id, owned, request.state.form, t.next_frame, t.interval
    )
    t.book_version += 1
    t.touch()
    return order.private(t.next_frame)


async def cancel_order(request: Request, t: WebTerminal) -> dict[str, Any]:
    user = current_user(request, t.store)
    orders.cancel(t.store, user.id, int(request.path_params["id"]))
    t.book_version += 1
    t.touch()
    return {"cancelled": int(request.path_params["id"])}


async def my_trades(request: Request, t: WebTerminal) -> list[dict[str, Any]]:
    return trades_of(t.store, current_user(request, t.store).id)


async def my_deliveries(request: Request, t: WebTerminal) -> list[dict[str, Any]]:
    return deliveries_of(t.store, current_user(request, t.store).id)


async def my_certificates(request: Request, t: WebTerminal) -> list[dict[str, Any]]:
    return certificates.of_user(t.store, current_user(request, t.store).id)


async def retire_certificate(request: Request, t: WebTerminal) -> dict[str, Any]:
    user = current_user(request, t.store)
    cid = int(request.path_params["id"])
    done = await asyncio.to_thread(  # journaled (fsync) before it commits
        certificates.retire, t.store, t.journal, user.id, user.name, cid
    )
    t.touch()
    return done


async def clearings(request: Request, t: WebTerminal) -> dict[str, Any]:
    current_user(request, t.store)
    settings = t.settings()
    return {
        "clearings": [c.to_json() for c in last_clearings(t.store)],
        "next_frame": t.next_frame,
        "next_clearing": orders.first_clearing(t.next_frame, settings["interval"]),
        "default_valid_frames": orders.default_valid_frames(t.next_frame, settings["interval"]),
        "interval": settings["interval"],
        "mechanism": settings["mechanism"],
        "note": t.current_note(),
    }


async def view(request: Request, t: WebTerminal) -> dict[str, Any]:
    """Everything the page shows its user, in one answer (it asks after every event)."""
    user = current_user(request, t.store)
    out: dict[str, Any] = {
        "book": await book(request, t),
        "clearings": await clearings(request, t),
    }
    if user.role != "operator":
        out["orders"] = await my_orders(request, t)
        out["trades"] = trades_of(t.store, user.id)
        out["certificates"] = certificates.of_user(t.store, user.id)
    if user.role == "admin":
        out["users"] = await users(request, t)
    return out


# --- the live bench ------------------------------------------------------------------------
async def bench(request: Request, t: WebTerminal) -> dict[str, Any]:
    current_user(request, t.store)
    return t.bench.to_json()


async def events(request: Request, t: WebTerminal) -> StreamingResponse:
    """Server-sent events: the bench view now and after every change, until the client
    goes or the server stops."""
    current_user(request, t.store)

    async def stream() -> AsyncIterator[str]:
        seen = -1
        t.streams += 1
        try:
            while not t.closing and not await request.is_disconnected():
                if t.bench.version != seen:
                    seen = t.bench.version
                    yield f"data: {t.bench.text()}\n\n"
                    # changes meanwhile go in the next event
                    await asyncio.sleep(max(MIN_EVENT_S, t.streams / EVENTS_PER_S))
                    if t.bench.version != seen:
                        continue
                else:
                    yield ": keep-alive\n\n"
                await t.changed(timeout=KEEP_ALIVE_S)
        finally:
            t.streams -= 1

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"cache-control": "no-store"}
    )


# --- operator ------------------------------------------------------------------------------
def _refuse_if_estopped(t: WebTerminal) -> None:
    if t.bench.estopped:
        raise Refused(
            409, "the bench is e-stopped: no frame will run; check it and restart ppr serve"
        )


async def configure(request: Request, t: WebTerminal) -> dict[str, Any]:
    user = current_user(request, t.store, "operator")
    _refuse_if_estopped(t)
    form = request.state.form
    mechanism, interval = form.get("mechanism"), form.get("interval")
    return await t.configure(
        user.name,
        None if mechanism in (None, "") else str(mechanism),
        None if interval in (None, "") else str(interval),
    )


async def clear_now(request: Request, t: WebTerminal) -> dict[str, Any]:
    """The book clears at the next frame the bench plans, whatever the interval."""
    user = current_user(request, t.store, "operator")
    _refuse_if_estopped(t)
    mechanism = t.settings()["mechanism"]
    frame = t.request_clearing()
    await t.audit(user.name, "clear", {"frame": frame, "mechanism": mechanism})
    return {"requested": True, "frame": frame, "mechanism": mechanism}


async def estop(request: Request, t: WebTerminal) -> dict[str, Any]:
    user = current_user(request, t.store, "operator")
    await t.estop(user.name)
    return {"estopped": True}


# --- admin ---------------------------------------------------------------------------------
async def users(request: Request, t: WebTerminal) -> list[dict[str, Any]]:
    current_user(request, t.store, "admin")
    return [
        u.to_json() | {"terminals": accounts.terminals_of(t.store, u.id)}
        for u in accounts.list_users(t.store)
    ]


async def admin_user(request: Request, t: WebTerminal) -> dict[str, Any]:
    admin = current_user(request, t.store, "admin")
    uid = int(request.path_params["id"])
    form = request.state.form
    action = str(form.get("action", ""))
    known = {term.id for term in t.scenario.terminals}
    terminal = str(form.get("terminal", ""))
    if action in ("approve", "disable"):
        done = accounts.set_status(t.store, uid, "active" if action == "approve" else "disabled")
    elif action == "role":
        done = accounts.set_role(t.store, uid, str(form.get("role", "")))
    elif action == "assign":
        done = accounts.assign_terminal(t.store, uid, terminal, known)
    elif action == "unassign":
        done = accounts.unassign_terminal(t.store, uid, terminal, known)
    else:
        raise Refused(400, "action must be approve, disable, role, assign or unassign", "action")
    detail: dict[str, Any] = {k: str(v) for k, v in form.items() if k in ("role", "terminal")}
    if done.cancelled:  # orders that left the book with the change
        detail["cancelled"] = done.cancelled
        t.book_version += 1
        t.touch()
    await t.audit(admin.name, action, {"user": done.user.name} | detail)
    return done.user.to_json() | {
        "terminals": accounts.terminals_of(t.store, uid),
        "cancelled": done.cancelled,
    }


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
