"""The CLI's HTTP client (shoal/cli/wire.py) against canned HTTP answers: error mapping, streams,
what counts as "not a shoal edge", and the failover rules for reads and writes."""

from __future__ import annotations

import socket

import pytest

from shoal import errors
from shoal.cli import wire
from tests.unit.cli.canned import http

pytestmark = pytest.mark.unit


def test_a_call_posts_json_and_returns_the_answer(canned) -> None:  # noqa: ANN001
    server = canned(lambda body: http("200 OK", b'{"jobId": "j", "jobName": "n"}'))
    api = wire.HttpApi([server.url], token="s3cret-token-123456")
    assert api.call("SubmitJob", {"jobName": "n"}, idempotent=False) == {"jobId": "j", "jobName": "n"}
    (request,) = server.requests
    assert request.startswith(b"POST /shoal.v1.Batch/SubmitJob HTTP/1.1\r\n")
    assert b"Authorization: Bearer s3cret-token-123456\r\n" in request and request.endswith(b'{"jobName":"n"}')


@pytest.mark.parametrize(
    ("status", "body", "cls", "message"),
    [
        ("404 Not Found", b'{"code": "not_found", "message": "job x not found"}', errors.NotFound, "job x not found"),
        ("400 Bad Request", b'{"code": "invalid_argument", "message": "job_name: bad"}', errors.InvalidArgument, "job_name: bad"),
        ("401 Unauthorized", b'{"code": "unauthenticated", "message": "no token"}', errors.Unauthenticated, "no token"),
        ("500 Internal Server Error", b'{"code": "internal", "message": "boom"}', errors.ShoalError, "INTERNAL: boom"),
        ("500 Internal Server Error", b"<html>", errors.ShoalError, "HTTP 500 from the controller: <html>"),
    ],
)
def test_refusals_map_to_the_same_errors_as_grpc_statuses(canned, status: str, body: bytes, cls: type, message: str) -> None:  # noqa: ANN001
    server = canned(lambda _: http(status, body))
    with pytest.raises(cls) as info:
        wire.HttpApi([server.url]).call("DescribeJobs", {}, idempotent=True)
    assert type(info.value) is cls and info.value.message == message


def test_a_follower_s_leader_hint_is_kept(canned) -> None:  # noqa: ANN001
    body = b'{"code": "unavailable", "message": "not the leader", "leader": "10.0.0.2:50051"}'
    server = canned(lambda _: http("503 Service Unavailable", body))
    with pytest.raises(errors.NotLeader) as info:
        wire.HttpApi([server.url]).call("DrainNode", {}, idempotent=True)
    assert info.value.leader == "10.0.0.2:50051"


def test_an_answer_without_the_shoal_mark_is_not_an_edge(canned) -> None:  # noqa: ANN001
    server = canned(lambda _: http("404 Not Found", b"", shoal=False))
    with pytest.raises(wire.EdgeMissing) as info:
        wire.HttpApi([server.url]).call("SubmitJob", {}, idempotent=False)
    assert info.value.tried == [(server.url, "HTTP 404, not a shoal edge")]


def test_a_write_is_never_resent_after_the_connection_broke(canned) -> None:  # noqa: ANN001
    first = canned(lambda _: None)  # takes the request, closes without an answer
    second = canned(lambda _: http("200 OK", b'{"jobId": "j"}'))
    with pytest.raises(errors.Unavailable, match="may have been applied"):
        wire.HttpApi([first.url, second.url]).call("SubmitJob", {}, idempotent=False)
    assert len(first.requests) == 1 and second.requests == []
    # A read moves on.
    assert wire.HttpApi([first.url, second.url]).call("DescribeJobs", {}, idempotent=True) == {"jobId": "j"}


def test_a_refused_connection_moves_a_write_on(canned) -> None:  # noqa: ANN001
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_url = f"http://127.0.0.1:{dead.getsockname()[1]}"
    dead.close()  # nothing listens there now
    server = canned(lambda _: http("200 OK", b'{"jobId": "j"}'))
    assert wire.HttpApi([dead_url, server.url]).call("SubmitJob", {}, idempotent=False) == {"jobId": "j"}
    with pytest.raises(wire.EdgeMissing) as info:
        wire.HttpApi([dead_url]).call("SubmitJob", {}, idempotent=False)
    assert info.value.tried == [(dead_url, "connection refused")]


def _chunked(*pieces: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\nshoal-api: 1\r\n\r\n"
    return head + b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


def test_a_stream_yields_one_dict_per_line_across_chunks(canned) -> None:  # noqa: ANN001
    server = canned(lambda _: _chunked(b'{"job": {"jobId": "a"}}\n{"job": ', b'{"jobId": "b"}}\n', b'{"error": {"code": "not_found", "message": "gone"}}\n'))
    items = wire.HttpApi([server.url]).stream("WatchJobs", {}, timeout=10)
    assert next(items) == {"job": {"jobId": "a"}}
    assert next(items) == {"job": {"jobId": "b"}}
    with pytest.raises(errors.NotFound, match="gone"):
        next(items)


def test_a_stream_that_ends_is_unavailable(canned) -> None:  # noqa: ANN001
    server = canned(lambda _: _chunked(b'{"job": {"jobId": "a"}}\n'))
    items = wire.HttpApi([server.url]).stream("WatchJobs", {}, timeout=10)
    assert next(items) == {"job": {"jobId": "a"}}
    with pytest.raises(errors.Unavailable, match="closed the stream"):
        next(items)


@pytest.mark.parametrize(
    ("url", "parts"),
    [
        ("http://127.0.0.1:8000", (False, "127.0.0.1", 8000, "")),
        ("https://ctl1.example.org", (True, "ctl1.example.org", 443, "")),
        ("http://[::1]:8000/shoal/", (False, "::1", 8000, "/shoal")),
        ("http://host", (False, "host", 80, "")),
    ],
)
def test_split_url(url: str, parts: tuple[bool, str, int, str]) -> None:
    assert wire.split_url(url) == parts


def test_a_bad_port_is_an_invalid_address() -> None:
    with pytest.raises(errors.InvalidArgument, match="the port must be a number"):
        wire.split_url("http://host:eighty")


def test_the_cli_follows_a_leader_hint_from_the_edge_over_grpc(canned, fake, shoal) -> None:  # noqa: ANN001
    from shoal.v1 import batch_pb2

    body = b'{"code": "unavailable", "message": "not the leader", "leader": "%s"}' % fake.address.encode()
    edge = canned(lambda _: http("503 Service Unavailable", body))
    fake.on("SubmitJob", batch_pb2.SubmitJobResponse(job_id="at-the-leader", job_name="true"))
    result = shoal("submit", "--addr", edge.url, "--", "true")
    assert (result.code, result.out, result.err) == (0, "at-the-leader\n", "")
    (request,) = fake.calls("SubmitJob")
    assert request.job_name == "true" and len(edge.requests) == 1


def test_the_cli_uses_grpc_when_no_edge_answers(canned, fake, shoal) -> None:  # noqa: ANN001
    from shoal.v1 import batch_pb2

    not_shoal = canned(lambda _: http("404 Not Found", b"", shoal=False))
    fake.on("SubmitJob", batch_pb2.SubmitJobResponse(job_id="via-grpc", job_name="true"))
    result = shoal("submit", "--addr", f"{not_shoal.url},{fake.address}", "--", "true")
    assert (result.code, result.out) == (0, "via-grpc\n")
    result = shoal("submit", "--addr", not_shoal.url, "--", "true")
    assert (result.code, result.err) == (4, f"shoal: cannot reach a controller at {not_shoal.url} (HTTP 404, not a shoal edge)\n")
