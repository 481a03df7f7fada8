"""kill -9 of the agent process alone, its jobs left running: the host's fence (the agent's log
writer, agent/runtime/fence.py) must stop them before the controller runs them elsewhere.

What "before" means is measured from the host side, never guessed: every attempt process (or
container init) of the victim is watched through a pidfd (`DeathWatch`), which records when it
ended; that time must come before the `started_at` of the job's next attempt. And an intentional
hand-over (SIGUSR2) followed by a restart within the window keeps the job: one attempt.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from agent.attempts import attempt_dir
from agent.runtime.fence import fenced_file_for
from shoal.v1 import types_pb2

from .conftest import eventually
from .harness import DeathWatch, container_exists, container_of, jobs_on, kill9_agent_alone, node_status
from .invariants import check_invariants, read_journal
from .test_agent_loss import ACTIVE, READY, start_and_pick_victim
from .workload import ids

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(150)]

S = types_pb2.JobStatus
PODMAN_AGENT = ["--runtime", "podman", "--image-pull", "never"]


@pytest.fixture
def deaths():  # noqa: ANN201
    watch = DeathWatch()
    yield watch
    watch.close()


def fenced_marker(state_dir: Path, job_id: str, attempt: int) -> Path:
    return Path(fenced_file_for(str(attempt_dir(state_dir, job_id, attempt) / "output.log")))


def test_kill9_of_the_agent_alone_its_jobs_are_dead_before_they_run_elsewhere(
    chaos_cluster, client_for, journal: Path, deaths: DeathWatch
) -> None:  # noqa: ANN001
    cluster = chaos_cluster(agents=3)
    client = client_for(cluster)
    jobs, victim, proc = start_and_pick_victim(client, cluster, journal, "w-long-a")
    seen = read_journal(journal)
    watched: dict[tuple[str, int], int] = {}  # (job, attempt) -> pid of its process
    for job in jobs_on(client, jobs, victim, statuses=ACTIVE):
        run = seen.run(job.job_id, job.current.attempt)
        if run is not None:
            try:
                deaths.watch(run.pid)
            except ProcessLookupError:
                continue  # it just ended by itself
            watched[(job.job_id, job.current.attempt)] = run.pid
    assert watched, f"nothing of {victim} to watch"

    kill9_agent_alone(proc)

    # Nobody re-attaches: after its window the fence stops every attempt the agent left.
    ended = deaths.wait_ended(watched.values())
    report = check_invariants(client, jobs, journal)
    (anchor,) = ids(jobs, ["w-long-a"])
    record = report.records[anchor]
    assert record.status == S.JOB_STATUS_SUCCEEDED, record.status_reason
    assert len(record.attempts) == 2
    assert record.attempts[0].status_reason.startswith("Host lost"), record.attempts[0].status_reason
    for (job_id, attempt), pid in watched.items():
        attempts = {a.attempt: a for a in report.records[job_id].attempts}
        if attempt + 1 in attempts:  # run again: only after the old process was gone
            assert ended[pid] * 1000 < attempts[attempt + 1].started_at, (
                f"{jobs[job_id].name}: attempt {attempt} (pid {pid}) ended at {ended[pid]:.3f}, after attempt "
                f"{attempt + 1} started at {attempts[attempt + 1].started_at / 1000:.3f}"
            )
            assert attempts[attempt].status_reason.startswith("Host lost"), attempts[attempt].status_reason
        # The fence recorded what it did, for the next agent of this state directory.
        if report.journal.run(job_id, attempt).exit_code is None:
            assert fenced_marker(cluster.data_dir / victim, job_id, attempt).exists()

    # The agent comes back: what it finds was stopped by the fence and is stale; nothing changes.
    proc.start()
    eventually(lambda: node_status(client, victim) == READY, what=f"{victim} READY again")
    check_invariants(client, jobs, journal)


def test_kill9_of_the_agent_alone_its_container_is_gone_before_the_job_runs_elsewhere(
    chaos_cluster, client_for, busybox_image: str, deaths: DeathWatch
) -> None:  # noqa: ANN001
    cluster = chaos_cluster(agents=2, agent_args=PODMAN_AGENT)
    client = client_for(cluster)
    job_id = client.submit_job("boxed", image=busybox_image, command=["sh", "-c", "sleep 5"],
                               vcpus=2, retry_strategy=3).job_id  # fmt: skip
    job = eventually(lambda: (j := client.describe_job(job_id)).status == S.JOB_STATUS_RUNNING and j,
                     timeout=60, what="the container job RUNNING")  # fmt: skip
    victim = job.node_id
    container, init = eventually(lambda: container_of("podman", job_id), timeout=60, what="its container")
    deaths.watch(init)
    proc = next(p for p in cluster.agent_procs if p.name == victim)

    kill9_agent_alone(proc)

    ended = deaths.wait_ended([init])[init]
    final = client.wait([job_id], timeout=90)[job_id]
    assert final.status == S.JOB_STATUS_SUCCEEDED, final.status_reason
    first, second = final.attempts
    assert first.status_reason.startswith("Host lost"), first.status_reason
    assert ended * 1000 < second.started_at, (
        f"attempt 1's container ended at {ended:.3f}, after attempt 2 started at {second.started_at / 1000:.3f}"
    )
    assert fenced_marker(cluster.data_dir / victim, job_id, 1).exists()
    # The fence also removed the container it stopped (no agent came back to do it).
    eventually(lambda: not container_exists("podman", container), what=f"container {container} removed")


def test_sigusr2_hand_over_and_a_restart_within_the_window_keep_the_job(
    chaos_cluster, client_for, tmp_path: Path, deaths: DeathWatch
) -> None:  # noqa: ANN001
    cluster = chaos_cluster(agents=1)
    client = client_for(cluster)
    pid_file, release = tmp_path / "job.pid", tmp_path / "release"
    script = f"echo $$ > {pid_file}; while [ ! -e {release} ]; do sleep 0.05; done"
    job_id = client.submit_job("upgraded-under", command=["sh", "-c", script], retry_strategy=3).job_id
    eventually(lambda: pid_file.exists() and pid_file.read_text().strip(), what="the job running")
    pid = int(pid_file.read_text())
    deaths.watch(pid)
    agent = cluster.agent_procs[0]

    os.kill(agent.pid, signal.SIGUSR2)
    assert agent.proc is not None and agent.proc.wait(15) == 0
    assert "hand-over granted" in agent.tail(10)
    agent.start()  # same --state-dir, within the hand-over window
    eventually(lambda: node_status(client, agent.name) == READY, what="the new agent READY")

    job = client.describe_job(job_id)
    assert (job.status, job.current.attempt, len(job.attempts)) == (S.JOB_STATUS_RUNNING, 1, 0)
    assert deaths.ended_at(pid) is None, "the fence stopped a job that was handed over in time"
    release.touch()
    final = client.wait([job_id], timeout=30)[job_id]
    assert final.status == S.JOB_STATUS_SUCCEEDED, final.status_reason
    assert [a.exit_code for a in final.attempts] == [0]
    assert deaths.wait_ended([pid])


def test_sigstop_of_the_agent_alone_its_jobs_are_stopped_before_they_run_elsewhere(
    chaos_cluster, client_for, journal: Path, deaths: DeathWatch
) -> None:  # noqa: ANN001
    """A stuck agent (SIGSTOP, its jobs running on) cannot fence itself: its lease with the host's
    fence runs out after the fence timeout, and the fence stops its jobs before the controller
    gives up on the agent (agent-lost timeout) and runs them elsewhere."""
    cluster = chaos_cluster(agents=3)
    client = client_for(cluster)
    jobs, victim, proc = start_and_pick_victim(client, cluster, journal, "w-long-a", long_seconds=14)
    seen = read_journal(journal)
    watched: dict[tuple[str, int], int] = {}
    for job in jobs_on(client, jobs, victim, statuses=ACTIVE):
        run = seen.run(job.job_id, job.current.attempt)
        if run is not None:
            try:
                deaths.watch(run.pid)
            except ProcessLookupError:
                continue
            watched[(job.job_id, job.current.attempt)] = run.pid
    assert proc.proc is not None

    os.kill(proc.proc.pid, signal.SIGSTOP)
    try:
        ended = deaths.wait_ended(watched.values())
        (anchor,) = ids(jobs, ["w-long-a"])
        eventually(lambda: client.describe_job(anchor).node_id != victim, timeout=60, what="w-long-a moved on")
    finally:
        os.kill(proc.proc.pid, signal.SIGCONT)
    eventually(lambda: node_status(client, victim) == READY, what=f"{victim} READY again")

    report = check_invariants(client, jobs, journal)
    for (job_id, attempt), pid in watched.items():
        attempts = {a.attempt: a for a in report.records[job_id].attempts}
        if attempt + 1 in attempts:
            assert ended[pid] * 1000 < attempts[attempt + 1].started_at, (
                f"{jobs[job_id].name}: attempt {attempt} ended at {ended[pid]:.3f}, after attempt {attempt + 1} "
                f"started at {attempts[attempt + 1].started_at / 1000:.3f}"
            )
            assert attempts[attempt].status_reason.startswith("Host lost"), attempts[attempt].status_reason
    assert report.records[anchor].status == S.JOB_STATUS_SUCCEEDED
