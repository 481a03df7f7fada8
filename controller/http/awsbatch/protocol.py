"""AWS's restJson1 protocol for the Batch service: routing, authentication, errors.

botocore's `batch` model says how each operation travels: `POST /v1/submitjob` with a JSON
body, `GET|POST|DELETE /v1/tags/{resourceArn}` for tags (the ARN percent-encoded in the path,
`tagKeys` in the query). Answers are JSON; errors are an HTTP status, the header
`x-amzn-errortype: CODE` and the body `{"__type": CODE, "message": ...}`, which botocore turns
into `ClientError` with `Error.Code == CODE`.

`ERRORS` is the one table from shoal's error classes (shoal/errors.py) to these.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from controller.api import auth
from controller.api.limits import RateLimiter
from controller.http import server
from controller.http.awsbatch import sigv4
from controller.http.awsbatch.arns import Arns
from controller.http.awsbatch.credentials import AccessKeyTable
from controller.http.awsbatch.jsonbody import Obj
from shoal import errors, log

logger = log.get("controller.http.awsbatch")

SERVICE = "batch"
CLIENT = "ClientException"
SERVER = "ServerException"

# shoal error class -> (HTTP status, AWS error code). First match wins (subclasses first).
ERRORS: tuple[tuple[type[errors.ShoalError], int, str], ...] = (
    (errors.InvalidArgument, 400, CLIENT),
    (errors.NotFound, 400, CLIENT),  # AWS Batch answers unknown names with ClientException too
    (errors.AlreadyExists, 400, CLIENT),
    (errors.FailedPrecondition, 400, CLIENT),
    (errors.Conflict, 409, CLIENT),
    (errors.ResourceExhausted, 400, CLIENT),  # queue full, array too large: retrying soon won't help
    (errors.Unauthenticated, 403, sigv4.UNRECOGNIZED_CLIENT),
    (errors.PermissionDenied, 403, "AccessDeniedException"),
    (errors.Unavailable, 503, SERVER),  # NotLeader, FencedOut, etcd down: botocore retries 503
    (errors.DeadlineExceeded, 504, SERVER),
)


def error_of(err: errors.ShoalError) -> tuple[int, str]:
    for cls, status, code in ERRORS:
        if isinstance(err, cls):
            return status, code
    return 500, SERVER


def error_response(status: int, code: str, message: str) -> web.Response:
    body = json.dumps({"__type": code, "message": message})
    return web.Response(
        status=status, body=body.encode(), content_type="application/json", headers={"x-amzn-errortype": code}
    )


def json_response(payload: dict[str, Any]) -> web.Response:
    return web.Response(status=200, body=json.dumps(payload).encode(), content_type="application/json")


@dataclass(frozen=True)
class AwsOptions:
    """The AWS Batch edge's own settings (`controller --aws-*`)."""

    region: str = "us-east-1"
    account: str = "000000000000"
    keys: AccessKeyTable | None = None
    """Access keys for SigV4; None = requests are not verified (only allowed when the gRPC
    side has no tokens either, i.e. loopback or --insecure, like gRPC without --tokens-file)."""


@dataclass
class Call:
    """One AWS operation being served: its body, URI labels, query, caller and API."""

    operation: str
    body: Obj
    labels: dict[str, str]
    query: Any
    principal: auth.Principal
    arns: Arns
    api: server.ApiCaller
    peer: str

    async def call(self, method: str, request: Any) -> Any:
        """A shoal.v1.Batch method, in process, as this caller (validation and roles are its own)."""
        try:
            return await self.api.call(method, request, self.principal, peer=self.peer)
        except errors.ShoalError as err:
            err.message = aws_field_names(err.message)
            raise


_LEADING_FIELD = re.compile(r"^([a-z][a-z0-9_]*(?:\[\d+\])?(?:\.[a-z][a-z0-9_]*(?:\[\d+\])?)*): ")
# shoal.v1 fields whose AWS name is not just the camelCase spelling.
_RENAMED = {"memoryMib": "memory", "jobIds": "jobs", "sharedMemorySizeMib": "sharedMemorySize", "resources": "",
            "schedulingPolicy": "schedulingPolicyArn"}


def _camel(segment: str) -> str:
    head, *rest = segment.split("_")
    word = head + "".join(part[:1].upper() + part[1:] for part in rest)
    index = word.find("[")
    name, suffix = (word[:index], word[index:]) if index >= 0 else (word, "")
    renamed = _RENAMED.get(name, name)
    return renamed + suffix if renamed else ""


def aws_field_names(message: str) -> str:
    """shoal's messages start with the shoal.v1 field path ("container_overrides.memory_mib: ...");
    AWS users know the request's own names ("containerOverrides.memory: ...")."""
    match = _LEADING_FIELD.match(message)
    if match is None:
        return message
    path = ".".join(part for part in (_camel(seg) for seg in match[1].split(".")) if part)
    return f"{path}: {message[match.end():]}"


Handler = Callable[[Call], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Operation:
    name: str
    method: str
    uri: str
    """As in botocore's model: '/v1/submitjob', '/v1/tags/{resourceArn}'."""

    @property
    def prefix(self) -> str:
        return self.uri.split("{", 1)[0]

    @property
    def label(self) -> str:
        return self.uri[self.uri.index("{") + 1 : self.uri.index("}")] if "{" in self.uri else ""


class Router:
    """(method, path) -> operation; exact paths first, then the templated ones by prefix."""

    def __init__(self, operations: list[Operation]) -> None:
        self.exact = {(op.method, op.uri): op for op in operations if not op.label}
        self.templated = [op for op in operations if op.label]

    def match(self, method: str, raw_path: str) -> tuple[Operation, dict[str, str]] | None:
        path = raw_path.rstrip("/") or "/"
        op = self.exact.get((method, path.lower()))
        if op is not None:
            return op, {}
        for op in self.templated:
            if op.method == method and path.startswith(op.prefix) and len(path) > len(op.prefix):
                return op, {op.label: unquote(path[len(op.prefix) :])}
        return None


class AwsBatchEdge:
    """The aiohttp side: authenticate, parse, dispatch to a handler, encode the answer."""

    def __init__(
        self, router: Router, handlers: dict[str, Handler], options: AwsOptions, edge: auth.EdgeOptions
    ) -> None:
        self.router = router
        self.handlers = handlers
        self.options = options
        self.edge = edge
        self.arns = Arns(options.region, options.account)
        self.limiter = RateLimiter(edge.rate, edge.burst) if edge.rate > 0 else None

    def authenticate(self, request: web.Request, body: bytes) -> auth.Principal:
        keys = self.options.keys
        if keys is None:
            if self.edge.tokens is not None:
                raise sigv4.SignatureError(
                    sigv4.UNRECOGNIZED_CLIENT,
                    "this controller authenticates gRPC clients (--tokens-file) but has no "
                    "--aws-credentials-file, so it accepts no AWS API request",
                )
            return auth.ANONYMOUS
        raw_path, _, raw_query = request.raw_path.partition("?")
        verified = sigv4.verify(
            sigv4.SignedRequest(request.method, raw_path, raw_query, sigv4.header_pairs(request.headers), body),
            keys.secret,
            region=self.options.region,
            service=SERVICE,
            now=datetime.now(UTC),
        )
        return keys.principal(verified.access_key_id)

    def _throttled(self, key: str) -> web.Response | None:
        """The per-client rate limit of the gRPC side (--rate-limit), keyed by access key name or IP."""
        if self.limiter is None:
            return None
        try:
            self.limiter.check(key)
        except errors.ResourceExhausted as err:
            return error_response(429, "TooManyRequestsException", err.message)
        return None

    async def dispatch(self, request: web.Request) -> web.Response:
        raw_path = request.raw_path.partition("?")[0]
        found = self.router.match(request.method, raw_path)
        if found is None:
            return error_response(404, "UnknownOperationException", f"no AWS Batch operation at {request.method} {raw_path}")
        op, labels = found
        body = await request.read()
        peer = request.remote or ""
        try:
            principal = self.authenticate(request, body)
        except sigv4.SignatureError as err:
            logger.info("aws.refused", operation=op.name, code=err.code, peer=peer, reason=err.message)
            # Refusals count against the peer's rate too, so guessing keys is as slow as calling.
            throttled = self._throttled(f"ip:{peer}")
            return throttled or error_response(403, err.code, err.message)
        throttled = self._throttled(f"token:{principal.name}" if principal.name else f"ip:{peer}")
        if throttled is not None:
            return throttled
        try:
            data = json.loads(body) if body.strip() else {}
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            return error_response(400, CLIENT, f"request body is not valid JSON: {err}")
        try:
            call = Call(
                operation=op.name,
                body=Obj(data, "", op.name),
                labels=labels,
                query=request.query,
                principal=principal,
                arns=self.arns,
                api=request.app[server.API],
                peer=peer,
            )
            payload = await self.handlers[op.name](call)
        except errors.ShoalError as err:
            status, code = error_of(err)
            if status >= 500:
                logger.warning("aws.failed", operation=op.name, code=code, reason=err.message)
            return error_response(status, code, err.message)
        except Exception as err:  # noqa: BLE001 - the client gets a ServerException, the log the trace
            logger.exception("aws.crashed", operation=op.name)
            return error_response(500, SERVER, f"internal error in {op.name}: {type(err).__name__}")
        return json_response(payload)
