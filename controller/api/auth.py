"""Who may call what: bearer tokens with a role, checked in one gRPC server interceptor.

Clients send ``authorization: Bearer <token>``. The tokens file (``--tokens-file``) is YAML, a
list of ``{name, token | token_sha256, role}``; the name is what logs and job owner tags show,
never the token. Roles are ordered, each includes the one before it:

* ``reader``: Describe*, List*, Watch*, GetJobLogs, DescribeCluster, ExplainJob.
* ``submitter``: + SubmitJob(s), RegisterJobDefinition, and Cancel/Terminate of the jobs it
  submitted itself (the job records its submitter in the reserved tag ``shoal:owner``).
* ``admin``: everything, i.e. queues, compute environments, nodes, deregistering definitions.

``METHOD_ROLES`` is the one table; a method missing from it needs ``admin`` (deny by default).
Health checks are public (load balancers and `shoal up` probe them); the agent gateway is not
token-checked because agents authenticate with their certificate (mutual TLS on the agent
port, see controller/main.py). Without a tokens file authentication is off: every caller is an
anonymous admin, which is what `shoal up` on loopback uses.

The same interceptor applies the per-client rate limit (controller/api/limits.py), keyed by
token name, else by peer IP, before the token is even looked up, so guessing tokens is slow too.
"""

from __future__ import annotations

import contextvars
import hashlib
import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import grpc
import yaml

from controller.api.limits import RateLimiter
from controller.domain import validation as V
from shoal import errors, log
from shoal.certs import node_id_of
from shoal.tls import AUTH_METADATA_KEY

logger = log.get("controller.auth")

READER, SUBMITTER, ADMIN = "reader", "submitter", "admin"
ROLES = (READER, SUBMITTER, ADMIN)
PUBLIC = "public"
"""No token needed (health checks)."""
AGENT = "agent"
"""Authenticated by the agent's certificate instead of a token."""
MIN_TOKEN_CHARS = 16

_B = "/shoal.v1.Batch/"
METHOD_ROLES: dict[str, str] = {
    # reads
    _B + "DescribeJobs": READER,
    _B + "ListJobs": READER,
    _B + "WatchJobs": READER,
    _B + "GetJobLogs": READER,
    _B + "ExplainJob": READER,
    _B + "DescribeJobDefinitions": READER,
    _B + "DescribeJobQueues": READER,
    _B + "DescribeComputeEnvironments": READER,
    _B + "DescribeSchedulingPolicies": READER,
    _B + "ListNodes": READER,
    _B + "DescribeCluster": READER,
    # submitting and managing one's own jobs
    _B + "SubmitJob": SUBMITTER,
    _B + "SubmitJobs": SUBMITTER,
    _B + "CancelJob": SUBMITTER,  # own jobs only, unless admin (checked by the job service)
    _B + "TerminateJob": SUBMITTER,  # idem
    _B + "RegisterJobDefinition": SUBMITTER,
    # administration
    _B + "DeregisterJobDefinition": ADMIN,
    _B + "CreateJobQueue": ADMIN,
    _B + "UpdateJobQueue": ADMIN,
    _B + "DeleteJobQueue": ADMIN,
    _B + "CreateComputeEnvironment": ADMIN,
    _B + "UpdateComputeEnvironment": ADMIN,
    _B + "DeleteComputeEnvironment": ADMIN,
    _B + "CreateSchedulingPolicy": ADMIN,
    _B + "UpdateSchedulingPolicy": ADMIN,
    _B + "DeleteSchedulingPolicy": ADMIN,
    _B + "DrainNode": ADMIN,
    _B + "UndrainNode": ADMIN,
    # outside the Batch service
    "/shoal.v1.AgentGateway/Connect": AGENT,
    "/grpc.health.v1.Health/Check": PUBLIC,
    "/grpc.health.v1.Health/Watch": PUBLIC,
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": READER,
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo": READER,
}


def required_role(method: str) -> str:
    return METHOD_ROLES.get(method, ADMIN)


def allows(role: str, required: str) -> bool:
    """True when `role` may call a method that needs `required`."""
    if required in (PUBLIC, AGENT):
        return True
    return role in ROLES and ROLES.index(role) >= ROLES.index(required)


@dataclass(frozen=True)
class Principal:
    """The caller of the current request. `name` is '' when authentication is off."""

    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN


ANONYMOUS = Principal(name="", role=ADMIN)
_current: contextvars.ContextVar[Principal] = contextvars.ContextVar("shoal_principal", default=ANONYMOUS)


def current_principal() -> Principal:
    """The caller of the request being served (ANONYMOUS when authentication is off)."""
    return _current.get()


# --- the tokens file ------------------------------------------------------------------------------

_TOKEN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


class TokenFileError(errors.InvalidArgument):
    pass


class TokenTable:
    """Token -> Principal. Only SHA-256 digests are kept in memory."""

    def __init__(self, entries: dict[str, Principal]) -> None:
        self._by_digest = entries

    def __len__(self) -> int:
        return len(self._by_digest)

    def lookup(self, token: str) -> Principal | None:
        return self._by_digest.get(hashlib.sha256(token.encode()).hexdigest())

    @classmethod
    def parse(cls, text: str, source: str = "tokens file") -> TokenTable:
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise TokenFileError(f"{source}: not valid YAML: {err}") from None
        if not isinstance(doc, list) or not doc:
            raise TokenFileError(f"{source}: expected a non-empty list of {{name, token | token_sha256, role}}")
        entries: dict[str, Principal] = {}
        names: set[str] = set()
        for i, item in enumerate(doc):
            where = f"{source}: [{i}]"
            if not isinstance(item, dict):
                raise TokenFileError(f"{where}: expected a mapping with name, token (or token_sha256) and role")
            unknown = sorted(set(map(str, item)) - {"name", "token", "token_sha256", "role"})
            if unknown:
                raise TokenFileError(f"{where}: unknown key '{unknown[0]}' (expected name, token, token_sha256, role)")
            name, role = item.get("name"), item.get("role")
            if not isinstance(name, str) or not _TOKEN_NAME.fullmatch(name):
                raise TokenFileError(f"{where}.name: 1..64 letters, digits, '.', '_', '@', '-' (got {name!r})")
            if name in names:
                raise TokenFileError(f"{where}.name: '{name}' is listed twice")
            if role not in ROLES:
                raise TokenFileError(f"{where}.role: must be one of {', '.join(ROLES)} (got {role!r})")
            token, digest = item.get("token"), item.get("token_sha256")
            if (token is None) == (digest is None):
                raise TokenFileError(f"{where}: give exactly one of token and token_sha256")
            if token is not None:
                if not isinstance(token, str) or len(token) < MIN_TOKEN_CHARS or token != token.strip():
                    raise TokenFileError(
                        f"{where}.token: must be a string of at least {MIN_TOKEN_CHARS} characters without "
                        "surrounding spaces (e.g. from `openssl rand -hex 32`)"
                    )
                digest = hashlib.sha256(token.encode()).hexdigest()
            elif not isinstance(digest, str) or not _HEX64.fullmatch(digest.lower()):
                raise TokenFileError(f"{where}.token_sha256: must be 64 hex digits")
            digest = digest.lower()
            if digest in entries:
                raise TokenFileError(f"{where}: the same token is also given to '{entries[digest].name}'")
            names.add(name)
            entries[digest] = Principal(name=name, role=role)
        return cls(entries)

    @classmethod
    def load(cls, path: str | Path) -> TokenTable:
        try:
            text = Path(path).read_text()
        except OSError as err:
            raise TokenFileError(f"--tokens-file: cannot read {path}: {err.strerror}") from None
        return cls.parse(text, str(path))


# --- the interceptor ------------------------------------------------------------------------------


def peer_ip(peer: str) -> str:
    """'ipv4:10.0.0.1:5000' -> '10.0.0.1'; 'ipv6:[::1]:5000' -> '::1'; anything else as is."""
    kind, _, rest = unquote(peer).partition(":")
    if kind in ("ipv4", "ipv6"):
        host = rest.rpartition(":")[0] or rest
        return host.strip("[]")
    return peer


def _bearer(context: grpc.aio.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == AUTH_METADATA_KEY:
            text = value if isinstance(value, str) else value.decode(errors="replace")
            scheme, _, token = text.strip().partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return ""


class GuardInterceptor(grpc.aio.ServerInterceptor):
    """Rate limit, authenticate and authorize every call before its servicer runs."""

    def __init__(self, tokens: TokenTable | None, limiter: RateLimiter | None = None) -> None:
        self.tokens = tokens
        self.limiter = limiter

    def admit(self, method: str, context: grpc.aio.ServicerContext) -> Principal:
        """The caller of `method`, or a ShoalError saying why it is refused."""
        if required_role(method) == PUBLIC and self.tokens is None:
            # Health checks are never throttled: a load balancer must always get an answer.
            return ANONYMOUS
        token = _bearer(context) if self.tokens is not None else ""
        principal = self.tokens.lookup(token) if (self.tokens is not None and token) else None
        if self.limiter is not None and required_role(method) != PUBLIC:
            self.limiter.check(f"token:{principal.name}" if principal else f"ip:{peer_ip(context.peer() or '')}")
        if self.tokens is None:
            return ANONYMOUS
        required = required_role(method)
        if required == PUBLIC:
            return principal or Principal(name="", role="")
        if principal is None:
            what = "an unknown token" if token else "no token"
            raise errors.Unauthenticated(
                f"{method.rsplit('/', 1)[-1]}: {what}; send 'authorization: Bearer <token>' "
                "(shoal --token / $SHOAL_TOKEN)"
            )
        if not allows(principal.role, required):
            raise errors.PermissionDenied(
                f"{method.rsplit('/', 1)[-1]} needs the {required} role; '{principal.name}' is a {principal.role}"
            )
        return principal

    async def _refuse(self, context: grpc.aio.ServicerContext, method: str, err: errors.ShoalError) -> None:
        logger.info("request.refused", method=method, code=err.code.name, peer=context.peer(), reason=err.message)
        await context.abort(err.code, err.message)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or required_role(method) == AGENT:
            return handler
        guard = self

        if handler.unary_unary is not None:
            inner = handler.unary_unary

            async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                try:
                    principal = guard.admit(method, context)
                except errors.ShoalError as err:
                    await guard._refuse(context, method, err)
                    return None
                reset = _current.set(principal)
                try:
                    result = inner(request, context)
                    return await result if inspect.isawaitable(result) else result
                finally:
                    _current.reset(reset)

            return grpc.unary_unary_rpc_method_handler(
                unary_unary, handler.request_deserializer, handler.response_serializer
            )

        def streaming(inner: Callable[..., Any]) -> Callable[..., Any]:
            async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
                try:
                    principal = guard.admit(method, context)
                except errors.ShoalError as err:
                    await guard._refuse(context, method, err)
                    return
                reset = _current.set(principal)
                try:
                    result = inner(request, context)
                    if hasattr(result, "__aiter__"):
                        async for item in result:
                            yield item
                    elif inspect.isawaitable(result):
                        await result
                    elif result is not None:
                        for item in result:
                            yield item
                finally:
                    _current.reset(reset)

            return wrapped

        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                streaming(handler.unary_stream), handler.request_deserializer, handler.response_serializer
            )
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                streaming(handler.stream_stream), handler.request_deserializer, handler.response_serializer
            )
        return handler  # stream_unary: none exists; the servicer applies no data without a role


def agent_node_id(context: grpc.aio.ServicerContext) -> str | None:
    """The node id of the agent certificate the peer presented, or None without one."""
    try:
        auth = context.auth_context() or {}
    except Exception:  # noqa: BLE001 - no security context on a plaintext port
        return None
    pems = auth.get("x509_pem_cert") or []
    if not pems:
        return None
    return node_id_of(pems[0]) or None


# --- secrets --------------------------------------------------------------------------------------

REDACTED = "****"


def _secret_names(tags: Any) -> frozenset[str]:
    from controller.domain.validation import SECRET_ENV_TAG

    raw = tags.get(SECRET_ENV_TAG, "")
    return frozenset(n.strip() for n in raw.split(",") if n.strip())


def _redact_env(environment: Any, secret: frozenset[str]) -> None:
    for kv in environment:
        if kv.name in secret:
            kv.value = REDACTED


def redact_job(job: Any) -> Any:
    """A copy of `job` with the values of its secret environment variables replaced by ****.

    The stored record (and what the agent receives) keeps the real values.
    """
    secret = _secret_names(job.tags)
    if not secret:
        return job
    copy = type(job)()
    copy.CopyFrom(job)
    _redact_env(copy.container.environment, secret)
    return copy


def redact_definition(definition: Any) -> Any:
    secret = _secret_names(definition.tags)
    if not secret:
        return definition
    copy = type(definition)()
    copy.CopyFrom(definition)
    _redact_env(copy.container_properties.environment, secret)
    return copy


# --- the controller's network edge: flags -> TLS, tokens, limits ----------------------------------


@dataclass(frozen=True)
class EdgeOptions:
    """How the controller's gRPC ports are secured and limited (see `add_arguments`)."""

    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    """With it, the agent gateway is served on `agent_listen` with mutual TLS (gRPC's Python
    server cannot ask for a client certificate on a port without requiring it, and API clients
    authenticate with tokens, not certificates: hence a port of its own)."""
    agent_listen: str = ""
    agent_advertise: str = ""
    tokens: TokenTable | None = None
    max_message_bytes: int = 16 * 1024 * 1024
    rate: float = 1000.0
    burst: float = 2000.0
    max_queued_per_queue: int = 100_000
    max_array_size: int = 10_000
    aws_api: Any = None
    """Options of the AWS Batch route set (controller/http/awsbatch `AwsOptions`); None = defaults."""

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert)

    @property
    def mutual_tls(self) -> bool:
        return bool(self.tls_client_ca)

    def interceptors(self) -> list[grpc.aio.ServerInterceptor]:
        limiter = RateLimiter(self.rate, self.burst) if self.rate > 0 else None
        if self.tokens is None and limiter is None:
            return []
        return [GuardInterceptor(self.tokens, limiter)]


def add_arguments(p: Any) -> None:
    """The controller's security and limit flags."""
    g = p.add_argument_group("security and limits")
    g.add_argument("--tls-cert", default="", metavar="FILE", help="server certificate (PEM; `shoal certs issue --kind server`)")
    g.add_argument("--tls-key", default="", metavar="FILE", help="key of --tls-cert")
    g.add_argument("--tls-client-ca", default="", metavar="FILE",
                   help="CA that agent certificates must chain to; agents then connect to --agent-listen with mutual TLS")
    g.add_argument("--agent-listen", default="", metavar="HOST:PORT",
                   help="mutual-TLS port of the agent gateway (default: --listen's host, its port + 1); needs --tls-client-ca")
    g.add_argument("--agent-advertise", default="", metavar="HOST:PORT",
                   help="address agents are sent to for the agent gateway (default: --advertise's host, the --agent-listen port)")
    g.add_argument("--tokens-file", default="", metavar="FILE",
                   help="YAML list of {name, token | token_sha256, role}; without it, authentication is off")
    g.add_argument("--insecure", action="store_true",
                   help="allow a non-loopback --listen without TLS, agent certificates and tokens")
    g.add_argument("--max-message-mib", type=int, default=16, metavar="MIB", help="largest request accepted (default %(default)s)")
    g.add_argument("--rate-limit", type=float, default=1000.0, metavar="N",
                   help="requests/s per client (token name, else peer IP); 0 = off (default %(default)g)")
    g.add_argument("--rate-burst", type=float, default=0.0, metavar="N", help="burst above --rate-limit (default: 2 x --rate-limit)")
    g.add_argument("--max-queued-jobs-per-queue", type=int, default=100_000, metavar="N",
                   help="refuse submissions beyond this many queued (not yet started) jobs in a queue; 0 = no limit (default %(default)s)")
    g.add_argument("--max-array-size", type=int, default=10_000, metavar="N",
                   help="largest array job accepted (array_properties.size), 2..100000; the default is AWS Batch's limit (default %(default)s)")


def _replace_port(address: str, port: int) -> str:
    host, _, _ = address.rpartition(":")
    return f"{host}:{port}"


def edge_from_args(ns: Any, advertise: str) -> EdgeOptions:
    """Validate the flags; a refusal is one line (SystemExit) before anything starts."""
    from shoal.tls import is_loopback, read_pem

    def fail(message: str) -> SystemExit:
        return SystemExit(f"shoal controller: {message}")

    if bool(ns.tls_cert) != bool(ns.tls_key):
        raise fail("--tls-cert and --tls-key go together")
    if ns.tls_client_ca and not ns.tls_cert:
        raise fail("--tls-client-ca needs --tls-cert and --tls-key (agents must be able to verify the controller)")
    if not 1 <= ns.max_message_mib <= 1024:
        raise fail(f"--max-message-mib must be 1..1024 (got {ns.max_message_mib})")
    if ns.rate_limit < 0 or ns.rate_burst < 0 or ns.max_queued_jobs_per_queue < 0:
        raise fail("--rate-limit, --rate-burst and --max-queued-jobs-per-queue cannot be negative")
    if not 2 <= ns.max_array_size <= V.ARRAY_SIZE_CAP:
        raise fail(f"--max-array-size must be 2..{V.ARRAY_SIZE_CAP} (got {ns.max_array_size})")
    try:
        for path, what in ((ns.tls_cert, "--tls-cert"), (ns.tls_key, "--tls-key"), (ns.tls_client_ca, "--tls-client-ca")):
            if path:
                read_pem(path, what)
        tokens = TokenTable.load(ns.tokens_file) if ns.tokens_file else None
    except errors.ShoalError as err:
        raise fail(err.message) from None
    if not ns.insecure and not is_loopback(ns.listen):
        missing = [flag for flag, given in (("--tls-cert/--tls-key", ns.tls_cert), ("--tls-client-ca", ns.tls_client_ca),
                                            ("--tokens-file", ns.tokens_file)) if not given]
        if missing:
            raise fail(
                f"refusing to serve {ns.listen} (not loopback) without {', '.join(missing)}; create them with "
                "`shoal certs` (see README, Security), or pass --insecure to run unprotected"
            )
    agent_listen = agent_advertise = ""
    if ns.tls_client_ca:
        port = int(ns.listen.rpartition(":")[2])
        agent_listen = ns.agent_listen or _replace_port(ns.listen, port + 1)
        agent_advertise = ns.agent_advertise or _replace_port(advertise, int(agent_listen.rpartition(":")[2]))
    elif ns.agent_listen:
        raise fail("--agent-listen needs --tls-client-ca (without it agents use --listen)")
    return EdgeOptions(
        tls_cert=ns.tls_cert,
        tls_key=ns.tls_key,
        tls_client_ca=ns.tls_client_ca,
        agent_listen=agent_listen,
        agent_advertise=agent_advertise,
        tokens=tokens,
        max_message_bytes=ns.max_message_mib * 1024 * 1024,
        rate=ns.rate_limit,
        burst=ns.rate_burst or 2 * ns.rate_limit,
        max_queued_per_queue=ns.max_queued_jobs_per_queue,
        max_array_size=ns.max_array_size,
    )
