"""The dashboard: a browser application under /ui/ on the controller's HTTP edge.

Plain HTML, CSS and JavaScript modules from `static/` (package data: no build step, no node
toolchain, nothing from the network), a JSON API for the pages under /ui/api/ and server-sent
events for live updates under /ui/api/events/. Pages: Overview, Jobs, Job, Nodes, Queues and
environments (hash routes in static/app.js).

Security: with --tokens-file the browser logs in with a bearer token and gets a server-side
session (sessions.py); every read runs as that principal through ApiCaller (the gRPC API's own
role table), every action also needs the session's CSRF token in a header and a same-origin
Origin (access.py). Text from the cluster (job names, reasons, log lines) is only ever set as
text by the pages, never as HTML, and the Content-Security-Policy below forbids inline scripts.
"""

from __future__ import annotations

from importlib import resources

from aiohttp import web

from controller.api import auth
from controller.api.limits import RateLimiter
from controller.http.server import EDGE
from controller.http.ui import actions, events, reads
from controller.http.ui.access import (
    LOGIN_LIMITER,
    SESSIONS,
    auth_required,
    check_host,
    check_same_origin,
    json_endpoint,
    json_response,
    read_json,
    session_of,
    text_field,
)
from controller.http.ui.sessions import COOKIE, MAX_AGE_SECONDS, Session, SessionStore
from shoal import errors, log

logger = log.get("controller.http.ui")

STATIC = resources.files(__package__) / "static"
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
# Login attempts per client address: slow enough to make guessing tokens pointless.
LOGIN_RATE, LOGIN_BURST = 2.0, 10.0


class DashboardRoutes:
    """The RouteSet of the dashboard (controller/http/routes.py adds it)."""

    def install(self, app: web.Application) -> None:
        app[SESSIONS] = SessionStore()
        app[LOGIN_LIMITER] = RateLimiter(LOGIN_RATE, LOGIN_BURST)
        app.on_response_prepare.append(_security_headers)
        r = app.router
        r.add_get("/ui", _redirect)
        r.add_get("/ui/", _index)
        r.add_get("/ui/static/{path:[A-Za-z0-9_./-]+}", _static)
        r.add_get("/ui/api/session", _session)
        r.add_post("/ui/api/login", _login)
        r.add_post("/ui/api/logout", _logout)
        r.add_get("/ui/api/overview", reads.overview)
        r.add_get("/ui/api/jobs", reads.jobs)
        r.add_get("/ui/api/jobs/{job_id}", reads.job)
        r.add_get("/ui/api/nodes", reads.nodes)
        r.add_get("/ui/api/queues", reads.queues)
        r.add_post("/ui/api/jobs/{job_id}/{verb:cancel|terminate}", actions.stop_job)
        r.add_post("/ui/api/nodes/{node_id}/{verb:drain|undrain}", actions.node_action)
        r.add_post("/ui/api/queues/{queue}/state", actions.queue_state)
        r.add_get("/ui/api/events/jobs", events.job_changes)
        r.add_get("/ui/api/events/jobs/{job_id}", events.job_watch)
        r.add_get("/ui/api/events/logs/{job_id}", events.job_logs)
        r.add_get("/ui/api/events/overview", events.overview)


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    if request.path.startswith("/ui"):
        response.headers.setdefault("Content-Security-Policy", _CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Frame-Options", "DENY")


async def _redirect(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/ui/")


async def _index(request: web.Request) -> web.StreamResponse:
    return _file("index.html")


async def _static(request: web.Request) -> web.StreamResponse:
    path = request.match_info["path"]
    if ".." in path.split("/"):
        raise web.HTTPNotFound()
    return _file(path)


def _file(path: str) -> web.StreamResponse:
    item = STATIC.joinpath(*path.split("/"))
    suffix = "." + path.rpartition(".")[2]
    if suffix not in _TYPES or not item.is_file():
        raise web.HTTPNotFound()
    return web.Response(body=item.read_bytes(), content_type=_TYPES[suffix], headers={"Cache-Control": "no-cache"})


def _describe(session: Session | None, required: bool) -> dict[str, object]:
    principal = session.principal if session is not None else None
    return {
        "auth_required": required,
        "logged_in": principal is not None,
        "name": principal.name if principal else "",
        "role": principal.role if principal else "",
        "csrf": session.csrf if session is not None and principal is not None else "",
    }


def _set_cookie(request: web.Request, response: web.StreamResponse, session: Session) -> None:
    response.set_cookie(
        COOKIE, session.session_id, httponly=True, samesite="Strict", path="/ui/",
        secure=request.secure, max_age=MAX_AGE_SECONDS,
    )  # fmt: skip


@json_endpoint
async def _session(request: web.Request) -> web.StreamResponse:
    """Who this browser is. Without authentication it gets an anonymous admin session here
    (the page's first request), so that its actions carry a CSRF token too."""
    session = session_of(request)
    required = auth_required(request.app)
    if not required:
        check_host(request)
    if not required and session is None:
        session = request.app[SESSIONS].create(auth.ANONYMOUS)
        response = json_response(_describe(session, required))
        _set_cookie(request, response, session)
        return response
    return json_response(_describe(session, required))


@json_endpoint
async def _login(request: web.Request) -> web.StreamResponse:
    check_same_origin(request)  # no logging a victim in to an attacker's session either
    request.app[LOGIN_LIMITER].check(f"ip:{request.remote or ''}")
    table = request.app[EDGE].tokens
    if table is None:
        raise errors.FailedPrecondition("this controller has no tokens file: no login needed")
    token = text_field(await read_json(request), "token", limit=4096).strip()
    principal = table.lookup(token) if token else None
    if principal is None:
        logger.info("ui.login_refused", peer=request.remote)
        raise errors.Unauthenticated("unknown token" if token else "token: required")
    store = request.app[SESSIONS]
    old = session_of(request)
    if old is not None:
        store.drop(old.session_id)
    session = store.create(principal)
    logger.info("ui.login", name=principal.name, role=principal.role, peer=request.remote)
    response = json_response(_describe(session, True))
    _set_cookie(request, response, session)
    return response


@json_endpoint
async def _logout(request: web.Request) -> web.StreamResponse:
    check_same_origin(request)
    session = session_of(request)
    if session is not None:
        request.app[SESSIONS].drop(session.session_id)
    response = json_response({"ok": True})
    response.del_cookie(COOKIE, path="/ui/")
    return response
