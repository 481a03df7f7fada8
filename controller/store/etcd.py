"""A thin etcd v3 client over grpc.aio: the only code in shoal that speaks to etcd.

Why our own (DESIGN.md, "Own the etcd layer"): no Python etcd client combines TLS with client
certificates, several endpoints, a deadline on every call, a watch that resumes without skipping
or repeating, and a refusal to retry writes blindly. This module does exactly that and nothing
more; it uses only the generated stubs shipped in `aetcd.rpc`, never aetcd's client.

Endpoint policy (sticky with failover):
- Every call goes to the *current* endpoint while it stays connected. When it cannot be
  reached, the client waits a short grace for it, then tries to connect to all the others and
  takes the first one that becomes READY, which becomes the new current endpoint. Sticking to
  one member keeps a caller's reads and watches on one member's view, and keeps one connection
  busy instead of several.
- Reads (Range, LeaseKeepAlive, LeaseRevoke, Compact and watches) are idempotent: after
  UNAVAILABLE or a deadline they are tried again on the next endpoint, at most once per endpoint,
  each attempt with its own deadline of `timeout` seconds.
- Writes (Put, DeleteRange, Txn, LeaseGrant) are sent only on a channel that is READY; if no
  endpoint is connected the request was certainly never sent and `EtcdUnavailable` is raised.
  Once sent, any failure other than an explicit rejection by etcd raises `WriteOutcomeUnknown`
  and is never retried here: the caller must re-read and decide (a blind retry can apply a
  write twice, or apply a write that was fenced out by a newer leader in between).

Every request carries etcd's "require leader" metadata, so a member cut off from the quorum
answers UNAVAILABLE at once instead of hanging until the deadline, and a watch on such a member
is ended by the server and resumed elsewhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Self, TypeVar

import grpc
import grpc.aio
from aetcd.rpc import kv_pb2, rpc_pb2, rpc_pb2_grpc
from prometheus_client import Histogram

from shoal import log
from shoal.errors import (
    FencedOut,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    ShoalError,
    Unauthenticated,
    Unavailable,
)

_log = log.get("shoal.store.etcd")

#: etcd refuses requests above --max-request-bytes (1.5 MiB by default); stay under it with room
#: for the request header etcd wraps around every proposal.
MAX_REQUEST_BYTES = 1_468_006  # 1.4 MiB

#: Time of each unary etcd request (one attempt on one endpoint), by client method. Not
#: registered anywhere here: the controller's /metrics registry includes it (controller/metrics.py).
REQUEST_SECONDS = Histogram(
    "shoal_etcd_request_duration_seconds",
    "etcd unary request latency (one attempt on one endpoint), by client method",
    ["method"],
    registry=None,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)

#: Metadata asking etcd to fail a request (or end a stream) when the member has no raft leader.
_REQUIRE_LEADER = (("hasleader", "true"),)

_CHANNEL_OPTIONS: list[tuple[str, int]] = [
    # A page of get_prefix can be large; etcd itself sends up to 2 GiB.
    ("grpc.max_receive_message_length", 2**31 - 1),
    # gRPC's default reconnect backoff grows to 2 minutes; an etcd member restart takes seconds.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    # Detect a dead or frozen member under a long-lived watch. etcd's default
    # --grpc-keepalive-min-time is 5 s: pinging more often gets the connection closed.
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.http2.max_pings_without_data", 0),
]

# Codes after which an idempotent request may be sent to another endpoint.
_RETRYABLE = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNKNOWN}
)
# gRPC's wording when the call failed to pick a connection: it never left the client.
_NOT_SENT_MARKER = "failed to connect to all addresses"


# --------------------------------------------------------------------------------------- errors


class EtcdUnavailable(Unavailable):
    """No etcd endpoint answered (a read timed out everywhere, or nothing could be connected).

    For a write this means the request was certainly not sent: retrying it is safe.
    """


class WriteOutcomeUnknown(Unavailable):
    """A write failed after it may have reached etcd: it may or may not have been applied.

    Never retried automatically. Re-read the keys involved (or rely on a guard) before deciding.
    """


class Compacted(ShoalError):
    """A watch (or a read at a pinned revision) asked for history etcd has already compacted.

    Rebuild state from a fresh `get_prefix` and watch again from its revision + 1; never skip.
    """

    def __init__(self, compact_revision: int, message: str = "") -> None:
        super().__init__(
            message
            or f"etcd history before revision {compact_revision} was compacted: "
            "re-list the keys and watch again from the new revision + 1"
        )
        self.compact_revision = compact_revision


class TooManyOps(InvalidArgument):
    """A transaction had more operations than etcd's --max-txn-ops allows."""


class RequestTooLarge(InvalidArgument):
    """A request exceeded etcd's --max-request-bytes (1.5 MiB by default)."""


class QuotaExceeded(ResourceExhausted):
    """etcd's backend reached its quota (--quota-backend-bytes) and is read-only until fixed."""


class LeaseNotFound(NotFound):
    """The lease does not exist (it expired or was revoked)."""


# ----------------------------------------------------------------------------------- data types


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int

    @classmethod
    def _from_pb(cls, kv: kv_pb2.KeyValue) -> KeyValue:
        return cls(kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version, kv.lease)


@dataclass(frozen=True, slots=True)
class Event:
    """One watch event. For a delete, `kv.value == b""` and `kv.mod_revision` is the delete's revision."""

    type: Literal["put", "delete"]
    kv: KeyValue


_COMPARE_RESULTS = {
    "==": rpc_pb2.Compare.EQUAL,
    "!=": rpc_pb2.Compare.NOT_EQUAL,
    "<": rpc_pb2.Compare.LESS,
    ">": rpc_pb2.Compare.GREATER,
}


class Compare:
    """One condition of a transaction, e.g. `Compare.create_revision(key, "==", epoch)`.

    For a key that does not exist, etcd compares against version/create_revision/mod_revision 0.
    """

    __slots__ = ("_pb",)

    def __init__(self, pb: rpc_pb2.Compare) -> None:
        self._pb = pb

    def __repr__(self) -> str:
        return f"Compare({self._pb!s})".replace("\n", " ")

    @staticmethod
    def _make(key: bytes, op: str, target: int, **value: object) -> Compare:
        try:
            result = _COMPARE_RESULTS[op]
        except KeyError:
            raise InvalidArgument(f"compare operator {op!r} is not one of == != < >") from None
        return Compare(rpc_pb2.Compare(key=key, result=result, target=target, **value))  # type: ignore[arg-type]

    @staticmethod
    def version(key: bytes, op: str, n: int) -> Compare:
        return Compare._make(key, op, rpc_pb2.Compare.VERSION, version=n)

    @staticmethod
    def create_revision(key: bytes, op: str, n: int) -> Compare:
        return Compare._make(key, op, rpc_pb2.Compare.CREATE, create_revision=n)

    @staticmethod
    def mod_revision(key: bytes, op: str, n: int) -> Compare:
        return Compare._make(key, op, rpc_pb2.Compare.MOD, mod_revision=n)

    @staticmethod
    def value(key: bytes, op: str, v: bytes) -> Compare:
        return Compare._make(key, op, rpc_pb2.Compare.VALUE, value=v)

    @staticmethod
    def lease(key: bytes, op: str, lease_id: int) -> Compare:
        return Compare._make(key, op, rpc_pb2.Compare.LEASE, lease=lease_id)


class Op:
    """One operation of a transaction branch: put, delete (key or prefix) or get (key or prefix)."""

    __slots__ = ("_pb", "kind", "key", "range_end")

    def __init__(self, pb: rpc_pb2.RequestOp, kind: str, key: bytes, range_end: bytes) -> None:
        self._pb = pb
        self.kind = kind
        self.key = key
        self.range_end = range_end  # b"" for a single key

    def __repr__(self) -> str:
        end = f", range_end={self.range_end!r}" if self.range_end else ""
        return f"Op.{self.kind}({self.key!r}{end})"

    @staticmethod
    def put(key: bytes, value: bytes, *, lease: int = 0) -> Op:
        pb = rpc_pb2.RequestOp()
        put = pb.request_put  # filled in place: no PutRequest built and then copied
        put.key = key
        put.value = value
        if lease:
            put.lease = lease
        return Op(pb, "put", key, b"")

    @staticmethod
    def delete(key: bytes, *, prefix: bool = False) -> Op:
        key, end = _key_range(key, prefix)
        pb = rpc_pb2.RequestOp(request_delete_range=rpc_pb2.DeleteRangeRequest(key=key, range_end=end))
        return Op(pb, "delete", key, end)

    @staticmethod
    def get(key: bytes, *, prefix: bool = False) -> Op:
        key, end = _key_range(key, prefix)
        pb = rpc_pb2.RequestOp(request_range=rpc_pb2.RangeRequest(key=key, range_end=end))
        return Op(pb, "get", key, end)

    def _writes(self, key: bytes) -> bool:
        """Whether this put/delete touches `key` (etcd rejects a txn whose puts overlap)."""
        if self.kind == "get":
            return False
        if not self.range_end:
            return key == self.key
        return self.key <= key and (self.range_end == b"\0" or key < self.range_end)


@dataclass
class TxnResult:
    succeeded: bool
    revision: int
    #: One entry per op of the branch taken: the kvs for a get, None for a put or delete.
    responses: list[list[KeyValue] | None]


@dataclass(frozen=True)
class EtcdTls:
    """TLS towards etcd, with a client certificate when etcd requires one (--client-cert-auth)."""

    ca_file: str
    """PEM bundle of the CA(s) that signed etcd's server certificates."""
    cert_file: str | None = None
    """PEM client certificate; needs key_file."""
    key_file: str | None = None
    """PEM private key of cert_file."""
    server_name: str | None = None
    """Name to verify in the server certificate instead of the endpoint's host (e.g. when
    endpoints are IP addresses but the certificate names a DNS name)."""


def _key_range(key: bytes, prefix: bool) -> tuple[bytes, bytes]:
    """(key, range_end) for one key or for every key starting with `key`."""
    if not prefix:
        return key, b""
    if not key:
        return b"\0", b"\0"  # etcd's spelling of "every key"
    end = bytearray(key)
    for i in range(len(end) - 1, -1, -1):
        if end[i] < 0xFF:
            end[i] += 1
            return key, bytes(end[: i + 1])
    return key, b"\0"  # key is all 0xff bytes: everything from it up


_T = TypeVar("_T")


class _Endpoint:
    """One etcd member: its channel and stubs."""

    def __init__(self, address: str, tls: EtcdTls | None) -> None:
        self.address = address
        options = list(_CHANNEL_OPTIONS)
        if tls is None:
            self.channel = grpc.aio.insecure_channel(address, options=options)
        else:
            if tls.server_name:
                options.append(("grpc.ssl_target_name_override", tls.server_name))  # type: ignore[arg-type]
            self.channel = grpc.aio.secure_channel(address, _credentials(tls), options=options)
        self.kv = rpc_pb2_grpc.KVStub(self.channel)
        self.lease = rpc_pb2_grpc.LeaseStub(self.channel)
        self.watch = rpc_pb2_grpc.WatchStub(self.channel)
        self.maintenance = rpc_pb2_grpc.MaintenanceStub(self.channel)

    def ready(self) -> bool:
        return self.channel.get_state(try_to_connect=True) == grpc.ChannelConnectivity.READY


def _credentials(tls: EtcdTls) -> grpc.ChannelCredentials:
    if (tls.cert_file is None) != (tls.key_file is None):
        raise InvalidArgument("etcd TLS: cert_file and key_file must be given together")

    def read(path: str | None) -> bytes | None:
        if path is None:
            return None
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError as e:
            raise InvalidArgument(f"etcd TLS: cannot read {path}: {e.strerror}") from e

    return grpc.ssl_channel_credentials(
        root_certificates=read(tls.ca_file),
        private_key=read(tls.key_file),
        certificate_chain=read(tls.cert_file),
    )


# ----------------------------------------------------------------------------------- the client


class EtcdClient:
    """An etcd v3 client for several endpoints ("host:port"), optionally over TLS.

    `timeout` bounds every RPC (and, separately, the wait for a connected endpoint).
    `max_txn_ops` must not exceed etcd's --max-txn-ops (128 by default); `txn_batches` splits on it.
    """

    #: How long a disconnected current endpoint gets before the others are tried too.
    STICKY_GRACE = 0.5

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        timeout: float = 5.0,
        tls: EtcdTls | None = None,
        max_txn_ops: int = 128,
    ) -> None:
        if isinstance(endpoints, str):
            raise InvalidArgument("etcd endpoints must be a sequence of 'host:port' strings, not one string")
        if not endpoints:
            raise InvalidArgument("at least one etcd endpoint ('host:port') is required")
        for ep in endpoints:
            if "://" in ep or ":" not in ep:
                raise InvalidArgument(f"etcd endpoint {ep!r} must be 'host:port' (no scheme)")
        if timeout <= 0:
            raise InvalidArgument("etcd timeout must be positive")
        if max_txn_ops < 1:
            raise InvalidArgument("max_txn_ops must be at least 1")
        if tls is not None:
            _credentials(tls)  # fail now, with the file name, rather than at the first call
        self.endpoints: tuple[str, ...] = tuple(endpoints)
        self.timeout = timeout
        self.tls = tls
        self.max_txn_ops = max_txn_ops
        self._eps: list[_Endpoint] | None = None
        self._current = 0

    # -------------------------------------------------------------------- lifecycle

    async def connect(self) -> None:
        """Connect now (otherwise the first call does); raises EtcdUnavailable if nothing answers."""
        await self._pick(asyncio.get_running_loop().time() + self.timeout, set())

    async def close(self) -> None:
        eps, self._eps = self._eps, None
        for ep in eps or ():
            await ep.channel.close()

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def current_endpoint(self) -> str:
        """The endpoint calls go to now (sticky until it fails)."""
        return self.endpoints[self._current]

    # -------------------------------------------------------------------- reads

    async def get(self, key: bytes) -> KeyValue | None:
        resp = await self._read(
            "get",
            lambda ep, t: ep.kv.Range(rpc_pb2.RangeRequest(key=key), timeout=t, metadata=_REQUIRE_LEADER),
        )
        return KeyValue._from_pb(resp.kvs[0]) if resp.kvs else None

    async def get_prefix(
        self, prefix: bytes, *, revision: int = 0, page_size: int = 5000
    ) -> tuple[list[KeyValue], int]:
        """Every key under `prefix` at ONE revision, sorted by key, and that revision.

        Pages of `page_size` keys; every page after the first is pinned to the first page's
        revision, so the result is a consistent snapshot (the leader's base for its watch).
        When the revision was chosen here (revision=0) and is compacted while paging, the read
        starts over at the current revision; a caller-pinned revision raises Compacted instead.
        """
        if page_size < 1:
            raise InvalidArgument("page_size must be at least 1")
        for _ in range(5):
            try:
                return await self._get_prefix_at(prefix, revision, page_size)
            except Compacted:
                if revision:
                    raise
        raise EtcdUnavailable(
            f"etcd compacted 5 times while reading {prefix!r}; compaction is too aggressive"
        )

    async def get_range(
        self, start: bytes, end: bytes, *, limit: int = 0, keys_only: bool = False
    ) -> list[KeyValue]:
        """Keys in [start, end), sorted, at most `limit` (0 = all; paged internally)."""
        out: list[KeyValue] = []
        key = start
        while True:
            page = 1000 if not limit else min(1000, limit - len(out))
            req = rpc_pb2.RangeRequest(key=key, range_end=end, limit=page, keys_only=keys_only)
            resp = await self._read(
                "get_range", lambda ep, t, req=req: ep.kv.Range(req, timeout=t, metadata=_REQUIRE_LEADER)
            )
            out.extend(KeyValue._from_pb(kv) for kv in resp.kvs)
            if not resp.more or not resp.kvs or (limit and len(out) >= limit):
                return out
            key = resp.kvs[-1].key + b"\0"

    async def get_many(self, keys: Sequence[bytes]) -> list[KeyValue | None]:
        """Several single keys in one read-only transaction per max_txn_ops keys."""
        out: list[KeyValue | None] = []
        for start in range(0, len(keys), self.max_txn_ops):
            chunk = keys[start : start + self.max_txn_ops]
            result = await self.txn([], [Op.get(k) for k in chunk])
            out.extend((r[0] if r else None) for r in result.responses)
        return out

    async def _get_prefix_at(
        self, prefix: bytes, revision: int, page_size: int
    ) -> tuple[list[KeyValue], int]:
        key, end = _key_range(prefix, True)
        out: list[KeyValue] = []
        while True:
            req = rpc_pb2.RangeRequest(key=key, range_end=end, limit=page_size, revision=revision)
            resp = await self._read(
                "get_prefix", lambda ep, t, req=req: ep.kv.Range(req, timeout=t, metadata=_REQUIRE_LEADER)
            )
            if not revision:
                revision = resp.header.revision
            out.extend(KeyValue._from_pb(kv) for kv in resp.kvs)
            if not resp.more or not resp.kvs:
                return out, revision
            key = resp.kvs[-1].key + b"\0"

    async def revision(self) -> int:
        """The store's current revision: a linearizable one-key count, cheap enough for health checks."""
        req = rpc_pb2.RangeRequest(key=b"\0", count_only=True)
        resp = await self._read(
            "revision", lambda ep, t: ep.kv.Range(req, timeout=t, metadata=_REQUIRE_LEADER)
        )
        return resp.header.revision

    # -------------------------------------------------------------------- writes

    async def put(self, key: bytes, value: bytes, *, lease: int = 0) -> int:
        """Write one key; returns the revision of the write."""
        req = rpc_pb2.PutRequest(key=key, value=value, lease=lease)
        resp = await self._write("put", lambda ep, t: ep.kv.Put(req, timeout=t, metadata=_REQUIRE_LEADER))
        return resp.header.revision

    async def delete(self, key: bytes, *, prefix: bool = False) -> int:
        """Delete one key (or every key under a prefix); returns how many were deleted."""
        key, end = _key_range(key, prefix)
        req = rpc_pb2.DeleteRangeRequest(key=key, range_end=end)
        resp = await self._write(
            "delete", lambda ep, t: ep.kv.DeleteRange(req, timeout=t, metadata=_REQUIRE_LEADER)
        )
        return resp.deleted

    async def txn(
        self, compare: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op] = ()
    ) -> TxnResult:
        """One atomic transaction: if every compare holds, run `success`, else `failure`.

        A transaction with no put/delete in either branch is a read and is retried on another
        endpoint like one; otherwise it is a write (see the module docstring).
        """
        n = max(len(compare), len(success), len(failure))
        if n > self.max_txn_ops:
            raise TooManyOps(
                f"transaction has {n} compares or ops in one branch, more than max_txn_ops={self.max_txn_ops}; "
                "use txn_batches() to split it"
            )
        req = rpc_pb2.TxnRequest(
            compare=[c._pb for c in compare],
            success=[o._pb for o in success],
            failure=[o._pb for o in failure],
        )
        if req.ByteSize() > MAX_REQUEST_BYTES:
            raise RequestTooLarge(
                f"transaction is {req.ByteSize()} bytes, over the {MAX_REQUEST_BYTES}-byte limit "
                "(etcd --max-request-bytes is 1.5 MiB by default); use txn_batches() or smaller values"
            )

        async def call(ep: _Endpoint, t: float) -> rpc_pb2.TxnResponse:
            return await ep.kv.Txn(req, timeout=t, metadata=_REQUIRE_LEADER)

        read_only = all(o.kind == "get" for o in (*success, *failure))
        resp = await (self._read("txn", call) if read_only else self._write("txn", call))
        responses: list[list[KeyValue] | None] = []
        for r in resp.responses:
            if r.WhichOneof("response") == "response_range":
                responses.append([KeyValue._from_pb(kv) for kv in r.response_range.kvs])
            else:
                responses.append(None)
        return TxnResult(resp.succeeded, resp.header.revision, responses)

    async def txn_batches(self, guard: Sequence[Compare], ops: Sequence[Op]) -> int:
        """Write `ops` in as few guarded transactions as etcd's limits allow; returns the last revision.

        Chunks are cut at `max_txn_ops` ops, at ~1.4 MiB, and before an op that writes a key an
        earlier op of the same chunk writes (etcd rejects overlapping puts in one txn). They are
        sent one after the other, each as `txn(guard, chunk)`. If a chunk's guard fails, FencedOut
        is raised and the earlier chunks stay applied: callers make every op self-contained. With
        no ops, the guard alone is checked once.
        """
        if len(guard) > self.max_txn_ops:
            raise TooManyOps(f"guard has {len(guard)} compares, more than max_txn_ops={self.max_txn_ops}")
        chunks = self._chunks(guard, ops)
        revision = 0
        for i, chunk in enumerate(chunks):
            try:
                result = await self.txn(guard, chunk)
            except WriteOutcomeUnknown as e:
                raise WriteOutcomeUnknown(
                    f"batch chunk {i + 1} of {len(chunks)} ({len(chunk)} ops): {e.message}; "
                    f"chunks 1..{i} were applied, later ones were not sent"
                ) from e
            if not result.succeeded:
                applied = sum(len(c) for c in chunks[:i])
                raise FencedOut(
                    f"guard failed at batch chunk {i + 1} of {len(chunks)}: {applied} of {len(ops)} ops "
                    f"were applied before it, none after ({self._describe_guard(guard)})"
                )
            revision = result.revision
        return revision

    @staticmethod
    def _describe_guard(guard: Sequence[Compare]) -> str:
        keys = sorted({c._pb.key for c in guard})
        return "guard on " + ", ".join(repr(k) for k in keys) if keys else "empty guard"

    def _chunks(self, guard: Sequence[Compare], ops: Sequence[Op]) -> list[list[Op]]:
        base = sum(c._pb.ByteSize() + 8 for c in guard) + 16
        chunks: list[list[Op]] = []
        chunk: list[Op] = []
        size = base
        # What the current chunk writes, for an O(1) overlap check (etcd refuses a txn that
        # writes one key twice, or puts a key a delete in it also covers).
        put_keys: set[bytes] = set()
        deleted_keys: set[bytes] = set()
        range_deletes: list[Op] = []

        def overlaps(op: Op) -> bool:
            if op.kind == "put":
                return op.key in put_keys or op.key in deleted_keys or any(d._writes(op.key) for d in range_deletes)
            if op.kind == "delete":
                return op.key in put_keys if not op.range_end else any(op._writes(k) for k in put_keys)
            return False

        for op in ops:
            op_size = op._pb.ByteSize() + 8  # field tag + length prefix, generously
            if base + op_size > MAX_REQUEST_BYTES:
                raise RequestTooLarge(
                    f"{op!r} alone is {op_size} bytes, over the {MAX_REQUEST_BYTES}-byte request limit: "
                    "store large data outside etcd"
                )
            if chunk and (len(chunk) >= self.max_txn_ops or size + op_size > MAX_REQUEST_BYTES or overlaps(op)):
                chunks.append(chunk)
                chunk, size = [], base
                put_keys, deleted_keys, range_deletes = set(), set(), []
            chunk.append(op)
            size += op_size
            if op.kind == "put":
                put_keys.add(op.key)
            elif op.kind == "delete":
                if op.range_end:
                    range_deletes.append(op)
                else:
                    deleted_keys.add(op.key)
        if chunk or not chunks:
            chunks.append(chunk)
        return chunks

    # -------------------------------------------------------------------- leases

    async def lease_grant(self, ttl: int) -> tuple[int, int]:
        """A new lease; returns (lease id, TTL etcd granted, which may be longer than asked)."""
        req = rpc_pb2.LeaseGrantRequest(TTL=ttl)
        resp = await self._write(
            "lease_grant", lambda ep, t: ep.lease.LeaseGrant(req, timeout=t, metadata=_REQUIRE_LEADER)
        )
        if resp.error:
            raise InvalidArgument(f"etcd refused a lease of {ttl}s: {resp.error}")
        return resp.ID, resp.TTL

    async def lease_revoke(self, lease_id: int) -> None:
        """Revoke a lease (deleting its keys). Idempotent: an unknown lease is already gone.

        Retried on another endpoint like a read: revoking twice has the effect of revoking once.
        """
        req = rpc_pb2.LeaseRevokeRequest(ID=lease_id)
        try:
            await self._read(
                "lease_revoke", lambda ep, t: ep.lease.LeaseRevoke(req, timeout=t, metadata=_REQUIRE_LEADER)
            )
        except LeaseNotFound:
            pass

    async def lease_keepalive(self, lease_id: int, *, attempt_timeout: float | None = None) -> int:
        """One keepalive round trip; returns the remaining TTL (0 = the lease no longer exists).

        `attempt_timeout` (default: the client's timeout) bounds each attempt, so an election can keep its
        attempts shorter than the lease's TTL.
        """

        async def once(ep: _Endpoint, t: float) -> int:
            call = ep.lease.LeaseKeepAlive(timeout=t, metadata=_REQUIRE_LEADER)
            try:
                await call.write(rpc_pb2.LeaseKeepAliveRequest(ID=lease_id))
                resp = await call.read()
            finally:
                call.cancel()
            if resp is grpc.aio.EOF:
                raise EtcdUnavailable(f"etcd at {ep.address} closed the keepalive stream without answering")
            return max(0, int(resp.TTL))  # type: ignore[union-attr]

        return await self._read("lease_keepalive", once, attempt_timeout=attempt_timeout)

    # -------------------------------------------------------------------- maintenance

    async def compact(self, revision: int) -> None:
        """Drop history before `revision`. Compacting at or below an earlier compaction is a no-op."""
        req = rpc_pb2.CompactionRequest(revision=revision)
        try:
            await self._read("compact", lambda ep, t: ep.kv.Compact(req, timeout=t, metadata=_REQUIRE_LEADER))
        except Compacted:
            pass

    # -------------------------------------------------------------------- watch

    async def watch(
        self, key: bytes, *, prefix: bool = False, start_revision: int
    ) -> AsyncIterator[list[Event]]:
        """Yield the events on `key` (or under it) from `start_revision` on, one list per etcd response.

        If the stream breaks, the watch is re-created (on another endpoint if need be) from the
        last delivered event's mod_revision + 1: an event is never skipped nor repeated (etcd
        never splits one revision across responses). start_revision=0 means "after the current
        revision", pinned when etcd acknowledges the watch. Raises Compacted when the history
        needed was compacted, EtcdUnavailable when no endpoint accepts the watch for `timeout`.
        Close it with aclose() or by cancelling the iterating task; the stream is cancelled.
        """
        if start_revision < 0:
            raise InvalidArgument("start_revision must be >= 0")
        key, end = _key_range(key, prefix)
        next_rev = start_revision
        loop = asyncio.get_running_loop()
        broken_since: float | None = None
        backoff = 0.05
        errors: list[str] = []
        while True:
            now = loop.time()
            if broken_since is not None and now - broken_since > self.timeout:
                raise EtcdUnavailable(
                    f"cannot resume the watch on {key!r} from revision {next_rev} for {self.timeout:.1f}s; "
                    f"endpoints {', '.join(self.endpoints)}: {'; '.join(errors[-3:])}"
                )
            index = await self._pick(now + self.timeout, set())
            ep = self._endpoints[index]
            create = rpc_pb2.WatchCreateRequest(key=key, range_end=end, start_revision=next_rev)
            call = ep.watch.Watch(metadata=_REQUIRE_LEADER)
            try:
                await call.write(rpc_pb2.WatchRequest(create_request=create))
                created = False
                while True:
                    if created:
                        resp = await call.read()
                    else:
                        resp = await asyncio.wait_for(call.read(), self.timeout)
                    if resp is grpc.aio.EOF:
                        raise EtcdUnavailable(f"etcd at {ep.address} ended the watch stream")
                    if resp.compact_revision:
                        raise Compacted(resp.compact_revision)
                    if resp.canceled:
                        raise _watch_canceled(ep.address, resp.cancel_reason)
                    if resp.created:
                        created, broken_since, backoff = True, None, 0.05
                        if next_rev == 0:
                            next_rev = resp.header.revision + 1
                    if resp.events:
                        events = [
                            Event(
                                "delete" if ev.type == kv_pb2.Event.DELETE else "put",
                                KeyValue._from_pb(ev.kv),
                            )
                            for ev in resp.events
                        ]
                        next_rev = events[-1].kv.mod_revision + 1
                        yield events
            except (grpc.aio.AioRpcError, EtcdUnavailable, TimeoutError) as e:
                if isinstance(e, grpc.aio.AioRpcError) and e.code() not in _RETRYABLE:
                    raise _map_error(e, ep.address, "watch") from e
                reason = _describe(e)
                errors.append(f"{ep.address}: {reason}")
                _log.info("etcd watch broken, resuming", endpoint=ep.address, revision=next_rev, error=reason)
                self._failed(index)
                if broken_since is None:
                    broken_since = loop.time()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
            finally:
                call.cancel()

    # -------------------------------------------------------------------- plumbing

    @property
    def _endpoints(self) -> list[_Endpoint]:
        if self._eps is None:
            self._eps = [_Endpoint(address, self.tls) for address in self.endpoints]
        return self._eps

    def _failed(self, index: int) -> None:
        """Move off a failed endpoint: the next call prefers the one after it."""
        if self._current == index and len(self.endpoints) > 1:
            self._current = (index + 1) % len(self.endpoints)

    async def _pick(self, deadline: float, exclude: set[int]) -> int:
        """Index of a READY endpoint not in `exclude`: the current one if it connects, else the first to."""
        eps = self._endpoints
        order = [i for k in range(len(eps)) if (i := (self._current + k) % len(eps)) not in exclude]
        if not order:
            raise EtcdUnavailable("no etcd endpoint left to try")
        loop = asyncio.get_running_loop()
        first = order[0]
        if eps[first].ready():
            self._current = first
            return first
        # Give the current endpoint a short grace (it may just be reconnecting) before waking the others.
        grace_end = min(deadline, loop.time() + self.STICKY_GRACE)
        candidates = [first]
        while True:
            for i in order:
                if i in candidates and eps[i].ready():
                    self._current = i
                    return i
            now = loop.time()
            if now >= deadline:
                raise EtcdUnavailable(
                    f"cannot connect to any etcd endpoint within {self.timeout:.1f}s "
                    f"(tried {', '.join(eps[i].address for i in order)})"
                )
            if now >= grace_end and len(candidates) < len(order):
                candidates = order
                continue
            waits = [
                asyncio.ensure_future(eps[i].channel.wait_for_state_change(eps[i].channel.get_state()))
                for i in candidates
            ]
            try:
                limit = (grace_end if len(candidates) < len(order) else deadline) - now
                await asyncio.wait(
                    waits, timeout=max(0.0, min(limit, 0.25)), return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                for w in waits:
                    w.cancel()

    async def _read(
        self,
        what: str,
        call: Callable[[_Endpoint, float], Awaitable[_T]],
        *,
        attempt_timeout: float | None = None,
    ) -> _T:
        """Run an idempotent call, moving to the next endpoint after UNAVAILABLE or a deadline."""
        timeout = attempt_timeout or self.timeout
        loop = asyncio.get_running_loop()
        tried: set[int] = set()
        errors: list[str] = []
        while len(tried) < len(self.endpoints):
            try:
                index = await self._pick(loop.time() + timeout, tried)
            except EtcdUnavailable as e:
                errors.append(e.message)
                break
            ep = self._endpoints[index]
            tried.add(index)
            try:
                with REQUEST_SECONDS.labels(what).time():
                    return await call(ep, timeout)
            except grpc.aio.AioRpcError as e:
                if e.code() not in _RETRYABLE:
                    raise _map_error(e, ep.address, what) from e
                errors.append(f"{ep.address}: {_describe(e)}")
            except EtcdUnavailable as e:
                errors.append(e.message)
            self._failed(index)
        raise EtcdUnavailable(f"etcd {what} failed on every endpoint: {'; '.join(errors)}")

    async def _write(self, what: str, call: Callable[[_Endpoint, float], Awaitable[_T]]) -> _T:
        """Run a non-idempotent call once on a connected endpoint; never resend it after it left."""
        loop = asyncio.get_running_loop()
        tried: set[int] = set()
        errors: list[str] = []
        while len(tried) < len(self.endpoints):
            try:
                index = await self._pick(loop.time() + self.timeout, tried)
            except EtcdUnavailable as e:
                errors.append(e.message)
                break
            ep = self._endpoints[index]
            tried.add(index)
            try:
                with REQUEST_SECONDS.labels(what).time():
                    return await call(ep, self.timeout)
            except grpc.aio.AioRpcError as e:
                if e.code() == grpc.StatusCode.UNAVAILABLE and _NOT_SENT_MARKER in (e.details() or ""):
                    errors.append(f"{ep.address}: {_describe(e)}")  # never left this process: next endpoint
                    self._failed(index)
                    continue
                if e.code() in _RETRYABLE or e.code() in (
                    grpc.StatusCode.CANCELLED,
                    grpc.StatusCode.INTERNAL,
                ):
                    self._failed(index)
                    raise WriteOutcomeUnknown(
                        f"etcd {what} on {ep.address} failed after it was sent ({_describe(e)}): it may or may "
                        "not have been applied; not retried, re-read before deciding"
                    ) from e
                raise _map_error(e, ep.address, what) from e
        raise EtcdUnavailable(f"etcd {what} was not sent, no endpoint could take it: {'; '.join(errors)}")


def _describe(e: BaseException) -> str:
    if isinstance(e, grpc.aio.AioRpcError):
        return f"{e.code().name}: {e.details()}"
    if isinstance(e, TimeoutError):
        return "timed out"
    return str(e)


def _watch_canceled(address: str, reason: str) -> ShoalError:
    if "no leader" in reason:
        return EtcdUnavailable(f"etcd at {address} canceled the watch: {reason}")
    if "permission denied" in reason:
        return PermissionDenied(f"etcd at {address} refused the watch: {reason}")
    return InvalidArgument(f"etcd at {address} canceled the watch: {reason}")


def _map_error(e: grpc.aio.AioRpcError, address: str, what: str) -> ShoalError:
    """An etcd rejection as a shoal error whose message says what to do."""
    code, details = e.code(), e.details() or ""
    where = f"etcd {what} on {address}"
    if "too many operations in txn" in details:
        return TooManyOps(f"{where}: {details}: lower max_txn_ops to etcd's --max-txn-ops")
    if "request is too large" in details or (
        code == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in details
    ):
        return RequestTooLarge(f"{where}: {details}: split the write (txn_batches) or store less per key")
    if "database space exceeded" in details:
        return QuotaExceeded(
            f"{where}: {details}: etcd is over its backend quota; compact, defragment and disarm the alarm"
        )
    if "lease not found" in details:
        return LeaseNotFound(f"{where}: {details}")
    if "has been compacted" in details:
        return Compacted(0, f"{where}: {details}: re-read at the current revision")
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return Unauthenticated(f"{where}: {details}: check etcd credentials")
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return PermissionDenied(f"{where}: {details}: check the etcd user's roles")
    if code in (
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.FAILED_PRECONDITION,
    ):
        return InvalidArgument(f"{where}: {details}")
    if code in _RETRYABLE:
        return EtcdUnavailable(f"{where}: {_describe(e)}")
    return ShoalError(f"{where}: unexpected {_describe(e)}")


__all__ = [
    "MAX_REQUEST_BYTES",
    "REQUEST_SECONDS",
    "Compacted",
    "Compare",
    "EtcdClient",
    "EtcdTls",
    "EtcdUnavailable",
    "Event",
    "KeyValue",
    "LeaseNotFound",
    "Op",
    "QuotaExceeded",
    "RequestTooLarge",
    "TooManyOps",
    "TxnResult",
    "WriteOutcomeUnknown",
]
