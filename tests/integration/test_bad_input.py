"""Every RPC validates: bad input gets a clear error naming the field, and changes nothing."""

from __future__ import annotations

import grpc
import pytest

from shoal import AlreadyExists, Client, FailedPrecondition, InvalidArgument, NotFound
from shoal.devcluster import LocalCluster
from shoal.v1 import agent_pb2, agent_pb2_grpc, batch_pb2

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def state(client: Client) -> tuple:
    return (
        [j.SerializeToString() for j in client.list_jobs()],
        [q.SerializeToString() for q in client.describe_job_queues()],
        [e.SerializeToString() for e in client.describe_compute_environments()],
        [d.SerializeToString() for d in client.describe_job_definitions()],
        sorted(n.node_id for n in client.list_nodes()),
    )


def test_bad_requests_are_refused_and_leave_the_store_unchanged(client: Client) -> None:
    before = state(client)
    cases = [
        (InvalidArgument, "job_name", lambda: client.submit_job("", command=["true"])),
        (InvalidArgument, "command", lambda: client.submit_job("x")),
        (InvalidArgument, "memory_mib", lambda: client.submit_job("x", command=["true"], memory_mib=1)),
        (InvalidArgument, "SHOAL_", lambda: client.submit_job("x", command=["true"], environment={"SHOAL_JOB_ID": "x"})),
        (InvalidArgument, "attempts", lambda: client.submit_job("x", command=["true"], retry_strategy=11)),
        (NotFound, "job_definition", lambda: client.submit_job("x", job_definition="nope")),
        (InvalidArgument, "priority", lambda: client.create_job_queue("q", compute_environments=["default"], priority=-5)),
        (NotFound, "compute environment", lambda: client.create_job_queue("q", compute_environments=["nope"])),
        (AlreadyExists, "default", lambda: client.create_job_queue("default", compute_environments=["default"])),
        (AlreadyExists, "default", lambda: client.create_compute_environment("default")),
        (FailedPrecondition, "ENABLED", lambda: client.delete_job_queue("default")),
        (FailedPrecondition, "ENABLED", lambda: client.delete_compute_environment("default")),
        (NotFound, "does not exist", lambda: client.update_job_queue("nope", priority=3)),
        (InvalidArgument, "job_id", lambda: client.cancel_job("not-an-id", "x")),
        (InvalidArgument, "reason", lambda: client.terminate_job("00000000-0000-4000-8000-000000000000", "")),
        (InvalidArgument, "job_definition", lambda: client.deregister_job_definition("x:y")),
    ]
    for error, word, call in cases:
        with pytest.raises(error) as err:
            call()
        assert word in str(err.value), (word, str(err.value))
    assert state(client) == before


def _register(cluster: LocalCluster, register: agent_pb2.Register) -> grpc.RpcError:
    with grpc.insecure_channel(cluster.controller_addrs[0]) as channel:
        stream = agent_pb2_grpc.AgentGatewayStub(channel).Connect(
            iter([agent_pb2.AgentMessage(register=register)]), timeout=10
        )
        with pytest.raises(grpc.RpcError) as err:
            for _ in stream:
                pass
    return err.value


@pytest.mark.parametrize(
    ("change", "code", "word"),
    [
        ({"vcpus": -4}, grpc.StatusCode.INVALID_ARGUMENT, "vcpus"),
        ({"vcpus": float("nan")}, grpc.StatusCode.INVALID_ARGUMENT, "vcpus"),
        ({"memory_mib": 0}, grpc.StatusCode.INVALID_ARGUMENT, "memory_mib"),
        ({"node_id": "bad id/x"}, grpc.StatusCode.INVALID_ARGUMENT, "node_id"),
        ({"compute_environment": "nope"}, grpc.StatusCode.NOT_FOUND, "nope"),
    ],
)
def test_agent_with_nonsense_registration_is_refused(cluster: LocalCluster, client: Client, change: dict, code, word: str) -> None:  # noqa: ANN001
    fields = {"node_id": "rogue", "hostname": "h", "compute_environment": "default", "vcpus": 2, "memory_mib": 1024, "runtimes": ["process"]}
    fields.update(change)
    err = _register(cluster, agent_pb2.Register(**fields))
    assert err.code() == code and word in err.details()
    assert "rogue" not in {n.node_id for n in client.list_nodes()}
    assert "bad id/x" not in {n.node_id for n in client.list_nodes()}


def test_describe_limits(client: Client) -> None:
    with grpc.insecure_channel(client.current_address) as channel:
        from shoal.v1 import batch_pb2_grpc

        stub = batch_pb2_grpc.BatchStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.DescribeJobs(batch_pb2.DescribeJobsRequest(job_ids=["x"] * 101), timeout=5)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as err:
            stub.ListJobs(batch_pb2.ListJobsRequest(next_token="garbage"), timeout=5)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
