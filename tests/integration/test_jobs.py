"""The spine end to end: real etcd, a real controller process and real agent processes."""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import pytest

from shoal import Client
from shoal.v1 import batch_pb2, types_pb2

from .conftest import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

S = types_pb2.JobStatus


def status(client: Client, job_id: str) -> int:
    return client.describe_job(job_id).status


def blocker(gate: Path, marker: Path | None = None) -> list[str]:
    """A job that runs until the test creates `gate` (then optionally leaves `marker`)."""
    tail = f"; touch {marker}" if marker else ""
    return ["sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.05; done{tail}"]


def test_200_jobs_through_two_agents_all_succeed(client: Client) -> None:
    requests = [
        batch_pb2.SubmitJobRequest(
            job_name=f"j{i}",
            container_overrides=batch_pb2.ContainerOverrides(command=["true"], vcpus=0.25, memory_mib=16),
        )
        for i in range(200)
    ]
    ids = [r.job_id for chunk in (requests[:100], requests[100:]) for r in client.submit_jobs(chunk)]
    assert len(set(ids)) == 200
    final = client.wait(ids, timeout=150)
    statuses = {j.status for j in final.values()}
    assert statuses == {S.JOB_STATUS_SUCCEEDED}, [
        (j.job_id, j.status_reason) for j in final.values() if j.status != S.JOB_STATUS_SUCCEEDED
    ][:5]
    # Each ran exactly once, and both agents took a share.
    assert all(len(j.attempts) == 1 and j.attempts[0].exit_code == 0 for j in final.values())
    assert {j.attempts[0].node_id for j in final.values()} == {"agent-1", "agent-2"}


def test_exit_code_is_reported_exactly(client: Client) -> None:
    job_id = client.submit_job("three", command=["sh", "-c", "exit 3"]).job_id
    job = client.wait([job_id], timeout=60)[job_id]
    assert job.status == S.JOB_STATUS_FAILED
    assert [a.exit_code for a in job.attempts] == [3]
    assert job.status_reason == "Essential container in task exited"


def test_environment_is_injected(client: Client, tmp_path: Path) -> None:
    out = tmp_path / "env.txt"
    job_id = client.submit_job(
        "envcheck",
        command=["sh", "-c", f"env > {out}"],
        environment={"GREETING": "hello"},
    ).job_id
    assert client.wait([job_id], timeout=60)[job_id].status == S.JOB_STATUS_SUCCEEDED
    env = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
    assert env["GREETING"] == "hello"
    assert env["SHOAL_JOB_ID"] == env["AWS_BATCH_JOB_ID"] == job_id
    assert env["SHOAL_JOB_ATTEMPT"] == env["AWS_BATCH_JOB_ATTEMPT"] == "1"
    assert env["SHOAL_JOB_QUEUE"] == env["AWS_BATCH_JQ_NAME"] == "default"
    assert env["SHOAL_CE_NAME"] == env["AWS_BATCH_CE_NAME"] == "default"


def test_logs_after_the_fact(client: Client) -> None:
    job_id = client.submit_job("talk", command=["sh", "-c", "echo out-line; echo err-line >&2"]).job_id
    assert client.wait([job_id], timeout=60)[job_id].status == S.JOB_STATUS_SUCCEEDED
    text = b"".join(client.get_job_logs(job_id)).decode()
    assert "out-line" in text and "err-line" in text


def test_dependent_waits_pending_then_runs_after_success(client: Client, tmp_path: Path) -> None:
    gate, marker = tmp_path / "go", tmp_path / "a-done"
    a = client.submit_job("a", command=blocker(gate, marker)).job_id
    b = client.submit_job("b", command=["sh", "-c", f"test -e {marker}"], depends_on=[a]).job_id
    eventually(lambda: status(client, a) == S.JOB_STATUS_RUNNING, what="a RUNNING")
    assert status(client, b) == S.JOB_STATUS_PENDING
    gate.touch()
    final = client.wait([a, b], timeout=60)
    # b's own command checks that a had finished before b started.
    assert final[b].status == S.JOB_STATUS_SUCCEEDED, final[b].status_reason
    assert final[a].stopped_at <= final[b].started_at


def test_dependent_fails_when_dependency_fails(client: Client) -> None:
    a = client.submit_job("a", command=["false"]).job_id
    b = client.submit_job("b", command=["true"], depends_on=[a]).job_id
    c = client.submit_job("c", command=["true"], depends_on=[b]).job_id
    final = client.wait([a, b, c], timeout=60)
    assert final[a].status == S.JOB_STATUS_FAILED
    for dependent in (b, c):
        assert final[dependent].status == S.JOB_STATUS_FAILED
        assert final[dependent].status_reason == "Dependent job failed"
        assert len(final[dependent].attempts) == 0


def _fill_cluster(client: Client, gate: Path) -> list[str]:
    """Two jobs that take every vCPU of both agents until `gate` exists."""
    ids = [client.submit_job(f"fill{i}", command=blocker(gate), vcpus=2).job_id for i in range(2)]
    eventually(lambda: all(status(client, j) == S.JOB_STATUS_RUNNING for j in ids), what="fillers RUNNING")
    return ids


def test_cancel_runnable_job(client: Client, tmp_path: Path) -> None:
    gate = tmp_path / "go"
    fillers = _fill_cluster(client, gate)
    job_id = client.submit_job("waits", command=["true"]).job_id
    eventually(lambda: status(client, job_id) == S.JOB_STATUS_RUNNABLE, what="RUNNABLE")
    client.cancel_job(job_id, "Cancelled by user")
    client.cancel_job(job_id, "Cancelled by user")  # idempotent
    job = client.wait([job_id], timeout=30)[job_id]
    assert job.status == S.JOB_STATUS_FAILED
    assert job.status_reason == "Cancelled by user"
    assert len(job.attempts) == 0
    gate.touch()
    assert {j.status for j in client.wait(fillers, timeout=30).values()} == {S.JOB_STATUS_SUCCEEDED}


def test_cancel_leaves_running_job_alone(client: Client, tmp_path: Path) -> None:
    gate = tmp_path / "go"
    job_id = client.submit_job("runs", command=blocker(gate)).job_id
    eventually(lambda: status(client, job_id) == S.JOB_STATUS_RUNNING, what="RUNNING")
    client.cancel_job(job_id, "too late")
    gate.touch()
    assert client.wait([job_id], timeout=30)[job_id].status == S.JOB_STATUS_SUCCEEDED


def test_terminate_running_job_kills_its_process_group(client: Client, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = f"sleep 1000 & echo $! > {pids}.child; echo $$ > {pids}.tmp; mv {pids}.tmp {pids}; wait"
    job_id = client.submit_job("victim", command=["sh", "-c", script]).job_id
    eventually(lambda: pids.exists(), what="the job to record its pids")
    parent, child = int(pids.read_text()), int(Path(f"{pids}.child").read_text())
    assert psutil.pid_exists(parent) and psutil.pid_exists(child)
    client.terminate_job(job_id, "Terminated by test")
    job = client.wait([job_id], timeout=30)[job_id]
    assert job.status == S.JOB_STATUS_FAILED
    assert job.status_reason == "Terminated by test"
    assert len(job.attempts) == 1

    def gone(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    eventually(lambda: gone(parent) and gone(child), timeout=10, what="the whole process group to die")


def test_terminate_runnable_job_fails_it_without_running(client: Client, tmp_path: Path) -> None:
    gate = tmp_path / "go"
    _fill_cluster(client, gate)
    job_id = client.submit_job("never", command=["true"]).job_id
    eventually(lambda: status(client, job_id) == S.JOB_STATUS_RUNNABLE, what="RUNNABLE")
    client.terminate_job(job_id, "not needed")
    job = client.wait([job_id], timeout=30)[job_id]
    assert (job.status, job.status_reason, len(job.attempts)) == (S.JOB_STATUS_FAILED, "not needed", 0)
    gate.touch()


def test_submitjobs_is_all_or_nothing(client: Client) -> None:
    good = batch_pb2.SubmitJobRequest(job_name="ok", container_overrides=batch_pb2.ContainerOverrides(command=["true"]))
    bad = batch_pb2.SubmitJobRequest(job_name="bad name!", container_overrides=batch_pb2.ContainerOverrides(command=["true"]))
    before = list(client.list_jobs())
    with pytest.raises(Exception) as err:
        client.submit_jobs([good, bad])
    assert "jobs[1].job_name" in str(err.value)
    assert list(client.list_jobs()) == before


def test_unknown_queue_and_dependency_are_refused(client: Client) -> None:
    from shoal.errors import NotFound

    with pytest.raises(NotFound, match="job_queue"):
        client.submit_job("x", job_queue="nope", command=["true"])
    with pytest.raises(NotFound, match="depends_on"):
        client.submit_job("x", command=["true"], depends_on=["3f1c1f7e-8a8e-4b59-9a53-7c1d0f1d2a11"])
    assert list(client.list_jobs()) == []


def test_pid_files_are_not_left_by_agents(cluster, tmp_path: Path) -> None:  # noqa: ANN001
    """Stopping the cluster leaves no agent or job process behind."""
    with Client(cluster.address) as c:
        job_id = c.submit_job("long", command=["sleep", "1000"]).job_id
        eventually(lambda: c.describe_job(job_id).status == S.JOB_STATUS_RUNNING, what="RUNNING")
    pids = [p.pid for p in cluster.agent_procs]
    children = [c.pid for p in pids for c in psutil.Process(p).children(recursive=True)]
    assert children, "the agent should have a child process running the job"
    cluster.stop()
    for pid in pids + children:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, pid
    assert os.getpid() not in children
