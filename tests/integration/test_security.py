"""Security against real processes: TLS + tokens + agent certificates, etcd over TLS, limits."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from shoal import Client, certs
from shoal.devcluster import EtcdServer, LocalCluster, free_port
from shoal.errors import InvalidArgument, PermissionDenied, ResourceExhausted, Unauthenticated
from shoal.v1 import agent_pb2, agent_pb2_grpc, batch_pb2
from tests.integration.conftest import _dump_logs, eventually, make_cluster

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

TOKENS = {
    "root": ("admin-token-0123456789abcdef", "admin"),
    "alice": ("alice-token-0123456789abcdef", "submitter"),
    "bob": ("bob-token-0123456789abcdef00", "submitter"),
    "rita": ("rita-token-0123456789abcdef0", "reader"),
}


def token(name: str) -> str:
    return TOKENS[name][0]


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    """Two CAs: `a` (the cluster's) and `other` (a stranger's), with the certificates the tests use."""
    a = tmp_path / "pki"
    certs.init_ca(a)
    certs.issue(a, "ctl", "server", hosts=["127.0.0.1", "localhost"])
    certs.issue(a, "agent-1", "agent")
    certs.issue(a, "agent-2", "agent")
    certs.issue(a, "etcd", "server", hosts=["127.0.0.1", "localhost"])
    certs.issue(a, "controller", "client")
    other = tmp_path / "other"
    certs.init_ca(other)
    certs.issue(other, "agent-1", "agent")
    tokens = "\n".join(f"- {{name: {n}, token: {t}, role: {r}}}" for n, (t, r) in TOKENS.items())
    (a / "tokens.yaml").write_text(tokens + "\n")
    return a


def agent_tls(pki: Path, name: str, ca_dir: Path | None = None) -> list[str]:
    d = ca_dir or pki
    return ["--tls-ca", str(pki / "ca.pem"), "--tls-cert", str(d / f"{name}.pem"), "--tls-key", str(d / f"{name}-key.pem")]


@pytest.fixture
def secure(etcd_server: EtcdServer, etcd_prefix: str, tmp_path: Path, pki: Path):  # noqa: ANN201
    agent_port = free_port()
    cluster = make_cluster(
        etcd_server, etcd_prefix, tmp_path / "cluster", agents=0,
        controller_args=["--tls-cert", str(pki / "ctl.pem"), "--tls-key", str(pki / "ctl-key.pem"),
                         "--tls-client-ca", str(pki / "ca.pem"), "--agent-listen", f"127.0.0.1:{agent_port}",
                         "--tokens-file", str(pki / "tokens.yaml")],
        ca_file=str(pki / "ca.pem"), token=token("root"),
    )  # fmt: skip
    cluster.start()
    cluster.agent_port = agent_port  # type: ignore[attr-defined]
    try:
        cluster.start_agent(*agent_tls(pki, "agent-1"))
        cluster.wait_nodes_ready(1, timeout=30)
        yield cluster
    finally:
        _dump_logs(cluster)
        cluster.stop()


def client(cluster: LocalCluster, pki: Path, who: str | None) -> Client:
    return Client(cluster.address, ca=str(pki / "ca.pem"), token=token(who) if who else "", timeout=15)


def test_tokens_and_roles(secure: LocalCluster, pki: Path) -> None:
    with Client(secure.address, ca=str(pki / "ca.pem"), timeout=10) as anonymous:
        with pytest.raises(Unauthenticated, match="no token"):
            anonymous.describe_cluster()
    with Client(secure.address, ca=str(pki / "ca.pem"), token="not-a-token-at-all-0000", timeout=10) as wrong:
        with pytest.raises(Unauthenticated, match="unknown token"):
            wrong.describe_cluster()
    with Client(secure.address, timeout=5) as plaintext:  # a TLS port does not speak plaintext
        with pytest.raises(Exception):  # noqa: B017 - Unavailable, worded by gRPC
            plaintext.describe_cluster()

    with client(secure, pki, "rita") as rita, client(secure, pki, "alice") as alice, \
            client(secure, pki, "bob") as bob, client(secure, pki, "root") as root:  # fmt: skip
        rita.describe_cluster()
        with pytest.raises(PermissionDenied, match="submitter"):
            rita.submit_job("nope", command=["true"])
        # 64 vCPUs fit no node: the job stays queued, so cancel applies.
        job = alice.submit_job("mine", command=["sleep", "1"], vcpus=64)
        assert rita.describe_jobs([job.job_id])[0].tags["shoal:owner"] == "alice"
        with pytest.raises(PermissionDenied, match="not submitted by 'bob'"):
            bob.cancel_job(job.job_id, reason="not yours")
        alice.cancel_job(job.job_id, reason="changed my mind")
        with pytest.raises(InvalidArgument, match="reserved"):
            bob.submit_job("forged", command=["true"], tags={"shoal:owner": "alice"})
        with pytest.raises(PermissionDenied, match="admin"):
            alice.create_job_queue("alices", compute_environments=["default"])
        root.create_job_queue("ops", compute_environments=["default"])
        # An admin may stop anyone's job.
        other = bob.submit_job("bobs", command=["sleep", "1"], vcpus=64)
        root.cancel_job(other.job_id, reason="admin says no")
        final = rita.wait([job.job_id, other.job_id], timeout=30)
        assert {j.status_reason for j in final.values()} == {"changed my mind", "admin says no"}


def test_secret_environment_is_redacted(secure: LocalCluster, pki: Path) -> None:
    with client(secure, pki, "alice") as alice:
        alice.register_job_definition(
            "withsecret", command=["sh", "-c", 'echo "pw=$PASSWORD user=$USERNAME"'],
            environment={"PASSWORD": "hunter2", "USERNAME": "alice"}, secret_environment=["PASSWORD"],
        )
        (definition,) = alice.describe_job_definitions("withsecret")
        env = {kv.name: kv.value for kv in definition.container_properties.environment}
        assert env == {"PASSWORD": "****", "USERNAME": "alice"}
        job = alice.submit_job("secretive", job_definition="withsecret")
        final = alice.wait([job.job_id], timeout=60)[job.job_id]
        env = {kv.name: kv.value for kv in final.container.environment}
        assert env["PASSWORD"] == "****" and env["USERNAME"] == "alice"
        # The job itself got the real value.
        assert b"pw=hunter2 user=alice" in b"".join(alice.get_job_logs(job.job_id))
    log = "".join(p.log_path.read_text() for p in (*secure.controller_procs, *secure.agent_procs))
    assert "hunter2" not in log


def test_agent_with_certificate_of_another_ca_is_refused(secure: LocalCluster, pki: Path) -> None:
    # An impostor: a certificate for node agent-1 (the real agent-1 is connected) from another CA.
    proc = secure.start_agent(*agent_tls(pki, "agent-1", ca_dir=pki.parent / "other"), "--node-id", "agent-1")
    controller_log = secure.controller_procs[0].log_path
    # The controller says why (gRPC's TLS layer logs the failed handshake) ...
    eventually(lambda: "CERTIFICATE_VERIFY_FAILED" in controller_log.read_text(), timeout=20,
               what="the controller to log the refused handshake")  # fmt: skip
    # ... and the agent keeps failing to connect.
    eventually(lambda: "controller unavailable" in proc.log_path.read_text(), timeout=20, what="the agent's failure")
    with client(secure, pki, "rita") as rita:
        nodes = rita.list_nodes()
    assert [n.node_id for n in nodes] == ["agent-1"]
    assert "registered" not in proc.log_path.read_text()
    assert proc.alive()


def test_agent_cannot_register_as_another_node(secure: LocalCluster, pki: Path) -> None:
    address = f"127.0.0.1:{secure.agent_port}"  # type: ignore[attr-defined]

    def credentials(cert: str | None) -> grpc.ChannelCredentials:
        key = cert.replace(".pem", "-key.pem") if cert else None
        return grpc.ssl_channel_credentials(
            (pki / "ca.pem").read_bytes(),
            Path(key).read_bytes() if key else None,
            Path(cert).read_bytes() if cert else None,
        )

    async def connect(cert: str | None, node_id: str) -> grpc.StatusCode:
        creds = credentials(cert)
        async with grpc.aio.secure_channel(address, creds) as channel:
            call = agent_pb2_grpc.AgentGatewayStub(channel).Connect(timeout=10)
            register = agent_pb2.Register(node_id=node_id, hostname="h", compute_environment="default",
                                          vcpus=1, memory_mib=512, runtimes=["process"])  # fmt: skip
            try:
                await call.write(agent_pb2.AgentMessage(register=register))
                await call.read()
            except grpc.aio.AioRpcError as err:
                return err.code()
            code = await call.code()
            call.cancel()
            return code

    assert asyncio.run(connect(str(pki / "agent-2.pem"), "agent-1")) == grpc.StatusCode.PERMISSION_DENIED
    # No certificate at all: the mutual-TLS handshake fails.
    assert asyncio.run(connect(None, "agent-1")) == grpc.StatusCode.UNAVAILABLE
    log = secure.controller_procs[0].log_path.read_text()
    assert "agent.refused" in log and "agent-2" in log


def test_etcd_over_tls_with_client_certificates(tmp_path: Path, pki: Path) -> None:
    etcd = EtcdServer(
        data_dir=tmp_path / "etcd-tls", tls_cert=str(pki / "etcd.pem"), tls_key=str(pki / "etcd-key.pem"),
        client_ca=str(pki / "ca.pem"), health_cert=str(pki / "controller.pem"), health_key=str(pki / "controller-key.pem"),
    )  # fmt: skip
    etcd.start()
    try:
        etcd_tls = ["--etcd-cacert", str(pki / "ca.pem"), "--etcd-cert", str(pki / "controller.pem"),
                    "--etcd-key", str(pki / "controller-key.pem")]  # fmt: skip
        cluster = LocalCluster(data_dir=tmp_path / "c", agents=1, etcd_endpoint=etcd.endpoint,
                               controller_args=["--lease-ttl", "2", *etcd_tls], agent_args=["--vcpus", "1", "--memory-mib", "512"])  # fmt: skip
        cluster.start(timeout=40)
        try:
            with Client(cluster.address, timeout=15) as c:
                job = c.submit_job("over-tls", command=["true"])
                assert c.wait([job.job_id], timeout=60)[job.job_id].status == 6  # SUCCEEDED
        finally:
            cluster.stop()
        # Without a client certificate etcd refuses the controller: it never becomes healthy.
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "controller", "--etcd", etcd.endpoint, "--listen", f"127.0.0.1:{port}",
             "--etcd-cacert", str(pki / "ca.pem")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            from shoal.devcluster import _grpc_health_serving

            deadline = time.monotonic() + 6
            while time.monotonic() < deadline:
                assert not _grpc_health_serving(f"127.0.0.1:{port}")
                time.sleep(0.5)
        finally:
            proc.terminate()
            out = proc.communicate(timeout=15)[0].decode()
        assert "BAD_CERTIFICATE" in out or "certificate" in out.lower(), out[-2000:]
    finally:
        etcd.stop()


def test_plaintext_on_a_non_loopback_address_needs_insecure(etcd_server: EtcdServer) -> None:
    port = free_port("0.0.0.0")
    argv = [sys.executable, "-m", "controller", "--etcd", etcd_server.endpoint, "--listen", f"0.0.0.0:{port}"]
    refused = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert refused.returncode != 0
    assert "refusing to serve" in refused.stderr and "--insecure" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    agent = subprocess.run([sys.executable, "-m", "agent", "--controller", "192.0.2.1:50051", "--node-id", "x",
                            "--state-dir", "/tmp/shoal-test-agent-insecure"], capture_output=True, text=True, timeout=30)  # fmt: skip
    assert agent.returncode == 2 and "--insecure" in agent.stderr
    # With --insecure it starts (and serves health checks).
    proc = subprocess.Popen([*argv, "--insecure", "--prefix", "/t-insecure/"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        from shoal.devcluster import _grpc_health_serving

        eventually(lambda: _grpc_health_serving(f"127.0.0.1:{port}"), timeout=30, what="an --insecure controller")
    finally:
        proc.terminate()
        proc.wait(15)


def test_limits(cluster_factory) -> None:  # noqa: ANN001
    cluster = cluster_factory(
        agents=0,
        controller_args=["--max-queued-jobs-per-queue", "3", "--max-message-mib", "1", "--rate-limit", "10", "--rate-burst", "10"],
    )
    with Client(cluster.address, timeout=10) as c:
        c.submit_jobs([batch_pb2.SubmitJobRequest(job_name=f"q{i}", container_overrides={"command": ["true"]}) for i in range(3)])
        with pytest.raises(ResourceExhausted, match=r"job queue 'default'.*limit of 3 queued jobs"):
            c.submit_job("one-too-many", command=["true"])
        big = batch_pb2.SubmitJobRequest(job_name="big", container_overrides={"command": ["x" * (1100 * 1024)]})
        with pytest.raises(ResourceExhausted):
            c.submit_job(big)
        with pytest.raises(ResourceExhausted, match=r"rate limit of 10 requests/s exceeded; retry after"):
            for _ in range(30):
                c.describe_cluster()
