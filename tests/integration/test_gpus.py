"""GPUs as a resource, for real: agents declaring 2 GPUs each (`shoal agent --gpus 2`, the way
hosts without GPUs run this), jobs asking for them, the devices each attempt gets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from shoal import Client
from shoal.devcluster import LocalCluster
from shoal.v1 import types_pb2

from .conftest import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

S = types_pb2.JobStatus
GPU_AGENT = ["--gpus", "2"]


def shoal(cluster: LocalCluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SHOAL_ADDR": cluster.address}
    return subprocess.run([sys.executable, "-m", "shoal.cli", *args], capture_output=True, text=True, env=env, timeout=60)


def gpu_job(client: Client, name: str, out_dir: Path, gate: Path, gpus: int = 1) -> str:
    """A job that records the devices it sees, then waits for `gate`."""
    script = (
        f'echo "$CUDA_VISIBLE_DEVICES|$NVIDIA_VISIBLE_DEVICES" > {out_dir}/$SHOAL_JOB_ID.tmp && '
        f"mv {out_dir}/$SHOAL_JOB_ID.tmp {out_dir}/$SHOAL_JOB_ID; "
        f"while [ ! -e {gate} ]; do sleep 0.05; done"
    )
    return client.submit_job(name, command=["sh", "-c", script], vcpus=0.5, memory_mib=64, gpus=gpus).job_id


def seen(out_dir: Path, job_id: str) -> Callable[[], str]:
    path = out_dir / job_id
    return lambda: path.read_text().strip() if path.exists() else ""


def test_four_one_gpu_jobs_share_two_agents_devices_and_a_fifth_waits_for_a_gpu(
    cluster_factory: Callable[..., LocalCluster], tmp_path: Path
) -> None:
    cluster = cluster_factory(agents=2, agent_args=GPU_AGENT)
    gates = {i: tmp_path / f"gate{i}" for i in range(6)}
    with Client(cluster.address, timeout=30) as client:
        nodes = client.list_nodes()
        assert {(n.node_id, n.gpus, tuple(n.gpu_ids)) for n in nodes} == {
            ("agent-1", 2, ("0", "1")),
            ("agent-2", 2, ("0", "1")),
        }
        first = [gpu_job(client, f"g{i}", tmp_path, gates[i]) for i in range(4)]
        devices = {j: eventually(seen(tmp_path, j), what=f"{j} to record its devices") for j in first}
        jobs = {j.job_id: j for j in client.describe_jobs(first)}
        assert all(j.status == S.JOB_STATUS_RUNNING for j in jobs.values())
        by_node: dict[str, list[str]] = {}
        for job_id, job in jobs.items():
            assert len(job.gpu_ids) == 1
            # What the attempt sees is what the scheduler assigned.
            assert devices[job_id] == f"{job.gpu_ids[0]}|{job.gpu_ids[0]}"
            by_node.setdefault(job.node_id, []).append(job.gpu_ids[0])
        # Two on each agent, never the same device twice on one agent.
        assert {node: sorted(ids) for node, ids in by_node.items()} == {"agent-1": ["0", "1"], "agent-2": ["0", "1"]}

        fifth = gpu_job(client, "g4", tmp_path, gates[4])
        reasons = eventually(
            lambda: [r for r in client.explain_job(fifth).reasons if "GPU" in r], what="the fifth job's reason"
        )
        assert client.describe_job(fifth).status == S.JOB_STATUS_RUNNABLE
        assert reasons[0].startswith("Waiting for GPUs: needs 0.5 vCPUs, 64 MiB, 1 GPU;"), reasons
        why = shoal(cluster, "why", fifth)
        assert why.returncode == 0 and "Waiting for GPUs" in why.stdout, why
        listed = json.loads(shoal(cluster, "nodes", "list", "--output", "json").stdout)["nodes"]
        assert {(n["nodeId"], n["gpus"], n["gpusFree"]) for n in listed} == {("agent-1", 2, 0), ("agent-2", 2, 0)}

        # A job that asks for no GPU on a GPU node sees none of them.
        cpu_only = client.submit_job(
            "cpu", command=["sh", "-c", f'echo "[$CUDA_VISIBLE_DEVICES]|$NVIDIA_VISIBLE_DEVICES" > {tmp_path}/cpu'],
            vcpus=0.5, memory_mib=64,
        ).job_id  # fmt: skip
        assert client.wait([cpu_only], timeout=60)[cpu_only].status == S.JOB_STATUS_SUCCEEDED
        assert (tmp_path / "cpu").read_text().strip() == "[]|void"

        # One GPU job ends: the fifth gets exactly the device it freed.
        freed = jobs[first[0]]
        gates[0].touch()
        assert client.wait([first[0]], timeout=60)[first[0]].status == S.JOB_STATUS_SUCCEEDED
        assert eventually(seen(tmp_path, fifth), what="the fifth job to start") == f"{freed.gpu_ids[0]}|{freed.gpu_ids[0]}"
        fifth_job = client.describe_job(fifth)
        assert (fifth_job.node_id, list(fifth_job.gpu_ids)) == (freed.node_id, list(freed.gpu_ids))
        # The finished attempt keeps a record of the device it had.
        assert list(client.describe_job(first[0]).attempts[0].gpu_ids) == list(freed.gpu_ids)
        for gate in gates.values():
            gate.touch()
        final = client.wait([*first, fifth], timeout=60)
        assert all(j.status == S.JOB_STATUS_SUCCEEDED for j in final.values())


def test_bad_gpu_requests_are_refused_and_nothing_is_written(cluster_factory: Callable[..., LocalCluster]) -> None:
    cluster = cluster_factory(agents=1, agent_args=GPU_AGENT)
    with Client(cluster.address, timeout=30) as client:
        before = len(list(client.list_jobs()))
        too_many = shoal(cluster, "submit", "--gpus", "5000", "--", "true")
        assert too_many.returncode == 3 and "container_overrides.gpus: must be <= 1024" in too_many.stderr
        negative = shoal(cluster, "submit", "--gpus", "-1", "--", "true")
        assert negative.returncode == 2 and "--gpus" in negative.stderr
        assert len(list(client.list_jobs())) == before
        # More GPUs than any node has: it waits, and why says which node is largest.
        big = client.submit_job("big", command=["true"], vcpus=0.5, memory_mib=64, gpus=4).job_id
        reason = eventually(lambda: [r for r in client.explain_job(big).reasons if "GPU" in r], what="reason")[0]
        assert "largest node in compute environment(s) default has 2 vCPUs, 2048 MiB, 2 GPUs" in reason
        client.cancel_job(big, "test over")


def test_an_agent_restart_keeps_each_attempts_devices(cluster_factory: Callable[..., LocalCluster], tmp_path: Path) -> None:
    cluster = cluster_factory(agents=1, agent_args=GPU_AGENT, controller_args=["--reconnect-grace", "5"])
    gate = tmp_path / "gate"
    with Client(cluster.address, timeout=30) as client:
        held = gpu_job(client, "held", tmp_path, gate)
        before = eventually(seen(tmp_path, held), what="the job to start")
        assigned = list(client.describe_job(held).gpu_ids)
        agent = cluster.agent_procs[0]
        agent.kill9()  # the job runs on in its own session; the agent re-attaches to it
        agent.start()
        cluster.wait_nodes_ready(1)
        job = client.describe_job(held)
        assert (job.status, list(job.gpu_ids), len(job.attempts)) == (S.JOB_STATUS_RUNNING, assigned, 0)
        # The re-attached attempt still holds its device: a new job gets the other one, and
        # a third waits for a GPU.
        other = gpu_job(client, "other", tmp_path, gate)
        got = eventually(seen(tmp_path, other), what="the second job to start")
        assert got != before and set(client.describe_job(other).gpu_ids) == {"0", "1"} - set(assigned)
        third = gpu_job(client, "third", tmp_path, gate)
        eventually(lambda: any("Waiting for GPUs" in r for r in client.explain_job(third).reasons), what="third waits")
        assert client.describe_job(held).gpu_ids == assigned
        gate.touch()
        final = client.wait([held, other, third], timeout=60)
        assert all(j.status == S.JOB_STATUS_SUCCEEDED for j in final.values())
        assert final[held].attempts[0].gpu_ids == assigned
