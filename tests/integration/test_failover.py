"""Controller replicas: election, kill -9 of the leader, restart with jobs queued."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
from pathlib import Path

import grpc
import pytest

from controller.store.etcd import EtcdClient
from controller.store.keys import Keys
from shoal import Client
from shoal.devcluster import LocalCluster
from shoal.errors import STALE_LEADER_METADATA_KEY
from shoal.v1 import agent_pb2, agent_pb2_grpc, batch_pb2, batch_pb2_grpc, types_pb2

from .conftest import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

S = types_pb2.JobStatus


def describe_cluster(address: str) -> batch_pb2.DescribeClusterResponse | None:
    try:
        with grpc.insecure_channel(address) as channel:
            return batch_pb2_grpc.BatchStub(channel).DescribeCluster(batch_pb2.DescribeClusterRequest(), timeout=2)
    except grpc.RpcError:
        return None


def leaders(cluster: LocalCluster) -> list[str]:
    answers = [describe_cluster(a) for a in cluster.controller_addrs]
    return [a.replica_address for a in answers if a is not None and a.is_leader]


def test_two_controllers_elect_exactly_one_leader(cluster_factory) -> None:  # noqa: ANN001
    cluster = cluster_factory(controllers=2)
    (leader,) = eventually(lambda: leaders(cluster), what="a leader")
    # The follower knows who leads, and redirects agent-facing calls there.
    follower = next(a for a in cluster.controller_addrs if a != leader)
    info = describe_cluster(follower)
    assert info is not None and not info.is_leader and info.leader_address == leader
    with grpc.insecure_channel(follower) as channel:
        stub = batch_pb2_grpc.BatchStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            list(stub.GetJobLogs(batch_pb2.GetJobLogsRequest(job_id="3f1c1f7e-8a8e-4b59-9a53-7c1d0f1d2a11"), timeout=5))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert ("shoal-leader", leader) in tuple(err.value.trailing_metadata())
    # A client pointed at the follower alone still gets work done.
    with Client(follower) as c:
        job_id = c.submit_job("via-follower", command=["true"]).job_id
        assert c.wait([job_id], timeout=60)[job_id].status == S.JOB_STATUS_SUCCEEDED
    assert leaders(cluster) == [leader]


def test_kill9_leader_the_other_takes_over_and_finishes_queued_jobs(cluster_factory, tmp_path: Path) -> None:  # noqa: ANN001
    cluster = cluster_factory(controllers=2)
    (leader,) = eventually(lambda: leaders(cluster), what="a leader")
    gate = tmp_path / "go"
    with Client(cluster.address) as c:
        first_epoch = describe_cluster(leader).epoch  # type: ignore[union-attr]
        ids = [c.submit_job(f"q{i}", command=["sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.05; done"], vcpus=0.5).job_id for i in range(30)]
        eventually(lambda: sum(j.status == S.JOB_STATUS_RUNNING for j in c.describe_jobs(ids)) == 8, what="8 jobs RUNNING")
        index = cluster.controller_addrs.index(leader)
        cluster.controller_procs[index].kill9()
        (new_leader,) = eventually(lambda: leaders(cluster), what="a new leader")
        assert new_leader != leader
        assert describe_cluster(new_leader).epoch > first_epoch  # type: ignore[union-attr]
        gate.touch()
        final = c.wait(ids, timeout=120)
    assert {j.status for j in final.values()} == {S.JOB_STATUS_SUCCEEDED}
    # The failover did not requeue the running jobs: every job ran exactly once.
    assert all(len(j.attempts) == 1 for j in final.values())


def test_controller_restart_with_jobs_queued_loses_none(cluster: LocalCluster, tmp_path: Path) -> None:
    gate = tmp_path / "go"
    with Client(cluster.address) as c:
        fillers = [c.submit_job(f"fill{i}", command=["sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.05; done"], vcpus=2).job_id for i in range(2)]
        queued = [r.job_id for r in c.submit_jobs(
            [batch_pb2.SubmitJobRequest(job_name=f"q{i}", container_overrides=batch_pb2.ContainerOverrides(command=["true"])) for i in range(40)]
        )]  # fmt: skip
        eventually(lambda: all(j.status == S.JOB_STATUS_RUNNING for j in c.describe_jobs(fillers)), what="fillers RUNNING")
        assert {j.status for j in c.describe_jobs(queued)} == {S.JOB_STATUS_RUNNABLE}
    cluster.controller_procs[0].kill9()
    cluster.restart_controller(0)
    cluster.wait_nodes_ready(2)
    gate.touch()
    with Client(cluster.address) as c:
        final = c.wait(fillers + queued, timeout=120)
    assert {j.status for j in final.values()} == {S.JOB_STATUS_SUCCEEDED}
    assert len(final) == 42


def _health(address: str) -> int | None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    try:
        with grpc.insecure_channel(address) as channel:
            return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="shoal.v1.Batch"), timeout=2).status
    except grpc.RpcError:
        return None


def test_etcd_unreachable_means_not_serving_then_recovery(tmp_path: Path) -> None:
    import signal

    from grpc_health.v1 import health_pb2

    from .conftest import FAST_AGENT, FAST_CONTROLLER

    # Its own etcd: this test freezes it.
    cluster = LocalCluster(data_dir=tmp_path / "c", agents=1, controller_args=list(FAST_CONTROLLER), agent_args=list(FAST_AGENT))
    cluster.start()
    try:
        address = cluster.controller_addrs[0]
        assert _health(address) == health_pb2.HealthCheckResponse.SERVING
        assert cluster.etcd is not None and cluster.etcd.process is not None
        cluster.etcd.process.signal(signal.SIGSTOP)
        try:
            eventually(lambda: _health(address) == health_pb2.HealthCheckResponse.NOT_SERVING, timeout=20, what="NOT_SERVING")
            info = describe_cluster(address)
            assert info is not None and not info.etcd_healthy
        finally:
            cluster.etcd.process.signal(signal.SIGCONT)
        eventually(lambda: _health(address) == health_pb2.HealthCheckResponse.SERVING, timeout=30, what="SERVING again")
        with Client(cluster.address) as c:
            job = c.submit_job("after-etcd", command=["true"]).job_id
            assert c.wait([job], timeout=60)[job].status == S.JOB_STATUS_SUCCEEDED
    finally:
        print(cluster.controller_procs[0].tail(30))
        cluster.stop()


def _register_then_wait(done: threading.Event):  # noqa: ANN202
    yield agent_pb2.AgentMessage(register=agent_pb2.Register(
        node_id="held-agent", hostname="localhost", compute_environment="default", vcpus=1, memory_mib=512,
        runtimes=["process"], fence_timeout_ms=5500,
    ))
    done.wait(60)


def test_a_follower_holds_an_agent_that_cannot_reach_the_dead_leader_until_it_leads(cluster_factory) -> None:  # noqa: ANN001
    """kill -9 of the leader: its lease runs on, so the follower still names it. An agent that
    says it could not reach that leader is held (not refused) and served once the follower leads,
    instead of backing off between refusals while the lease runs out."""
    cluster = cluster_factory(controllers=2, agents=0)
    (leader,) = eventually(lambda: leaders(cluster), what="a leader")
    follower = next(a for a in cluster.controller_addrs if a != leader)
    eventually(lambda: (describe_cluster(follower) or batch_pb2.DescribeClusterResponse()).leader_address == leader,
               what="the follower to know the leader")
    cluster.controller_procs[cluster.controller_addrs.index(leader)].kill9()
    done = threading.Event()
    try:
        with grpc.insecure_channel(follower) as channel:
            responses = agent_pb2_grpc.AgentGatewayStub(channel).Connect(
                _register_then_wait(done), metadata=((STALE_LEADER_METADATA_KEY, leader),), timeout=60
            )
            first = next(responses)
            assert first.WhichOneof("body") == "registered"
            assert first.registered.node_id == "held-agent"
            assert leaders(cluster) == [follower]
    finally:
        done.set()


def test_sigterm_of_the_leader_resigns_at_once(cluster_factory, etcd_server) -> None:  # noqa: ANN001
    """A clean shutdown deletes the leader key and revokes its lease (a 10 s lease here, so an
    unrevoked one would still be alive when the process is gone) and the follower takes over;
    agents move without any of their jobs being requeued."""
    cluster = cluster_factory(controllers=2, agents=2, controller_args=["--lease-ttl", "10"])
    (leader,) = eventually(lambda: leaders(cluster), what="a leader")
    lease = _leader_lease(etcd_server.endpoint, cluster.prefix)
    assert _lease_alive(etcd_server.endpoint, lease)
    with Client(cluster.address) as c:
        job_id = c.submit_job("across-handover", command=["sleep", "4"], vcpus=0.5).job_id
        eventually(lambda: c.describe_jobs([job_id])[0].status == S.JOB_STATUS_RUNNING, what="the job RUNNING")
        proc = cluster.controller_procs[cluster.controller_addrs.index(leader)]
        proc.signal(signal.SIGTERM)
        eventually(lambda: not proc.alive(), what="the leader to exit")
        assert not _lease_alive(etcd_server.endpoint, lease)
        (new_leader,) = eventually(lambda: leaders(cluster), what="a new leader")
        assert new_leader != leader
        final = c.wait([job_id], timeout=60)[job_id]
    assert final.status == S.JOB_STATUS_SUCCEEDED
    assert len(final.attempts) == 1


def _leader_lease(endpoint: str, prefix: str) -> int:
    async def read() -> int:
        async with EtcdClient([endpoint]) as etcd:
            kv = await etcd.get(Keys(prefix).leader)
            assert kv is not None and kv.lease
            return kv.lease

    return asyncio.run(read())


def _lease_alive(endpoint: str, lease: int) -> bool:
    out = subprocess.run(
        ["etcdctl", "--endpoints", endpoint, "lease", "timetolive", format(lease, "x")],
        capture_output=True, text=True, check=True, env={**os.environ, "ETCDCTL_API": "3"},
    ).stdout
    return "already expired" not in out
