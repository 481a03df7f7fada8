"""The `shoal` command against a real cluster: what scripts rely on (ids, JSON, exit codes)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from shoal import Client
from shoal.devcluster import LocalCluster

from .conftest import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SHOAL = [sys.executable, "-m", "shoal.cli"]


def shoal(cluster: LocalCluster, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SHOAL_ADDR": cluster.address}
    proc = subprocess.run([*SHOAL, *args], capture_output=True, text=True, env=env, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"shoal {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    return proc


def test_submit_wait_describe_and_list_as_a_script_would(cluster: LocalCluster) -> None:
    out = shoal(cluster, "submit", "--output", "json", "--name", "ok", "--", "sh", "-c", "echo hi", check=True)
    submitted = json.loads(out.stdout)
    assert set(submitted) >= {"jobId", "jobName"} and submitted["jobName"] == "ok"
    ok = submitted["jobId"]
    bad = shoal(cluster, "submit", "--", "sh", "-c", "exit 3", check=True).stdout.strip()

    assert shoal(cluster, "wait", ok, "--timeout", "60").returncode == 0
    assert shoal(cluster, "wait", ok, bad, "--timeout", "60").returncode == 1

    described = json.loads(shoal(cluster, "describe", ok, bad, "--output", "json", check=True).stdout)
    by_id = {j["jobId"]: j for j in described["jobs"]}
    assert by_id[ok]["status"] == "SUCCEEDED" and by_id[bad]["status"] == "FAILED"
    assert by_id[bad]["attempts"][0]["exitCode"] == 3
    for key in ("jobId", "jobName", "jobQueue", "status", "statusReason", "createdAt", "startedAt", "stoppedAt", "attempts"):
        assert key in by_id[ok]
    for key in ("exitCode", "statusReason", "nodeId", "startedAt", "stoppedAt"):
        assert key in by_id[ok]["attempts"][0]

    listed = json.loads(shoal(cluster, "jobs", "list", "--status", "failed", "--output", "json", check=True).stdout)
    assert [j["jobId"] for j in listed["jobSummaryList"]] == [bad]

    assert "hi" in shoal(cluster, "logs", ok, check=True).stdout


def test_wait_times_out_with_exit_2(cluster: LocalCluster) -> None:
    job = shoal(cluster, "submit", "--", "sleep", "30", check=True).stdout.strip()
    assert shoal(cluster, "wait", job, "--timeout", "1").returncode == 2
    shoal(cluster, "terminate", job, "--reason", "done with it", check=True)


def test_nodes_list_json(cluster: LocalCluster) -> None:
    nodes = json.loads(shoal(cluster, "nodes", "list", "--output", "json", check=True).stdout)["nodes"]
    assert sorted(n["nodeId"] for n in nodes) == ["agent-1", "agent-2"]
    for n in nodes:
        assert n["status"] == "READY" and n["computeEnvironment"] == "default"
        assert n["vcpus"] == 2 and n["memoryMib"] == 2048 and n["hostname"]


def test_errors_are_one_line_and_change_nothing(cluster: LocalCluster) -> None:
    before = shoal(cluster, "jobs", "list", "--output", "json", check=True).stdout
    cases = [
        (["submit", "--queue", "nope", "--", "true"], 3, "job_queue"),
        (["submit", "--vcpus", "-1", "--", "true"], 2, "vcpus"),  # refused by the CLI itself
        (["submit", "--vcpus", "5000", "--", "true"], 3, "vcpus"),  # refused by the controller
        (["submit", "--name", "bad name", "--", "true"], 3, "job_name"),
        (["describe", "not-a-job"], 3, "job"),
        (["cancel", "00000000-0000-4000-8000-000000000000", "--reason", "x"], 3, "does not exist"),
        (["submit", "--array-size", "1", "--", "true"], 2, "--array-size"),
        (["queues", "create", "q2", "--compute-env", "missing"], 3, "missing"),
    ]
    for args, code, word in cases:
        proc = shoal(cluster, *args)
        assert proc.returncode == code, (args, proc.returncode, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("shoal: ") and word in lines[0], (args, proc.stderr)
    assert shoal(cluster, "jobs", "list", "--output", "json", check=True).stdout == before


def test_unreachable_controller_exit_4(tmp_path: Path) -> None:
    from shoal.devcluster import free_port

    env = {**os.environ, "SHOAL_ADDR": f"127.0.0.1:{free_port()}"}
    proc = subprocess.run([*SHOAL, "jobs", "list"], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 4
    assert len(proc.stderr.strip().splitlines()) == 1


def test_shoal_up_runs_a_cluster_and_stops_everything_it_started(tmp_path: Path) -> None:
    up = subprocess.Popen(
        [*SHOAL, "up", "--agents", "2", "--port", "0", "--data-dir", str(tmp_path / "up")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        line = up.stdout.readline()  # type: ignore[union-attr]
        assert "ready at" in line, up.stderr.read() if up.poll() is not None else line  # type: ignore[union-attr]
        address = line.rsplit(" ", 1)[1].strip()
        with Client(address) as c:
            assert sorted(n.node_id for n in c.list_nodes()) == ["agent-1", "agent-2"]
            assert [q.job_queue_name for q in c.describe_job_queues()] == ["default"]
            job = c.submit_job("long", command=["sleep", "1000"]).job_id
            eventually(lambda: c.describe_job(job).status == 5, what="job RUNNING")
        descendants = psutil.Process(up.pid).children(recursive=True)
        assert len(descendants) >= 5  # etcd, controller, 2 agents, the job
        up.send_signal(signal.SIGTERM)
        assert up.wait(60) == 0
        for proc in descendants:
            assert not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE, proc
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()


def test_generic_grpc_tools_work_health_and_reflection(cluster: LocalCluster) -> None:
    """What `grpcurl -plaintext ADDR list` relies on: server reflection and standard health."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

    with grpc.insecure_channel(cluster.controller_addrs[0]) as channel:
        services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
        assert {"shoal.v1.Batch", "shoal.v1.AgentGateway", "grpc.health.v1.Health"} <= services
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="shoal.v1.Batch"), timeout=5)
        assert status.status == health_pb2.HealthCheckResponse.SERVING
