"""Container jobs end to end: submit with an image -> podman on the agent -> result and logs.

Agents run with `--runtime podman --image-pull never` and the busybox-static image imported
without a registry (tests/support/images.py). podman missing is a failure, not a skip.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import pytest

from shoal import Client
from shoal.devcluster import LocalCluster
from shoal.v1 import batch_pb2, types_pb2

from .conftest import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

PODMAN_AGENT = ["--runtime", "podman", "--image-pull", "never"]
SUCCEEDED, FAILED, RUNNING = types_pb2.JOB_STATUS_SUCCEEDED, types_pb2.JOB_STATUS_FAILED, types_pb2.JOB_STATUS_RUNNING


@pytest.fixture
def podman_cluster(cluster_factory: Callable[..., LocalCluster], busybox_image: str) -> LocalCluster:
    return cluster_factory(agents=1, agent_args=PODMAN_AGENT)


def shoal(cluster: LocalCluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SHOAL_ADDR": cluster.address}
    return subprocess.run([sys.executable, "-m", "shoal.cli", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_container_jobs_succeed_fail_with_reasons_and_keep_their_logs(
    podman_cluster: LocalCluster, busybox_image: str
) -> None:
    with Client(podman_cluster.address, timeout=30) as client:
        ok = client.submit_job(
            "in-a-container", image=busybox_image, environment={"GREETING": "hello"},
            command=["sh", "-c", 'echo "$GREETING from $SHOAL_JOB_ID"; [ -d /usr ] || echo "no /usr: busybox image"'],
        ).job_id
        oom = client.submit_job("oom", image=busybox_image, memory_mib=32,
                                command=["sh", "-c", "head -c 200000000 /dev/zero | tail -c 200000000 >/dev/null"]).job_id
        slow = client.submit_job("slow", image=busybox_image, command=["sleep", "1000"], timeout=1).job_id
        missing = client.submit_job("missing", image="localhost/shoal-test/no-such-image:1", command=["true"]).job_id
        plain = client.submit_job("no-image", command=["sh", "-c", "echo on the host"]).job_id

        final = client.wait([ok, oom, slow, missing, plain], timeout=120)

        assert final[ok].status == SUCCEEDED, final[ok].status_reason
        assert final[plain].status == SUCCEEDED, final[plain].status_reason
        assert (final[oom].status, final[oom].status_reason) == (
            FAILED, "OutOfMemoryError: container killed due to memory usage")
        assert (final[slow].status, final[slow].status_reason) == (FAILED, "Job attempt duration exceeded timeout")
        assert final[missing].status == FAILED
        assert final[missing].status_reason.startswith(
            "CannotStartContainerError: image 'localhost/shoal-test/no-such-image:1' is not available")

    logs = shoal(podman_cluster, "logs", ok)
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout.splitlines() == [f"hello from {ok}", "no /usr: busybox image"]
    why = shoal(podman_cluster, "logs", missing)
    assert "[shoal] CannotStartContainerError: image" in why.stdout
    stamped = shoal(podman_cluster, "logs", "--timestamps", "--attempt", "1", ok).stdout.splitlines()[0]
    stamp, stream, text = stamped.split(" ", 2)
    assert stamp.endswith("Z") and (stream, text) == ("stdout", f"hello from {ok}")


def test_logs_follow_streams_lines_while_the_container_runs(podman_cluster: LocalCluster, busybox_image: str) -> None:
    with Client(podman_cluster.address, timeout=30) as client:
        job = client.submit_job(
            "chatty", image=busybox_image,
            command=["sh", "-c", "echo first; while [ ! -e /tmp/never ]; do sleep 0.1; done"],
        ).job_id
        eventually(lambda: client.describe_jobs([job])[0].status == RUNNING, what="the job to run")
        env = {**os.environ, "SHOAL_ADDR": podman_cluster.address}
        follower = subprocess.Popen([sys.executable, "-m", "shoal.cli", "logs", "--follow", job],
                                    stdout=subprocess.PIPE, text=True, env=env)
        try:
            assert follower.stdout is not None
            assert follower.stdout.readline() == "first\n"  # streamed while the job still runs
            assert client.describe_jobs([job])[0].status == RUNNING
            client.terminate_job(job, "enough")
            assert follower.wait(timeout=60) == 0  # --follow ends when the attempt does
        finally:
            if follower.poll() is None:
                follower.kill()
                follower.wait()
        assert client.wait([job], timeout=60)[job].status == FAILED


def test_definition_mounts_user_and_workdir_reach_the_container(
    podman_cluster: LocalCluster, busybox_image: str, tmp_path
) -> None:
    """Every container field travels controller -> agent -> podman, not just image and command."""
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "input.txt").write_text("from the host\n")
    readonly = tmp_path / "ro"
    readonly.mkdir()
    with Client(podman_cluster.address, timeout=30) as client:
        client.register_job_definition(
            batch_pb2.RegisterJobDefinitionRequest(
                job_definition_name="mounted",
                container_properties=types_pb2.ContainerProperties(
                    image=busybox_image,
                    command=["sh", "-c", "cat /data/input.txt > /data/out.txt; pwd >> /data/out.txt; "
                                         "id -u >> /data/out.txt; touch /ro/x 2>/dev/null && echo writable >> /data/out.txt; true"],
                    working_dir="/tmp",
                    user="0",
                    mounts=[
                        types_pb2.Mount(source_path=str(shared), container_path="/data"),
                        types_pb2.Mount(source_path=str(readonly), container_path="/ro", read_only=True),
                    ],
                ),
            )
        )
        job = client.submit_job(batch_pb2.SubmitJobRequest(job_name="m", job_definition="mounted")).job_id
        final = client.wait([job], timeout=60)[job]
    assert final.status == SUCCEEDED, final.status_reason
    assert (shared / "out.txt").read_text().splitlines() == ["from the host", "/tmp", "0"]
