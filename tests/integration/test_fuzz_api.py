"""Hostile input at every RPC of shoal.v1.Batch (hypothesis), against one real cluster.

Every call must either succeed (when the random input happens to be valid) or fail with a
client-error status and a message; never INTERNAL/UNKNOWN. After every refused call the store
(every key under the cluster's etcd prefix) must be exactly what it was before.

Requests are generated from the proto descriptors, so a new RPC or field is fuzzed without a
change here: strings mix valid names and ids with NUL, unicode, path tricks and huge values;
numbers hit the type's extremes, NaN and infinities; repeated fields are sometimes over every
limit; a share of requests are random bytes parsed as the request message.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import message as pb_message
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from controller.store.etcd import EtcdClient
from shoal.devcluster import EtcdServer, LocalCluster
from shoal.v1 import batch_pb2
from tests.integration.conftest import _dump_logs, make_cluster

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

SERVICE = batch_pb2.DESCRIPTOR.services_by_name["Batch"]
METHODS = sorted(SERVICE.methods_by_name)
ALLOWED = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
}
# Streams have no natural end (WatchJobs follows forever): a short deadline ends them.
STREAM_DEADLINE = 0.5
UNARY_DEADLINE = 15.0
MAX_DEPTH = 3

_ids = [str(uuid.UUID(int=i, version=4)) for i in (1, 2)]
_text = st.one_of(
    st.sampled_from(
        ["", "default", "fuzz", "a", "a" * 129, "\x00", "nul\x00byte", "ACTIVE", "INACTIVE", "fuzz:1", "fuzz:0",
         "default:99999999999999999999", "../../etc/passwd", "名前", "a\u202eb", "*", "-x", " default", "SHOAL_JOB_ID",
         "shoal:owner", "shoal:secret-env", *_ids, f"{_ids[0]}:3", f"{_ids[0]}:10000", "true", "echo"]
    ),  # fmt: skip
    st.text(max_size=24),
    st.text(min_size=2000, max_size=4000),
    st.uuids(version=4).map(str),
)
_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}


def _int(lo: int, hi: int) -> st.SearchStrategy[int]:
    edges = sorted({v for v in (lo, hi, 0, 1, 2, -1, 3, 5, 10, 11, 100, 1000, 1001, 10000, 10001) if lo <= v <= hi})
    return st.one_of(st.sampled_from(edges), st.integers(lo, hi))


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[object]:
    t = field.type
    if t == FieldDescriptor.TYPE_STRING:
        return _text
    if t == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if t == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t == FieldDescriptor.TYPE_DOUBLE:
        return st.floats(allow_nan=True, allow_infinity=True)
    if t == FieldDescriptor.TYPE_FLOAT:
        return st.floats(allow_nan=True, allow_infinity=True, width=32)
    if t == FieldDescriptor.TYPE_ENUM:
        return st.one_of(st.sampled_from([v.number for v in field.enum_type.values]), _int(-(2**31), 2**31 - 1))
    return _int(*_INT_RANGES[t])


def messages(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[pb_message.Message]:
    """Messages of `descriptor`'s type with any subset of fields set to hostile values."""
    from google.protobuf import message_factory

    cls = message_factory.GetMessageClass(descriptor)
    if depth > MAX_DEPTH:
        return st.just(cls())
    fields: dict[str, st.SearchStrategy[object]] = {}
    for field in descriptor.fields:
        is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
        if is_map:
            value_field = field.message_type.fields_by_name["value"]
            value = (
                messages(value_field.message_type, depth + 1) if value_field.message_type else _scalar(value_field)
            )
            fields[field.name] = st.dictionaries(_text, value, max_size=3)
            continue
        element = messages(field.message_type, depth + 1) if field.message_type else _scalar(field)
        if field.is_repeated:
            few = st.lists(element, max_size=3)
            # Over every per-field limit (1000 jobs per call, 100 env vars, 20 deps, ...).
            many = element.map(lambda e: [e] * 1001) if depth == 0 else few
            fields[field.name] = st.one_of(few, few, few, many)
        else:
            fields[field.name] = element

    def build(values: dict[str, object]) -> pb_message.Message:
        msg = cls()
        for name, value in values.items():
            field = descriptor.fields_by_name[name]
            target = getattr(msg, name)
            is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
            try:
                if is_map:
                    for k, v in value.items():  # type: ignore[attr-defined]
                        if isinstance(v, pb_message.Message):
                            target[k].CopyFrom(v)
                        else:
                            target[k] = v
                elif field.is_repeated:
                    target.extend(value)  # type: ignore[arg-type]
                elif field.message_type is not None:
                    target.CopyFrom(value)  # type: ignore[arg-type]
                else:
                    setattr(msg, name, value)
            except (ValueError, TypeError):
                pass  # e.g. a float out of float32 range: leave the field unset
        return msg

    return st.fixed_dictionaries({}, optional=fields).map(build)


def requests(descriptor: Descriptor) -> st.SearchStrategy[pb_message.Message]:
    from google.protobuf import message_factory

    cls = message_factory.GetMessageClass(descriptor)

    def parse(raw: bytes) -> pb_message.Message:
        try:
            return cls.FromString(raw)
        except pb_message.DecodeError:
            return cls()

    return st.one_of(messages(descriptor), messages(descriptor), messages(descriptor), st.binary(max_size=256).map(parse))


# --- the cluster and its store ---------------------------------------------------------------------


class Store:
    """Every key and value under the cluster's prefix, read with shoal's own etcd client."""

    def __init__(self, endpoint: str, prefix: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.client = EtcdClient([endpoint], timeout=5)
        self.prefix = prefix.encode()

    def snapshot(self) -> dict[bytes, bytes]:
        kvs, _rev = self.loop.run_until_complete(self.client.get_prefix(self.prefix))
        return {kv.key: kv.value for kv in kvs}

    def close(self) -> None:
        self.loop.run_until_complete(self.client.close())
        self.loop.close()


@pytest.fixture(scope="module")
def fuzz_cluster(etcd_server: EtcdServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    # No agents: nothing but the fuzzed calls writes to the store while the tests run.
    cluster = make_cluster(
        etcd_server, f"/fuzz-{uuid.uuid4().hex[:8]}/", Path(tmp_path_factory.mktemp("fuzz")), agents=0
    )
    cluster.start()
    try:
        yield cluster
    finally:
        _dump_logs(cluster)
        cluster.stop()


@pytest.fixture(scope="module")
def store(fuzz_cluster: LocalCluster, etcd_server: EtcdServer) -> Iterator[Store]:
    s = Store(etcd_server.endpoint, fuzz_cluster.prefix)
    yield s
    s.close()


@pytest.fixture(scope="module")
def channel(fuzz_cluster: LocalCluster) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(fuzz_cluster.address, options=[("grpc.max_send_message_length", 64 << 20)]) as ch:
        yield ch


def _call(channel: grpc.Channel, method: str, request: pb_message.Message) -> grpc.StatusCode | None:
    """None when the call succeeded, else its status code (asserting the error is clean)."""
    m = SERVICE.methods_by_name[method]
    path = f"/{SERVICE.full_name}/{method}"
    serialize = type(request).SerializeToString
    try:
        if m.server_streaming:
            call = channel.unary_stream(path, request_serializer=serialize, response_deserializer=bytes)
            stream = call(request, timeout=STREAM_DEADLINE)
            try:
                for _ in stream:
                    pass
            finally:
                stream.cancel()
        else:
            call = channel.unary_unary(path, request_serializer=serialize, response_deserializer=bytes)
            call(request, timeout=UNARY_DEADLINE)
    except grpc.RpcError as err:
        code, details = err.code(), err.details()  # type: ignore[attr-defined]
        if m.server_streaming and code in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
            return None  # the stream was open and healthy until our deadline
        assert code in ALLOWED, f"{method} -> {code.name}: {details}\nrequest: {request!r:.2000}"
        assert details and details.strip(), f"{method} -> {code.name} without a message"
        return code
    return None


@pytest.mark.parametrize("method", METHODS)
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=False)
@given(data=st.data())
def test_hostile_requests(method: str, data: st.DataObject, channel: grpc.Channel, store: Store) -> None:
    descriptor = SERVICE.methods_by_name[method].input_type
    request = data.draw(requests(descriptor), label="request")
    before = store.snapshot()
    code = _call(channel, method, request)
    event(code.name if code is not None else "OK")
    if code is not None:
        after = store.snapshot()
        changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        assert not changed, f"{method} refused ({code.name}) but changed {changed[:5]}"


def test_oversized_message_is_refused(channel: grpc.Channel, store: Store) -> None:
    before = store.snapshot()
    request = batch_pb2.SubmitJobRequest(job_name="huge", container_overrides={"command": ["x" * (17 << 20)]})
    assert _call(channel, "SubmitJob", request) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert store.snapshot() == before
