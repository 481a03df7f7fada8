"""The CLI's two ways to a real controller, HTTP edge and gRPC, give the same answers and errors;
`submit --from-file` submits every line or, for a bad line, nothing."""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.store.etcd import EtcdClient
from controller.store.keys import Keys
from shoal import Client
from shoal.devcluster import EtcdServer, LocalCluster, free_port
from shoal.v1 import types_pb2

from .conftest import _dump_logs, make_cluster
from .test_security import pki, token  # noqa: F401 - pki is a fixture

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SHOAL = [sys.executable, "-m", "shoal.cli"]


@pytest.fixture(scope="module")
def cluster(etcd_server: EtcdServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    import uuid

    made = make_cluster(
        etcd_server, f"/cli-{uuid.uuid4().hex[:8]}/", Path(tmp_path_factory.mktemp("clifast")), agents=1, http_port=0
    )
    made.start()
    try:
        yield made
    finally:
        _dump_logs(made)
        made.stop()


def run(addr: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SHOAL_ADDR": addr}
    return subprocess.run([*SHOAL, *args], capture_output=True, text=True, env=env, timeout=120, input=stdin)


def both(cluster: LocalCluster, *args: str) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    """The same command over the HTTP edge only (no gRPC address to fall back to) and over gRPC."""
    return run(cluster.http_url, *args), run(cluster.address, *args)


def outcome(proc: subprocess.CompletedProcess[str]) -> tuple[int, str, str]:
    return proc.returncode, proc.stdout, proc.stderr


def job_keys(cluster: LocalCluster) -> dict[bytes, bytes]:
    """Every submission and job record of the cluster in etcd."""

    async def read() -> dict[bytes, bytes]:
        keys = Keys(cluster.prefix)
        found: dict[bytes, bytes] = {}
        async with EtcdClient([cluster.etcd_endpoint]) as etcd:
            for kind in ("subs", "jobs"):
                kvs, _ = await etcd.get_prefix(keys.kind_prefix(kind))
                found.update({kv.key: kv.value for kv in kvs})
        return found

    return asyncio.run(read())


def test_both_paths_answer_alike(cluster: LocalCluster) -> None:
    via_http, via_grpc = both(cluster, "submit", "--output", "json", "--name", "same", "--", "sh", "-c", "exit 3")
    assert via_http.returncode == via_grpc.returncode == 0, (via_http.stderr, via_grpc.stderr)
    a, b = json.loads(via_http.stdout), json.loads(via_grpc.stdout)
    assert a["jobName"] == b["jobName"] == "same" and a["jobId"] != b["jobId"]

    # wait: same exit status (1: FAILED) and the same line, but for the id.
    wa, wb = run(cluster.http_url, "wait", a["jobId"]), run(cluster.address, "wait", b["jobId"])
    assert (wa.returncode, wb.returncode) == (1, 1)
    assert wa.stdout.replace(a["jobId"], "ID") == wb.stdout.replace(b["jobId"], "ID") == "ID FAILED (exit 3): Essential container in task exited\n"

    # The same jobs described and listed both ways: byte for byte the same.
    for args in (
        ("describe", a["jobId"], b["jobId"], "--output", "json"),
        ("wait", a["jobId"], b["jobId"], "--output", "json"),
        ("jobs", "list", "--name-prefix", "same", "--output", "json"),
        ("jobs", "list", "--status", "failed", "--quiet"),
    ):
        via_http, via_grpc = both(cluster, *args)
        assert outcome(via_http) == outcome(via_grpc), args
        assert via_http.returncode in (0, 1) and via_http.stdout, args
    described = json.loads(run(cluster.http_url, "describe", a["jobId"], "-o", "json").stdout)
    assert described["jobs"][0]["attempts"][0]["exitCode"] == 3


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("submit", "--name", "bad name", "--", "true"), 3),  # the server refuses: exit 3
        (("submit", "--queue", "no-such-queue", "--", "true"), 3),
        (("submit", "--vcpus", "4096", "--memory", "1", "--", "true"), 3),
        (("describe", "00000000-0000-4000-8000-000000000000"), 3),
        (("wait", "00000000-0000-4000-8000-000000000000"), 3),
        (("cancel", "00000000-0000-4000-8000-000000000000"), 3),
        (("terminate", "not-an-id"), 3),
        (("jobs", "list", "--queue", "bad queue!"), 3),
        (("jobs", "list", "--status", "done"), 2),  # a usage error: nothing sent
    ],
)
def test_both_paths_refuse_alike(cluster: LocalCluster, args: tuple[str, ...], code: int) -> None:
    via_http, via_grpc = both(cluster, *args)
    assert outcome(via_http) == outcome(via_grpc)
    assert via_http.returncode == code and via_http.stdout == ""
    assert via_http.stderr.startswith("shoal: ") and via_http.stderr.count("\n") == 1


def test_unreachable_is_exit_4_both_ways_and_http_falls_back_to_grpc(cluster: LocalCluster) -> None:
    dead = free_port()
    via_http, via_grpc = run(f"http://127.0.0.1:{dead}", "jobs", "list"), run(f"127.0.0.1:{dead}", "jobs", "list")
    assert (via_http.returncode, via_grpc.returncode) == (4, 4)
    assert via_http.stderr == f"shoal: cannot reach a controller at http://127.0.0.1:{dead} (connection refused)\n"
    assert via_grpc.stderr == f"shoal: cannot reach a controller at 127.0.0.1:{dead} (connection refused)\n"

    both_dead = run(f"http://127.0.0.1:{dead},127.0.0.1:{dead}", "submit", "--", "true")
    assert (both_dead.returncode, both_dead.stderr) == (4, (
        f"shoal: cannot reach a controller at http://127.0.0.1:{dead} (connection refused); "
        f"127.0.0.1:{dead} (connection refused)\n"
    ))  # fmt: skip

    fallback = run(f"http://127.0.0.1:{dead},{cluster.address}", "submit", "--", "true")
    assert fallback.returncode == 0, fallback.stderr
    with Client(cluster.address) as client:
        assert client.describe_job(fallback.stdout.strip()).job_name == "true"


def test_a_port_that_is_not_a_shoal_edge_falls_back_to_grpc(cluster: LocalCluster) -> None:
    class NotShoal(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotShoal)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        other = f"http://127.0.0.1:{server.server_address[1]}"
        proc = run(f"{other},{cluster.address}", "submit", "--name", "fell-back", "--", "true")
        assert proc.returncode == 0, proc.stderr
        alone = run(other, "describe", proc.stdout.strip())
        assert (alone.returncode, alone.stderr) == (4, f"shoal: cannot reach a controller at {other} (HTTP 404, not a shoal edge)\n")
    finally:
        server.shutdown()
        server.server_close()


def test_other_commands_find_grpc_through_the_edge(cluster: LocalCluster) -> None:
    proc = run(cluster.http_url, "nodes", "list", "--output", "json")
    assert proc.returncode == 0, proc.stderr
    assert [n["nodeId"] for n in json.loads(proc.stdout)["nodes"]] == ["agent-1"]


def test_from_file_submits_every_line_in_one_call(cluster: LocalCluster, tmp_path: Path) -> None:
    lines = [json.dumps({"jobName": f"file-{i}", "containerOverrides": {"command": ["sh", "-c", f"exit {i % 2}"]}}) for i in range(40)]
    for addr in (cluster.http_url, cluster.address):
        proc = run(addr, "submit", "--from-file", "-", stdin="\n".join(lines) + "\n")
        assert proc.returncode == 0, proc.stderr
        ids = proc.stdout.split()
        assert len(ids) == 40
        with Client(cluster.address) as client:
            jobs = {j.job_id: j for j in client.describe_jobs(ids)}
            # One call, one submission: the 40 jobs were created together.
            assert [jobs[i].job_name for i in ids] == [f"file-{i}" for i in range(40)]
            assert len({jobs[i].created_at for i in ids}) == 1
            final = client.wait(ids, timeout=120)
        assert [final[i].status for i in ids] == [types_pb2.JOB_STATUS_SUCCEEDED, types_pb2.JOB_STATUS_FAILED] * 20


def test_from_file_with_a_bad_line_submits_nothing(cluster: LocalCluster, tmp_path: Path) -> None:
    path = tmp_path / "jobs.jsonl"
    good = json.dumps({"containerOverrides": {"command": ["true"]}})
    path.write_text("\n".join([good] * 5 + ['{"jobName": "no good", "containerOverrides": {"command": ["true"]}}'] + [good] * 5))
    before = job_keys(cluster)
    for addr in (cluster.http_url, cluster.address):
        proc = run(addr, "submit", "--from-file", str(path))
        assert (proc.returncode, proc.stdout) == (2, "")
        assert proc.stderr.startswith(f"shoal: {path}:6: job_name: must be letters") and "nothing was submitted" in proc.stderr
    # A line only the server can refuse (an unknown queue) refuses the whole call.
    path.write_text("\n".join([good] * 3 + [json.dumps({"jobQueue": "nope", "containerOverrides": {"command": ["true"]}})]))
    proc = run(cluster.http_url, "submit", "--from-file", str(path))
    assert (proc.returncode, proc.stderr) == (3, f"shoal: {path}:4: job_queue: job queue 'nope' does not exist\n")
    # Nothing new in etcd: no submission, no job (jobs of earlier tests may still change state).
    assert set(job_keys(cluster)) - set(before) == set()


def test_a_follower_s_edge_takes_submissions(cluster_factory) -> None:  # noqa: ANN001
    replicated = cluster_factory(controllers=2, agents=1, http_port=0)
    follower = None
    for grpc_addr, http_addr in zip(replicated.controller_addrs, replicated.http_addrs, strict=True):
        with Client(grpc_addr) as client:
            if not client.describe_cluster().is_leader:
                follower = f"http://{http_addr}"
    assert follower is not None
    proc = run(follower, "submit", "--wait", "--", "true")
    assert (proc.returncode, proc.stderr.split(" ", 1)[1]) == (0, "SUCCEEDED (exit 0)\n"), proc.stderr


def test_tls_and_tokens_over_the_edge_as_over_grpc(
    etcd_server: EtcdServer, etcd_prefix: str, tmp_path: Path, pki: Path  # noqa: F811 - the fixture imported above
) -> None:
    secure = make_cluster(
        etcd_server, etcd_prefix, tmp_path / "secure", agents=0, http_port=0,
        controller_args=["--tls-cert", str(pki / "ctl.pem"), "--tls-key", str(pki / "ctl-key.pem"),
                         "--tokens-file", str(pki / "tokens.yaml")],
        ca_file=str(pki / "ca.pem"), token=token("root"),
    )  # fmt: skip
    secure.start()
    try:
        edge = f"https://{secure.http_addrs[0]}"
        ca = ["--ca", str(pki / "ca.pem")]
        for who, args, code in (
            (None, ("submit", "--", "true"), 3),  # no token: UNAUTHENTICATED
            ("rita", ("submit", "--", "true"), 3),  # a reader may not submit
            ("rita", ("jobs", "list", "--quiet"), 0),
            ("alice", ("submit", "--vcpus", "64", "--output", "json", "--name", "queued", "--", "true"), 0),
        ):
            auth = ["--token", token(who)] if who else []
            via_http, via_grpc = run(edge, *ca, *auth, *args), run(secure.address, *ca, *auth, *args)
            assert (via_http.returncode, via_grpc.returncode) == (code, code), (via_http.stderr, via_grpc.stderr)
            assert via_http.stderr == via_grpc.stderr
            if args[0] == "submit" and code == 0:
                assert json.loads(via_http.stdout)["jobName"] == json.loads(via_grpc.stdout)["jobName"] == "queued"
        listed = run(edge, *ca, "--token", token("rita"), "jobs", "list", "--quiet")
        assert len(listed.stdout.split()) == 2
        plain = run(f"http://{secure.http_addrs[0]}", *ca, "--token", token("rita"), "jobs", "list")
        assert plain.returncode == 4  # an HTTPS port does not answer plaintext HTTP as a shoal edge
    finally:
        _dump_logs(secure)
        secure.stop()


def _post(url: str, body: bytes, content_type: str) -> tuple[int, dict[str, str], bytes]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


def test_the_native_routes_speak_protobuf_and_json(cluster: LocalCluster) -> None:
    from shoal.v1 import batch_pb2

    base = cluster.http_url + "/shoal.v1.Batch/"
    request = batch_pb2.SubmitJobRequest(job_name="proto", container_overrides=batch_pb2.ContainerOverrides(command=["true"]))
    status, headers, body = _post(base + "SubmitJob", request.SerializeToString(), "application/proto")
    assert (status, headers["content-type"], headers["shoal-api"]) == (200, "application/proto", "1")
    job_id = batch_pb2.SubmitJobResponse.FromString(body).job_id

    status, _, body = _post(base + "DescribeJobs", json.dumps({"jobIds": [job_id]}).encode(), "application/json")
    assert status == 200 and json.loads(body)["jobs"][0]["jobName"] == "proto"

    for path, payload, kind, code, http_status in (
        ("SubmitJob", b'{"jobName": "x y", "containerOverrides": {"command": ["true"]}}', "application/json", "invalid_argument", 400),
        ("SubmitJob", b'{"jobNme": 1}', "application/json", "invalid_argument", 400),
        ("SubmitJob", b"\xff\xff\xff", "application/proto", "invalid_argument", 400),
        ("SubmitJob", b"{}", "text/plain", "invalid_argument", 400),
        ("DescribeJob", b"{}", "application/json", "unimplemented", 501),
        ("ExplainJob", json.dumps({"jobId": "00000000-0000-4000-8000-000000000000"}).encode(), "application/json", "not_found", 404),
    ):
        status, headers, body = _post(base + path, payload, kind)
        doc = json.loads(body)
        assert (status, doc["code"], headers["shoal-api"]) == (http_status, code, "1"), (path, doc)
        assert doc["message"]
