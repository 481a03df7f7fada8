"""MANAGED compute environments with the `local` provisioner: grow under a burst, shrink when idle.

The cluster starts with no agent at all; every node comes from the controller's own local
provisioner (agent processes it starts and stops on this host).
"""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from shoal import Client, InvalidArgument
from shoal.devcluster import LocalCluster
from shoal.v1 import types_pb2

from .conftest import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

S = types_pb2.JobStatus
N = types_pb2.NodeStatus


def blocker(gate: Path) -> list[str]:
    return ["sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.05; done"]


def local_agents(cluster: LocalCluster) -> list[psutil.Process]:
    """Agent processes started by the controller's local provisioner for this cluster."""
    marker = str(cluster.data_dir / "controller" / "local-provisioner")
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        # The agent itself (`python -m agent ... --state-dir <marker>/<node>`), not its jobs.
        if "agent" in cmdline and "--node-id" in cmdline and any(marker in part for part in cmdline):
            found.append(proc)
    return found


def live_nodes(client: Client, env: str) -> list[types_pb2.Node]:
    return [n for n in client.list_nodes(env) if n.status != N.NODE_STATUS_LOST]


def make_burst_env(client: Client, name: str = "burst", max_vcpus: int = 6) -> None:
    client.create_compute_environment(
        name,
        type="MANAGED",
        min_vcpus=0,
        max_vcpus=max_vcpus,
        provisioner="local",
        node_vcpus=2,
        node_memory_mib=1024,
    )
    client.create_job_queue(name, [name])


def test_local_managed_env_grows_to_max_under_a_burst_and_shrinks_to_min(
    cluster_factory, tmp_path: Path
) -> None:
    cluster = cluster_factory(agents=0, controller_args=["--scale-in-idle", "2"])
    gate = tmp_path / "go"
    with Client(cluster.address, timeout=30) as client:
        make_burst_env(client)
        assert client.list_nodes("burst") == []

        ids = [
            client.submit_job(
                f"b{i}", job_queue="burst", command=blocker(gate), vcpus=1, memory_mib=128
            ).job_id
            for i in range(12)
        ]
        # 12 x 1 vCPU need 6 nodes of 2 vCPUs; max 6 vCPUs allows 3.
        eventually(lambda: len(live_nodes(client, "burst")) == 3, timeout=40, what="3 managed nodes")
        env = client.describe_compute_environments(["burst"])[0]
        assert env.desired_vcpus == 6

        def six_running() -> list[types_pb2.Job]:
            running = [j for j in client.describe_jobs(ids) if j.status == S.JOB_STATUS_RUNNING]
            return running if len(running) == 6 else []

        running = eventually(six_running, timeout=40, what="6 jobs RUNNING (2 per node)")
        assert {j.node_id for j in running} == {n.node_id for n in live_nodes(client, "burst")}
        assert all(n.node_id.startswith("burst-auto-") for n in live_nodes(client, "burst"))
        # Never more than the maximum, also while the burst waits.
        assert len(live_nodes(client, "burst")) == 3
        assert len(local_agents(cluster)) == 3
        # The 6 jobs that wait say why: the environment cannot grow any further.
        # (The scaling loop sees the new nodes on its next round: wait for it, do not race it.)
        waiting = next(j for j in client.describe_jobs(ids) if j.status == S.JOB_STATUS_RUNNABLE)
        eventually(
            lambda: any("Managed environment burst is at its maximum" in r for r in client.explain_job(waiting.job_id).reasons),
            timeout=20, what="`shoal why` to say the environment is at its maximum",
        )  # fmt: skip

        gate.touch()
        final = client.wait(ids, timeout=60)
        assert {j.status for j in final.values()} == {S.JOB_STATUS_SUCCEEDED}

        # Idle for 2 s: drained, removed, and the agents are gone.
        eventually(lambda: client.list_nodes("burst") == [], timeout=40, what="the env to shrink to 0 nodes")
        eventually(lambda: not local_agents(cluster), timeout=20, what="the local agents to exit")
        assert client.describe_compute_environments(["burst"])[0].desired_vcpus == 0
    cluster.stop()
    assert not local_agents(cluster)


def test_stopping_the_controller_stops_the_agents_it_started(cluster_factory, tmp_path: Path) -> None:
    cluster = cluster_factory(agents=0)
    gate = tmp_path / "never"
    with Client(cluster.address, timeout=30) as client:
        make_burst_env(client, max_vcpus=4)
        client.submit_job("one", job_queue="burst", command=blocker(gate), vcpus=2, memory_mib=128)
        client.submit_job("two", job_queue="burst", command=blocker(gate), vcpus=2, memory_mib=128)
        eventually(lambda: len(live_nodes(client, "burst")) == 2, timeout=40, what="2 managed nodes")
        assert len(local_agents(cluster)) == 2
    for proc in cluster.controller_procs:
        proc.stop()
    assert not local_agents(cluster), "agents outlived their controller"


def test_managed_env_needs_a_provisioner_that_fits_under_max(cluster: LocalCluster) -> None:
    with Client(cluster.address, timeout=30) as client:
        with pytest.raises(InvalidArgument, match="provisioner"):
            client.create_compute_environment("m1", type="MANAGED", max_vcpus=4)
        with pytest.raises(InvalidArgument, match="node_vcpus"):
            client.create_compute_environment(
                "m2", type="MANAGED", max_vcpus=4, provisioner="local", node_memory_mib=512
            )
        with pytest.raises(InvalidArgument, match="max_vcpus"):
            client.create_compute_environment(
                "m3", type="MANAGED", max_vcpus=1, provisioner="local", node_vcpus=2, node_memory_mib=512
            )
        with pytest.raises(InvalidArgument, match="command"):
            client.create_compute_environment(
                "m4", type="MANAGED", max_vcpus=4, provisioner="command", node_vcpus=2, node_memory_mib=512
            )
        with pytest.raises(InvalidArgument, match="only MANAGED"):
            client.create_compute_environment("u1", provisioner="local", node_vcpus=2, node_memory_mib=512)
        env = client.create_compute_environment(
            "m5", type="MANAGED", max_vcpus=4, provisioner="command", provisioner_command=["true"],
            node_vcpus=2, node_memory_mib=512,
        )  # fmt: skip
        assert (env.provisioner.kind, list(env.provisioner.command), env.provisioner.node_vcpus) == (
            "command",
            ["true"],
            2,
        )
        with pytest.raises(InvalidArgument, match="max_vcpus"):
            client.update_compute_environment("m5", max_vcpus=1)
        updated = client.update_compute_environment(
            "m5", provisioner="local", node_vcpus=1, node_memory_mib=256
        )
        assert (updated.provisioner.kind, list(updated.provisioner.command)) == ("local", [])
