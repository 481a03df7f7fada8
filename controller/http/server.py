"""One aiohttp server per controller replica, beside the gRPC server, on the same event loop.

Why aiohttp: it is the well-kept asyncio HTTP server of the Python field (server and client,
streaming responses for server-sent events, TLS through the stdlib `ssl` context), so it runs on
the loop the replica already runs on and calls the same services as the gRPC servicers, in
process, with no second copy of state. Route sets plug in as `RouteSet`s:

* `controller/http/awsbatch/` — AWS Batch's restJson1 wire protocol (`POST /v1/submitjob`, ...)
* `controller/http/ui/` — the dashboard under `/ui/`

Every route set calls the API through `ApiCaller`, which runs the gRPC servicer's own method
(validation, leader checks, redaction: nothing is re-implemented) for a `Principal` the route
set authenticated its own way (SigV4 access keys, a dashboard session), after checking that
principal's role against the same table the gRPC interceptor uses (`auth.METHOD_ROLES`).
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from controller.api import auth
from controller.api.batch import BatchServicer
from controller.services.replica import Replica
from shoal import errors, log

logger = log.get("controller.http")

REPLICA: web.AppKey[Replica] = web.AppKey("replica", Replica)
API: web.AppKey[ApiCaller] = web.AppKey("api", object)  # type: ignore[arg-type]
EDGE: web.AppKey[auth.EdgeOptions] = web.AppKey("edge", auth.EdgeOptions)


class _LocalContext:
    """The little of grpc.aio.ServicerContext the servicer methods touch, for in-process calls."""

    def __init__(self, peer: str) -> None:
        self._peer = peer

    def peer(self) -> str:
        return self._peer

    def invocation_metadata(self) -> tuple[()]:
        return ()

    def set_trailing_metadata(self, _md: Any) -> None:
        return None

    def cancelled(self) -> bool:
        return False

    def done(self) -> bool:
        return False


class ApiCaller:
    """Call a shoal.v1.Batch method in process, as `principal`; domain errors are raised as is."""

    def __init__(self, servicer: BatchServicer) -> None:
        self.servicer = servicer

    def _method(self, name: str) -> Callable[..., Any]:
        bound = getattr(self.servicer, name, None)
        if bound is None:
            raise errors.InvalidArgument(f"no such API method {name}")
        # The gRPC edge decorators (controller/api/errors.py) turn ShoalError into an abort;
        # here we want the error itself, so call what they wrap.
        inner = getattr(bound, "__wrapped__", None)
        return (lambda request, context: inner(self.servicer, request, context)) if inner else bound

    @staticmethod
    def authorize(name: str, principal: auth.Principal) -> None:
        required = auth.required_role("/shoal.v1.Batch/" + name)
        if not auth.allows(principal.role, required):
            who = principal.name or "anonymous"
            raise errors.PermissionDenied(f"{name} needs the {required} role; '{who}' is a {principal.role or 'nobody'}")

    async def call(self, name: str, request: Any, principal: auth.Principal = auth.ANONYMOUS, peer: str = "") -> Any:
        self.authorize(name, principal)
        reset = auth._current.set(principal)
        try:
            return await self._method(name)(request, _LocalContext(peer))
        finally:
            auth._current.reset(reset)

    async def stream(
        self, name: str, request: Any, principal: auth.Principal = auth.ANONYMOUS, peer: str = ""
    ) -> AsyncIterator[Any]:
        self.authorize(name, principal)
        reset = auth._current.set(principal)
        try:
            async for item in self._method(name)(request, _LocalContext(peer)):
                yield item
        finally:
            with contextlib.suppress(ValueError):  # reset from another context at generator close
                auth._current.reset(reset)


class RouteSet(Protocol):
    """A part of the HTTP edge (AWS Batch API, dashboard): adds its routes and middlewares."""

    def install(self, app: web.Application) -> None: ...


@dataclass
class HttpOptions:
    listen: str
    """HOST:PORT the HTTP server binds."""
    route_sets: list[RouteSet] = field(default_factory=list)
    tls_cert: str = ""
    tls_key: str = ""


class HttpServer:
    """The aiohttp application and its listener; started after the replica, stopped before it."""

    def __init__(self, options: HttpOptions, replica: Replica, servicer: BatchServicer, edge: auth.EdgeOptions) -> None:
        self.options = options
        self.app = web.Application(client_max_size=edge.max_message_bytes)
        self.app[REPLICA] = replica
        self.app[API] = ApiCaller(servicer)
        self.app[EDGE] = edge
        self.app.router.add_get("/healthz", self._healthz)
        for route_set in options.route_sets:
            route_set.install(self.app)
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def _healthz(self, request: web.Request) -> web.Response:
        ok = request.app[REPLICA].view.healthy
        return web.Response(status=200 if ok else 503, text="ok\n" if ok else "etcd unavailable\n")

    async def start(self) -> None:
        host, _, port = self.options.listen.rpartition(":")
        host = host.strip("[]") or "0.0.0.0"
        context = None
        if self.options.tls_cert:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.options.tls_cert, self.options.tls_key)
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, int(port), ssl_context=context, reuse_address=True)
        try:
            await site.start()
        except OSError as err:
            await self._runner.cleanup()
            raise SystemExit(f"shoal controller: cannot listen on {self.options.listen} (HTTP): {err.strerror}") from None
        sockets = getattr(site._server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else int(port)
        logger.info("http.ready", listen=self.options.listen, tls=bool(context),
                    routes=[type(r).__name__ for r in self.options.route_sets])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
