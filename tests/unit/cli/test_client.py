"""The SDK against a fake Batch server: deadlines, errors, leader redirects, failover, wait."""

from __future__ import annotations

import time

import grpc
import pytest

from shoal import Client, InvalidArgument, NotFound, NotLeader, Unavailable, WaitTimeout
from shoal.devcluster import free_port
from shoal.v1 import batch_pb2, types_pb2
from tests.unit.cli.builders import describe, event, job
from tests.unit.cli.fake_batch import FakeBatch, abort

pytestmark = pytest.mark.unit

SUCCEEDED, FAILED, RUNNING = (
    types_pb2.JOB_STATUS_SUCCEEDED,
    types_pb2.JOB_STATUS_FAILED,
    types_pb2.JOB_STATUS_RUNNING,
)


def dead_address() -> str:
    return f"127.0.0.1:{free_port()}"


def test_addresses_from_env_and_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOAL_ADDR", "a:1, b:2")
    assert Client().addresses == ["a:1", "b:2"]
    assert Client(["c:3", "c:3"]).addresses == ["c:3"]
    monkeypatch.delenv("SHOAL_ADDR")
    assert Client().addresses == ["127.0.0.1:50051"]


def test_submit_job_keyword_arguments(fake: FakeBatch) -> None:
    fake.on("SubmitJob", batch_pb2.SubmitJobResponse(job_id="j-1", job_name="train"))
    with Client(fake.address) as client:
        response = client.submit_job(
            "train",
            job_queue="gpu",
            command=["python", "train.py"],
            environment={"EPOCHS": "3"},
            vcpus=2,
            memory_mib=1024,
            depends_on=["j-0"],
            retry_strategy=3,
            timeout=60,
        )
    assert response.job_id == "j-1"
    (sent,) = fake.calls("SubmitJob")
    assert sent.job_name == "train" and sent.job_queue == "gpu"
    assert list(sent.container_overrides.command) == ["python", "train.py"]
    assert [(kv.name, kv.value) for kv in sent.container_overrides.environment] == [("EPOCHS", "3")]
    assert sent.container_overrides.vcpus == 2 and sent.container_overrides.memory_mib == 1024
    assert [d.job_id for d in sent.depends_on] == ["j-0"]
    assert sent.retry_strategy.attempts == 3
    assert sent.timeout.attempt_duration_seconds == 60


def test_server_error_becomes_typed_error(fake: FakeBatch) -> None:
    fake.fail("CancelJob", grpc.StatusCode.NOT_FOUND, "job x not found")
    with Client(fake.address) as client, pytest.raises(NotFound, match="job x not found"):
        client.cancel_job("x", "because")


def test_describe_job_missing_is_not_found(fake: FakeBatch) -> None:
    with Client(fake.address) as client, pytest.raises(NotFound, match="job nope not found"):
        client.describe_job("nope")


def test_describe_jobs_batches_of_100(fake: FakeBatch) -> None:
    with Client(fake.address) as client:
        client.describe_jobs([f"j-{i}" for i in range(250)])
    assert [len(r.job_ids) for r in fake.calls("DescribeJobs")] == [100, 100, 50]


def test_list_jobs_follows_next_token(fake: FakeBatch) -> None:
    pages = {
        "": batch_pb2.ListJobsResponse(job_summary_list=[batch_pb2.JobSummary(job_id="a")], next_token="t1"),
        "t1": batch_pb2.ListJobsResponse(job_summary_list=[batch_pb2.JobSummary(job_id="b")]),
    }
    fake.on("ListJobs", lambda request, context: pages[request.next_token])
    with Client(fake.address) as client:
        ids = [s.job_id for s in client.list_jobs(queue="q", status="running", name_prefix="tr")]
    assert ids == ["a", "b"]
    first = fake.calls("ListJobs")[0]
    assert (first.job_queue, first.job_status, first.job_name_prefix) == ("q", RUNNING, "tr")


def test_list_jobs_rejects_unknown_status(fake: FakeBatch) -> None:
    with Client(fake.address) as client, pytest.raises(InvalidArgument, match="unknown job status 'DONE'"):
        list(client.list_jobs(status="DONE"))


def test_unreachable_address_raises_unavailable() -> None:
    address = dead_address()
    with (
        Client(address, timeout=5) as client,
        pytest.raises(Unavailable, match=f"cannot reach a controller at {address}"),
    ):
        client.list_nodes()


def test_leader_redirect_is_followed_and_remembered(fake: FakeBatch, fake2: FakeBatch) -> None:
    fake.fail("CreateJobQueue", grpc.StatusCode.UNAVAILABLE, "not the leader", leader=fake2.address)
    fake2.on("CreateJobQueue", types_pb2.JobQueue(job_queue_name="q"))
    with Client(fake.address) as client:
        assert client.create_job_queue("q", ["ce"]).job_queue_name == "q"
        assert client.current_address == fake2.address
        client.create_job_queue("q", ["ce"])
    assert len(fake.calls("CreateJobQueue")) == 1
    assert len(fake2.calls("CreateJobQueue")) == 2


def test_leader_redirect_is_retried_only_once(fake: FakeBatch, fake2: FakeBatch) -> None:
    fake.fail("DeleteJobQueue", grpc.StatusCode.UNAVAILABLE, "not the leader", leader=fake2.address)
    fake2.fail("DeleteJobQueue", grpc.StatusCode.UNAVAILABLE, "not the leader either", leader=fake.address)
    with Client(fake.address) as client, pytest.raises(NotLeader):
        client.delete_job_queue("q")
    assert len(fake.calls("DeleteJobQueue")) == 1 and len(fake2.calls("DeleteJobQueue")) == 1


def test_reads_fail_over_to_the_next_address(fake: FakeBatch) -> None:
    fake.on("ListNodes", batch_pb2.ListNodesResponse(nodes=[types_pb2.Node(node_id="n-1")]))
    with Client([dead_address(), fake.address]) as client:
        assert [n.node_id for n in client.list_nodes()] == ["n-1"]
        assert client.current_address == fake.address


def test_reads_fail_over_when_a_replica_is_unavailable(fake: FakeBatch, fake2: FakeBatch) -> None:
    fake.fail("DescribeJobQueues", grpc.StatusCode.UNAVAILABLE, "etcd unreachable")
    fake2.on(
        "DescribeJobQueues",
        batch_pb2.DescribeJobQueuesResponse(job_queues=[types_pb2.JobQueue(job_queue_name="q")]),
    )
    with Client([fake.address, fake2.address]) as client:
        assert [q.job_queue_name for q in client.describe_job_queues()] == ["q"]


def test_write_that_never_connected_moves_on(fake: FakeBatch) -> None:
    fake.on("SubmitJob", batch_pb2.SubmitJobResponse(job_id="j-1"))
    with Client([dead_address(), fake.address]) as client:
        assert client.submit_job("x", command=["true"]).job_id == "j-1"


def test_write_that_may_have_been_applied_is_not_resent(fake: FakeBatch, fake2: FakeBatch) -> None:
    # The first replica answered UNAVAILABLE without a leader hint: the submission may or may
    # not be stored, so sending it to the second replica could create the job twice.
    fake.fail("SubmitJob", grpc.StatusCode.UNAVAILABLE, "etcd request timed out")
    with (
        Client([fake.address, fake2.address]) as client,
        pytest.raises(Unavailable, match="etcd request timed out"),
    ):
        client.submit_job("x", command=["true"])
    assert fake2.calls("SubmitJob") == []


def test_get_job_logs_streams_bytes(fake: FakeBatch) -> None:
    fake.on(
        "GetJobLogs", [batch_pb2.LogChunk(data=b"hello\n", attempt=2), batch_pb2.LogChunk(data=b"\x00\xff")]
    )
    with Client(fake.address) as client:
        assert b"".join(client.get_job_logs("j-1", attempt=2, follow=True)) == b"hello\n\x00\xff"
    (sent,) = fake.calls("GetJobLogs")
    assert (sent.job_id, sent.attempt, sent.follow) == ("j-1", 2, True)


def test_get_job_logs_follows_the_leader(fake: FakeBatch, fake2: FakeBatch) -> None:
    fake.fail(
        "GetJobLogs", grpc.StatusCode.UNAVAILABLE, "logs are served by the leader", leader=fake2.address
    )
    fake2.on("GetJobLogs", [batch_pb2.LogChunk(data=b"out")])
    with Client(fake.address) as client:
        assert list(client.get_job_logs("j-1")) == [b"out"]


def test_wait_returns_final_states(fake: FakeBatch) -> None:
    fake.on("DescribeJobs", describe(job("a"), job("b")))
    fake.on(
        "WatchJobs",
        [event(job("a", RUNNING)), event(job("a", SUCCEEDED)), event(job("b", FAILED, reason="boom"))],
    )
    with Client(fake.address) as client:
        final = client.wait(["a", "b"], timeout=10)
    assert {k: v.status for k, v in final.items()} == {"a": SUCCEEDED, "b": FAILED}
    assert list(fake.calls("WatchJobs")[0].job_ids) == ["a", "b"]


def test_wait_on_finished_jobs_needs_no_stream(fake: FakeBatch) -> None:
    fake.on("DescribeJobs", describe(job("a", SUCCEEDED)))
    with Client(fake.address) as client:
        assert client.wait(["a"])["a"].status == SUCCEEDED
    assert fake.calls("WatchJobs") == []


def test_wait_unknown_job_is_not_found(fake: FakeBatch) -> None:
    with Client(fake.address) as client, pytest.raises(NotFound, match="job ghost not found"):
        client.wait(["ghost"], timeout=1)


def test_wait_reopens_a_broken_stream(fake: FakeBatch) -> None:
    fake.on("DescribeJobs", describe(job("a")))
    opened = []

    def watch(request: batch_pb2.WatchJobsRequest, context: grpc.ServicerContext):
        opened.append(request)
        if len(opened) == 1:
            yield event(job("a", RUNNING))
            abort(context, grpc.StatusCode.UNAVAILABLE, "controller restarting")
        yield event(job("a", SUCCEEDED))

    fake.on("WatchJobs", watch)
    with Client(fake.address) as client:
        assert client.wait(["a"], timeout=10)["a"].status == SUCCEEDED
    assert len(opened) == 2


def test_wait_times_out(fake: FakeBatch) -> None:
    fake.on("DescribeJobs", describe(job("a", RUNNING)))

    def watch(request: batch_pb2.WatchJobsRequest, context: grpc.ServicerContext):
        yield event(job("a", RUNNING))
        while context.is_active():  # the job never finishes; the client's deadline ends the call
            time.sleep(0.02)

    fake.on("WatchJobs", watch)
    with Client(fake.address) as client, pytest.raises(WaitTimeout, match="timed out after 0.3s") as info:
        client.wait(["a"], timeout=0.3)
    assert set(info.value.pending) == {"a"} and info.value.done == {}


def test_wait_reopens_a_stream_that_ended(fake: FakeBatch) -> None:
    fake.on("DescribeJobs", describe(job("a")))
    opened = []

    def watch(request: batch_pb2.WatchJobsRequest, context: grpc.ServicerContext):
        opened.append(request)
        yield event(job("a", RUNNING if len(opened) == 1 else SUCCEEDED))

    fake.on("WatchJobs", watch)
    with Client(fake.address) as client:
        assert client.wait(["a"], timeout=10)["a"].status == SUCCEEDED
    assert len(opened) == 2


def test_describe_cluster(fake: FakeBatch) -> None:
    fake.on("DescribeCluster", batch_pb2.DescribeClusterResponse(is_leader=True, leader_address=fake.address))
    with Client(fake.address) as client:
        assert client.describe_cluster().is_leader


def test_unavailable_replica_is_reported_as_such(fake: FakeBatch) -> None:
    fake.fail("ListNodes", grpc.StatusCode.UNAVAILABLE, "no leader elected yet")
    with Client(fake.address) as client, pytest.raises(Unavailable) as info:
        client.list_nodes()
    assert info.value.message == f"no controller could answer: {fake.address} (no leader elected yet)"
