"""An agent restarted on the same host (kill -9 of the agent alone, then started again, as
systemd's Restart= does) re-attaches to the jobs it started instead of losing them, if it is back
within the host fence's window; otherwise the fence (the agent's log writer) stops them.

The agents run with `--fence-window 5`: a restart within the window keeps the jobs (with the
default 0.5 s a Python agent does not come back in time: the fence stops them and they are
retried). The controller derives its wait from the window the agent reports (window + fence kill
grace + margin). ManagedProcess.kill9 kills the agent's whole process group: jobs, the agent's
log writer and the podman CLI run in sessions of their own, so they survive it, as they survive
a crash.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from shoal import Client
from shoal.devcluster import LocalCluster
from shoal.v1 import types_pb2
from tests.support.waiting import alive

from .conftest import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

FENCE_WINDOW = ["--fence-window", "5"]
PODMAN_AGENT = ["--runtime", "podman", "--image-pull", "never", *FENCE_WINDOW]
SUCCEEDED, FAILED, RUNNING = types_pb2.JOB_STATUS_SUCCEEDED, types_pb2.JOB_STATUS_FAILED, types_pb2.JOB_STATUS_RUNNING


def attempt_dir(cluster: LocalCluster, job_id: str) -> Path:
    return cluster.data_dir / "agent-1" / "attempts" / job_id / "1"


def log_has(cluster: LocalCluster, job_id: str, text: str) -> Callable[[], bool]:
    path = attempt_dir(cluster, job_id) / "output.log"
    return lambda: path.exists() and text in path.read_text()


def writer_pid(cluster: LocalCluster, job_id: str) -> int | None:
    """The pid of the log writer writing the job's attempt, from the agent's state on disk (its
    state file, or a started-attempt line not merged into it yet); None if not there yet."""
    state_dir = cluster.data_dir / "agent-1"
    records = []
    with contextlib.suppress(OSError, ValueError):
        records += json.loads((state_dir / "attempts.json").read_text())["attempts"]
    with contextlib.suppress(OSError):
        for line in (state_dir / "started.jsonl").read_text().splitlines():
            with contextlib.suppress(ValueError):
                records.append(json.loads(line))
    for record in records:
        if record.get("job_id") == job_id and record.get("handle"):
            return int(record["handle"]["writer_pid"])
    return None



def wait_for(path: Path) -> str:
    """Shell that waits until the test creates `path` (how a test steps a job along)."""
    return f"while [ ! -e {path} ]; do sleep 0.05; done"


def running(client: Client, job_id: str) -> Callable[[], bool]:
    return lambda: client.describe_job(job_id).status == RUNNING


def logs(client: Client, job_id: str) -> str:
    return b"".join(client.get_job_logs(job_id)).decode()


def crash_and_restart_agent(cluster: LocalCluster, while_down: Callable[[], None] = lambda: None) -> None:
    agent = cluster.agent_procs[0]
    agent.kill9()
    while_down()
    agent.start()  # same argv, same --state-dir


@pytest.fixture
def cluster(cluster_factory: Callable[..., LocalCluster]) -> LocalCluster:
    return cluster_factory(agents=1, agent_args=FENCE_WINDOW)


def test_a_job_keeps_running_through_an_agent_crash_and_keeps_its_logs(cluster: LocalCluster, tmp_path: Path) -> None:
    mid, end = tmp_path / "mid", tmp_path / "end"
    script = f"echo before; {wait_for(mid)}; echo during; {wait_for(end)}; echo after"
    with Client(cluster.address, timeout=30) as client:
        job_id = client.submit_job("survivor", command=["sh", "-c", script]).job_id
        eventually(running(client, job_id), what="the job to run")
        eventually(log_has(cluster, job_id, "before"), what="its first line")
        writer = eventually(lambda: writer_pid(cluster, job_id), what="the attempt's handle on disk")

        def job_prints_while_the_agent_is_down() -> None:
            assert alive(writer), "the agent's log writer should survive a kill -9 of the agent"
            mid.touch()
            eventually(log_has(cluster, job_id, "during"), what="output written while no agent runs")

        crash_and_restart_agent(cluster, job_prints_while_the_agent_is_down)
        cluster.wait_nodes_ready(1, 30)
        assert client.describe_job(job_id).status == RUNNING
        end.touch()

        final = client.wait([job_id], timeout=30)[job_id]
        assert final.status == SUCCEEDED, final.status_reason
        (attempt,) = final.attempts
        assert attempt.exit_code == 0
        text = logs(client, job_id)
        assert [line.split(" ", 3)[-1] for line in text.splitlines() if " stdout " in line] == [
            "before", "during", "after"]
        assert (attempt_dir(cluster, job_id) / "output.written").exists()  # the writer's "complete" marker


def test_a_job_that_ends_while_the_agent_is_down_keeps_its_exit_code(cluster: LocalCluster, tmp_path: Path) -> None:
    release = tmp_path / "release"
    with Client(cluster.address, timeout=30) as client:
        job_id = client.submit_job("ends-alone", command=["sh", "-c", f"{wait_for(release)}; echo bye; exit 3"]).job_id
        eventually(running(client, job_id), what="the job to run")

        def job_ends_while_the_agent_is_down() -> None:
            release.touch()
            exit_file = attempt_dir(cluster, job_id) / "output.exit"
            eventually(lambda: exit_file.exists() and exit_file.read_text() == "3\n", what="the job's exit status on disk")

        crash_and_restart_agent(cluster, job_ends_while_the_agent_is_down)

        final = client.wait([job_id], timeout=30)[job_id]
        assert (final.status, final.status_reason) == (FAILED, "Essential container in task exited")
        (attempt,) = final.attempts
        assert attempt.exit_code == 3
        assert "stdout F bye" in logs(client, job_id)


def test_a_container_job_keeps_running_through_an_agent_crash(
    cluster_factory: Callable[..., LocalCluster], busybox_image: str
) -> None:
    cluster = cluster_factory(agents=1, agent_args=PODMAN_AGENT)
    with Client(cluster.address, timeout=30) as client:
        job_id = client.submit_job("in-a-container", image=busybox_image,
                                   command=["sh", "-c", "echo before; sleep 4; echo after; exit 4"]).job_id
        eventually(running(client, job_id), what="the container job to run")
        eventually(log_has(cluster, job_id, "before"), what="its first line")

        crash_and_restart_agent(cluster)

        final = client.wait([job_id], timeout=60)[job_id]
        assert (final.status, final.status_reason) == (FAILED, "Essential container in task exited")
        (attempt,) = final.attempts
        assert attempt.exit_code == 4
        text = logs(client, job_id)
        assert "stdout F before" in text and "stdout F after" in text


def test_sigusr2_restarts_the_agent_without_stopping_its_jobs(cluster: LocalCluster, tmp_path: Path) -> None:
    """The upgrade path: SIGUSR2 = exit now, leaving the attempts to the next agent process."""
    release = tmp_path / "release"
    with Client(cluster.address, timeout=30) as client:
        job_id = client.submit_job("upgraded-under", command=["sh", "-c", f"{wait_for(release)}; exit 0"]).job_id
        eventually(running(client, job_id), what="the job to run")
        agent = cluster.agent_procs[0]

        os.kill(agent.pid, signal.SIGUSR2)
        assert agent.proc is not None and agent.proc.wait(15) == 0
        assert "leaving attempts running" in agent.tail(5)
        agent.start()
        release.touch()

        final = client.wait([job_id], timeout=30)[job_id]
        assert final.status == SUCCEEDED, final.status_reason
        assert [a.exit_code for a in final.attempts] == [0]


def test_an_agent_back_after_the_fence_window_reports_its_job_stopped_by_the_fence(
    cluster_factory: Callable[..., LocalCluster], tmp_path: Path
) -> None:
    """The default window (0.5 s): the fence stops the job of the dead agent; the next agent finds
    the fence's record and reports the attempt lost, so the job is retried (here the controller
    is told to wait long, so that it hears of the attempt from the agent, not from its timeout)."""
    cluster = cluster_factory(agents=1, controller_args=["--fence-margin", "60"])
    pid_file, release = tmp_path / "job.pid", tmp_path / "release"
    script = f"echo $$ > {pid_file}; {wait_for(release)}"
    with Client(cluster.address, timeout=30) as client:
        job_id = client.submit_job("fenced", command=["sh", "-c", script], retry_strategy=2).job_id
        eventually(lambda: pid_file.exists() and pid_file.read_text().strip(), what="the job running")
        job_pid = int(pid_file.read_text())
        fenced = attempt_dir(cluster, job_id) / "output.fenced"

        def fence_stops_the_job() -> None:
            eventually(lambda: not alive(job_pid), what="the fence stopping the job")
            assert fenced.read_text().strip() == "Host lost: agent exited and its jobs were stopped"

        crash_and_restart_agent(cluster, fence_stops_the_job)
        release.touch()  # attempt 2 (on the same node: the only one) ends at once

        final = client.wait([job_id], timeout=60)[job_id]
        assert final.status == SUCCEEDED, final.status_reason
        first, second = final.attempts
        assert first.status_reason == "Host lost: agent exited and its jobs were stopped"
        assert not first.HasField("exit_code")  # lost with its host: no result
        assert second.exit_code == 0
