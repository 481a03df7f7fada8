"""Draining nodes, disabled queues, jobs too big for any node, and `shoal why`."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoal import Client, FailedPrecondition
from shoal.v1 import types_pb2

from .conftest import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

S = types_pb2.JobStatus
N = types_pb2.NodeStatus


def blocker(gate: Path) -> list[str]:
    return ["sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.05; done"]


def running_on(client: Client, job_id: str) -> str:
    job = client.describe_job(job_id)
    return job.node_id if job.status == S.JOB_STATUS_RUNNING else ""


def node_status(client: Client, node_id: str) -> int:
    return next(n.status for n in client.list_nodes() if n.node_id == node_id)


def test_drain_lets_running_jobs_finish_and_places_nothing_new(client: Client, tmp_path: Path) -> None:
    gate = tmp_path / "go"
    first = client.submit_job("first", command=blocker(gate), vcpus=1).job_id
    node = eventually(lambda: running_on(client, first), what="first RUNNING")
    other = "agent-2" if node == "agent-1" else "agent-1"
    drained = client.drain_node(node, reason="kernel upgrade")
    assert drained.status == N.NODE_STATUS_DRAINING and drained.status_reason == "kernel upgrade"
    later = [client.submit_job(f"later{i}", command=blocker(gate), vcpus=1).job_id for i in range(2)]
    eventually(lambda: all(running_on(client, j) for j in later), what="later jobs RUNNING")
    assert {running_on(client, j) for j in later} == {other}
    gate.touch()
    assert client.wait([first], timeout=30)[first].status == S.JOB_STATUS_SUCCEEDED
    eventually(lambda: node_status(client, node) == N.NODE_STATUS_DRAINED, what="node DRAINED")
    assert client.undrain_node(node).status == N.NODE_STATUS_READY
    client.drain_node(node)
    client.drain_node(node)  # idempotent
    assert client.wait(later, timeout=30)


def test_drain_with_interrupt_requeues_at_once(client: Client, tmp_path: Path) -> None:
    gate = tmp_path / "go"
    job_id = client.submit_job("moved", command=blocker(gate), retry_strategy=2).job_id
    node = eventually(lambda: running_on(client, job_id), what="RUNNING")
    client.drain_node(node, interrupt=True)
    new_node = eventually(lambda: running_on(client, job_id) if client.describe_job(job_id).attempts else "", what="rerun")
    assert new_node != node
    gate.touch()
    job = client.wait([job_id], timeout=30)[job_id]
    assert job.status == S.JOB_STATUS_SUCCEEDED
    first = job.attempts[0]
    assert first.interrupted and first.status_reason == "Host interrupted: termination notice"
    assert [a.node_id for a in job.attempts] == [node, new_node]


def test_too_big_job_does_not_block_the_queue_and_why_says_so(client: Client) -> None:
    big = client.submit_job("big", command=["true"], vcpus=64, memory_mib=4096).job_id
    small = client.submit_job("small", command=["true"]).job_id
    assert client.wait([small], timeout=60)[small].status == S.JOB_STATUS_SUCCEEDED
    assert client.describe_job(big).status == S.JOB_STATUS_RUNNABLE
    reasons = client.explain_job(big).reasons
    assert any("Needs 64 vCPUs, 4096 MiB" in r and "has 2 vCPUs, 2048 MiB" in r for r in reasons), reasons
    client.cancel_job(big, "too big")


def test_why_names_the_dependency(client: Client, tmp_path: Path) -> None:
    gate = tmp_path / "go"
    a = client.submit_job("a", command=blocker(gate)).job_id
    b = client.submit_job("b", command=["true"], depends_on=[a]).job_id
    eventually(lambda: client.describe_job(b).status == S.JOB_STATUS_PENDING, what="b PENDING")
    assert any(a in r for r in client.explain_job(b).reasons)
    gate.touch()
    client.wait([a, b], timeout=30)
    assert "SUCCEEDED" in client.explain_job(b).reasons[0]


def test_disabled_queue_holds_its_jobs_and_refuses_new_ones(client: Client, tmp_path: Path) -> None:
    gate = tmp_path / "go"
    client.create_job_queue("batch2", compute_environments=["default"], priority=1)
    fillers = [client.submit_job(f"fill{i}", command=blocker(gate), vcpus=2).job_id for i in range(2)]
    eventually(lambda: all(running_on(client, j) for j in fillers), what="fillers RUNNING")
    held = [client.submit_job(f"held{i}", job_queue="batch2", command=["true"]).job_id for i in range(3)]
    client.update_job_queue("batch2", state="DISABLED")
    with pytest.raises(FailedPrecondition, match="DISABLED"):
        client.submit_job("refused", job_queue="batch2", command=["true"])
    gate.touch()
    client.wait(fillers, timeout=30)
    # Capacity is free now, yet the disabled queue's jobs wait, and `why` says so.
    probe = client.submit_job("probe", command=["true"]).job_id
    assert client.wait([probe], timeout=30)[probe].status == S.JOB_STATUS_SUCCEEDED
    assert {j.status for j in client.describe_jobs(held)} == {S.JOB_STATUS_RUNNABLE}
    assert any("DISABLED" in r for r in client.explain_job(held[0]).reasons)
    client.update_job_queue("batch2", state="ENABLED")
    assert {j.status for j in client.wait(held, timeout=30).values()} == {S.JOB_STATUS_SUCCEEDED}
