"""shoal's own API over plain HTTP: `POST /shoal.v1.Batch/<Method>`, for clients without gRPC.

Why: a gRPC client costs a short-lived process ~100 ms of imports (grpc pulls in asyncio and its
C core) before the first byte is sent, which is most of a `shoal submit` in a shell loop. Over
this route the CLI needs only a socket and JSON (shoal/cli/wire.py), so one call costs little
more than the interpreter's start.

The shape follows the unary half of the Connect protocol, which gRPC tooling already speaks:

* The path is the gRPC method's (`/shoal.v1.Batch/SubmitJob`); the body is the request message,
  as protobuf (`Content-Type: application/proto`) or as its canonical proto3 JSON
  (`application/json`: camelCase field names, enums by their full names, int64 as strings).
  The answer has the same content type, status 200.
* A refusal is JSON in either case, with the HTTP status of its code:
  `{"code": "invalid_argument", "message": "jobName: ..."}`. A follower that cannot serve a
  leader-only call adds the leader's gRPC address: `"leader": "10.0.0.1:50051"` (and the header
  `shoal-leader`), as gRPC's trailing metadata does.
* Server-streaming methods (WatchJobs, GetJobLogs) answer with newline-delimited JSON, one
  message per line; an error after the stream started is a last line `{"error": {...}}`.
* `Authorization: Bearer <token>` as over gRPC; the same rate limit, tokens and role table
  (controller/api/auth.py), and the same servicer methods through `ApiCaller`, so validation,
  leader checks and secret redaction are gRPC's own. Any replica's edge takes submissions.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from aiohttp import web
from google.protobuf import json_format, message_factory
from google.protobuf.message import DecodeError

from controller.api import auth
from controller.api.limits import RateLimiter
from controller.http.server import API
from shoal import errors, log
from shoal.v1 import batch_pb2

logger = log.get("controller.http.native")

PREFIX = "/shoal.v1.Batch/"
JSON = "application/json"
PROTO = "application/proto"
NDJSON = "application/x-ndjson"
MARK = {"shoal-api": "1"}
"""On every answer of these routes: the CLI tells them from a 404 of something else by it."""

_SERVICE = batch_pb2.DESCRIPTOR.services_by_name["Batch"]

# Connect's mapping of status codes to HTTP statuses (what proxies and curl users see).
HTTP_STATUS: dict[str, int] = {
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}


class _Peer:
    """The little of a grpc ServicerContext `GuardInterceptor.admit` reads, for an HTTP request."""

    def __init__(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        self._metadata = ((auth.AUTH_METADATA_KEY, header),) if header else ()
        host = request.remote or ""
        self._peer = (f"ipv6:[{host}]:0" if ":" in host else f"ipv4:{host}:0") if host else ""

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def peer(self) -> str:
        return self._peer


def error_body(err: errors.ShoalError) -> dict[str, str]:
    body = {"code": err.code_name.lower(), "message": err.message}
    if isinstance(err, errors.NotLeader) and err.leader:
        body["leader"] = err.leader
    return body


def _error_response(err: errors.ShoalError) -> web.Response:
    headers = dict(MARK)
    if isinstance(err, errors.NotLeader) and err.leader:
        headers[errors.LEADER_METADATA_KEY] = err.leader
    return web.Response(
        status=HTTP_STATUS.get(err.code_name, 500),
        body=json.dumps(error_body(err)).encode(),
        content_type=JSON,
        headers=headers,
    )


def _to_json(message: Any) -> bytes:
    return json.dumps(json_format.MessageToDict(message), separators=(",", ":")).encode()


class NativeRoutes:
    """The route set (see controller/http/server.py); `edge` gives tokens and the rate limit."""

    def __init__(self, edge: auth.EdgeOptions) -> None:
        # A limiter of its own: the gRPC port keeps its budget, this port gets the same one.
        limiter = RateLimiter(edge.rate, edge.burst) if edge.rate > 0 else None
        self.guard = auth.GuardInterceptor(edge.tokens, limiter)

    def install(self, app: web.Application) -> None:
        app.router.add_post(PREFIX + "{method}", self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["method"]
        method = _SERVICE.methods_by_name.get(name)
        try:
            if method is None:
                raise _Unimplemented(f"shoal.v1.Batch has no method {name}")
            kind = request.content_type
            if kind not in (JSON, PROTO):
                raise errors.InvalidArgument(f"Content-Type must be {JSON} or {PROTO} (got {kind or 'none'})")
            principal = self.guard.admit(PREFIX + name, _Peer(request))
            try:
                body = await request.read()
            except web.HTTPRequestEntityTooLarge as err:
                raise errors.ResourceExhausted(f"request too large: {err.text}") from None
            message = message_factory.GetMessageClass(method.input_type)()
            try:
                if kind == PROTO:
                    message.ParseFromString(body)
                else:
                    json_format.Parse(body or b"{}", message)
            except (json_format.ParseError, DecodeError, UnicodeDecodeError) as err:
                raise errors.InvalidArgument(f"request body is not a valid {method.input_type.name}: {err}") from None
            api = request.app[API]
            peer = _Peer(request).peer()
            if method.server_streaming:
                return await self._stream(request, api, name, message, principal, peer)
            response = await api.call(name, message, principal, peer=peer)
        except errors.ShoalError as err:
            if not isinstance(err, _Unimplemented):
                logger.info("request.refused", method=name, code=err.code_name, reason=err.message)
            return _error_response(err)
        if kind == PROTO:
            return web.Response(body=response.SerializeToString(), content_type=PROTO, headers=MARK)
        return web.Response(body=_to_json(response), content_type=JSON, headers=MARK)

    async def _stream(
        self, request: web.Request, api: Any, name: str, message: Any, principal: auth.Principal, peer: str
    ) -> web.StreamResponse:
        items = api.stream(name, message, principal, peer=peer)
        # Errors before the first message (unknown job, wrong role) get a plain error response,
        # as a unary call would; after it, they become the stream's last line.
        try:
            first = await items.__anext__()
        except StopAsyncIteration:
            first = None
        response = web.StreamResponse(headers={"Content-Type": NDJSON, **MARK})
        await response.prepare(request)
        try:
            if first is not None:
                await response.write(_to_json(first) + b"\n")
                async for item in items:
                    await response.write(_to_json(item) + b"\n")
        except errors.ShoalError as err:
            await response.write(json.dumps({"error": error_body(err)}).encode() + b"\n")
        except (ConnectionResetError, OSError):
            return response  # the client went away (it stops reading once it has what it wanted)
        finally:
            with contextlib.suppress(Exception):
                await items.aclose()
        with contextlib.suppress(ConnectionResetError, OSError):
            await response.write_eof()
        return response


class _Unimplemented(errors.ShoalError):
    code_name = "UNIMPLEMENTED"
