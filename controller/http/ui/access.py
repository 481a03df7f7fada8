"""Who is asking, and may they: the dashboard's session cookie, CSRF and Origin checks, and
domain errors as JSON with an HTTP status. Every read and action of the dashboard goes through
`caller` (and actions also through `check_action`) before it reaches `ApiCaller`, which checks
the role again against the gRPC table: a reader's POST is refused there even if a page were
tampered with to show it a button."""

from __future__ import annotations

import functools
import ipaddress
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import grpc
from aiohttp import web

from controller.api import auth
from controller.api.limits import RateLimiter
from controller.http.server import EDGE
from controller.http.ui.sessions import COOKIE, CSRF_HEADER, Session, SessionStore, csrf_matches
from shoal import errors, log

logger = log.get("controller.http.ui")

SESSIONS: web.AppKey[SessionStore] = web.AppKey("ui_sessions", SessionStore)
LOGIN_LIMITER: web.AppKey[RateLimiter] = web.AppKey("ui_login_limiter", RateLimiter)

_HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


def error_response(err: errors.ShoalError) -> web.Response:
    return json_response({"error": err.message, "code": err.code.name}, status=_HTTP_STATUS.get(err.code, 500))


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(data, separators=(",", ":")), status=status, content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )  # fmt: skip


def auth_required(app: web.Application) -> bool:
    return app[EDGE].tokens is not None


def session_of(request: web.Request) -> Session | None:
    return request.app[SESSIONS].get(request.cookies.get(COOKIE))


def caller(request: web.Request) -> tuple[Session | None, auth.Principal]:
    """The session (if any) and the principal a request acts as; Unauthenticated when the
    controller has tokens and the browser has not logged in."""
    session = session_of(request)
    if not auth_required(request.app):
        check_host(request)
        return session, auth.ANONYMOUS
    if session is None or session.principal is None:
        raise errors.Unauthenticated("not logged in (or the session ended): log in with a token")
    return session, session.principal


def check_host(request: web.Request) -> None:
    """Without authentication, answer only requests addressed to an IP address or `localhost`.

    A page of another site can point its own DNS name at 127.0.0.1 (DNS rebinding) and then be
    "same origin" with a loopback dashboard; it cannot make the browser send an IP address or
    `localhost` as the Host of its requests. With tokens this does not matter: such a page has
    no session."""
    host = urlsplit("//" + (request.host or "")).hostname or ""
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    if host != "localhost":
        raise errors.PermissionDenied(
            f"this dashboard has no authentication, so it answers only requests to an IP address or localhost "
            f"(Host {request.host!r}); run the controller with --tokens-file to serve it under a name"
        )


def check_same_origin(request: web.Request) -> None:
    """Browsers send Origin with every POST; a page of another site sends its own."""
    origin = request.headers.get("Origin", "")
    expected = f"{request.scheme}://{request.host}"
    if origin != expected:
        raise errors.PermissionDenied(f"cross-origin request refused (Origin {origin or 'missing'}, expected {expected})")


def check_action(request: web.Request, session: Session | None) -> None:
    check_same_origin(request)
    if session is None or not csrf_matches(session, request.headers.get(CSRF_HEADER)):
        raise errors.PermissionDenied(f"missing or wrong {CSRF_HEADER} header (reload the page)")


def peer(request: web.Request) -> str:
    return f"http:{request.remote or ''}"


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_endpoint(fn: Handler) -> Handler:
    """Domain errors (from the checks above or from the API) become JSON errors."""

    @functools.wraps(fn)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            return await fn(request)
        except errors.ShoalError as err:
            if err.code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED):
                logger.info("ui.refused", path=request.path, method=request.method, reason=err.message)
            return error_response(err)

    return wrapper


async def read_json(request: web.Request) -> dict[str, Any]:
    if not request.body_exists:
        return {}
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise errors.InvalidArgument("request body: not valid JSON") from None
    if not isinstance(body, dict):
        raise errors.InvalidArgument("request body: expected a JSON object")
    return body


def text_field(body: dict[str, Any], name: str, *, default: str = "", limit: int = 1024) -> str:
    value = body.get(name, default)
    if not isinstance(value, str):
        raise errors.InvalidArgument(f"{name}: expected a string")
    if len(value) > limit:
        raise errors.InvalidArgument(f"{name}: at most {limit} characters")
    return value
