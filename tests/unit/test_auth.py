"""Token files, the role table, the rate limiter, secret redaction."""

from __future__ import annotations

import hashlib

import pytest

from controller.api import auth
from controller.api.limits import RateLimiter
from controller.domain import validation as V
from shoal import errors, jobdef
from shoal.v1 import batch_pb2, types_pb2

pytestmark = pytest.mark.unit

CI_DIGEST = hashlib.sha256(b"ci-token-0123456789").hexdigest()
GOOD = f"""
- {{name: root, token: 0123456789abcdef-root, role: admin}}
- {{name: ci, token_sha256: {CI_DIGEST}, role: submitter}}
- {{name: grafana, token: 0123456789abcdef-read, role: reader}}
"""


def test_token_file() -> None:
    table = auth.TokenTable.parse(GOOD)
    assert len(table) == 3
    assert table.lookup("0123456789abcdef-root") == auth.Principal("root", "admin")
    assert table.lookup("ci-token-0123456789") == auth.Principal("ci", "submitter")
    assert table.lookup("nope") is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "non-empty list"),
        ("- {name: a, token: short, role: admin}", "at least 16"),
        ("- {name: a, token: 0123456789abcdefX, role: god}", "role"),
        ("- {name: a, role: admin}", "exactly one"),
        ("- {name: a, token: 0123456789abcdefX, token_sha256: ab, role: admin}", "exactly one"),
        ("- {name: a, token_sha256: xyz, role: admin}", "64 hex"),
        ("- {name: a, token: 0123456789abcdefX, role: admin}\n- {name: a, token: 0123456789abcdefY, role: admin}", "twice"),
        ("- {name: a, token: 0123456789abcdefX, role: admin}\n- {name: b, token: 0123456789abcdefX, role: admin}", "same token"),
        ("- {name: a, token: 0123456789abcdefX, role: admin, extra: 1}", "unknown key"),
        ("- [not, a, mapping]", "mapping"),
        ("{: bad", "YAML"),
    ],
)
def test_token_file_refusals(text: str, problem: str) -> None:
    with pytest.raises(auth.TokenFileError, match=problem):
        auth.TokenTable.parse(text)


def test_role_table_covers_every_rpc() -> None:
    service = batch_pb2.DESCRIPTOR.services_by_name["Batch"]
    for method in service.methods:
        assert f"/shoal.v1.Batch/{method.name}" in auth.METHOD_ROLES, method.name
    assert auth.required_role("/shoal.v1.Batch/SomethingNew") == auth.ADMIN  # deny by default


@pytest.mark.parametrize(
    ("role", "method", "ok"),
    [
        ("reader", "DescribeJobs", True), ("reader", "GetJobLogs", True), ("reader", "SubmitJob", False),
        ("submitter", "SubmitJobs", True), ("submitter", "TerminateJob", True),
        ("submitter", "RegisterJobDefinition", True), ("submitter", "CreateJobQueue", False),
        ("submitter", "DrainNode", False), ("submitter", "DeregisterJobDefinition", False),
        ("admin", "DeleteComputeEnvironment", True), ("admin", "UndrainNode", True),
    ],
)  # fmt: skip
def test_roles(role: str, method: str, ok: bool) -> None:
    assert auth.allows(role, auth.required_role(f"/shoal.v1.Batch/{method}")) is ok


def test_rate_limiter() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=2, burst=3, clock=lambda: now[0])
    for _ in range(3):
        limiter.check("a")
    with pytest.raises(errors.ResourceExhausted, match=r"rate limit of 2 requests/s exceeded; retry after 0.500s"):
        limiter.check("a")
    limiter.check("b")  # keys are independent
    now[0] += 0.5
    limiter.check("a")
    RateLimiter(rate=0).check("x")  # off


def test_peer_ip() -> None:
    assert auth.peer_ip("ipv4:10.1.2.3:5555") == "10.1.2.3"
    assert auth.peer_ip("ipv6:[::1]:5555") == "::1"
    assert auth.peer_ip("ipv6:%5B::1%5D:5555") == "::1"


def test_reserved_tags_and_secrets() -> None:
    req = batch_pb2.SubmitJobRequest(job_name="a", container_overrides={"command": ["true"]})
    req.tags[V.OWNER_TAG] = "someone"
    with pytest.raises(errors.InvalidArgument, match="reserved"):
        V.validate_submit(req)
    req.tags.clear()
    req.tags[V.SECRET_ENV_TAG] = "A,B"
    V.validate_submit(req)
    assert jobdef.SECRET_ENV_TAG == V.SECRET_ENV_TAG

    job = types_pb2.Job(job_id="j")
    job.container.environment.add(name="A", value="secret")
    job.container.environment.add(name="C", value="plain")
    job.tags[V.SECRET_ENV_TAG] = "A"
    shown = auth.redact_job(job)
    assert [kv.value for kv in shown.container.environment] == ["****", "plain"]
    assert job.container.environment[0].value == "secret"  # the record itself is untouched


def test_jobdef_secret_key() -> None:
    request = jobdef.parse_text(
        "jobDefinitionName: d\ncontainerProperties:\n  command: [env]\n"
        "  environment: [{name: TOKEN, value: x, secret: true}, {name: B, value: y}]\n"
    )
    assert request.tags[jobdef.SECRET_ENV_TAG] == "TOKEN"
    with pytest.raises(jobdef.JobDefinitionFileError, match="true or false"):
        jobdef.parse_text("jobDefinitionName: d\ncontainerProperties:\n  command: [env]\n"
                          "  environment: [{name: T, value: x, secret: 'yes'}]\n")


@pytest.mark.parametrize(("value", "ok"), [("1", False), ("2", True), ("20000", True), ("100000", True), ("100001", False)])
def test_max_array_size_flag(value: str, ok: bool) -> None:
    from controller.main import build_parser

    ns = build_parser().parse_args(["--etcd", "127.0.0.1:2379", "--max-array-size", value])
    if ok:
        assert auth.edge_from_args(ns, "127.0.0.1:50051").max_array_size == int(value)
    else:
        with pytest.raises(SystemExit, match=r"shoal controller: --max-array-size must be 2\.\.100000"):
            auth.edge_from_args(ns, "127.0.0.1:50051")
