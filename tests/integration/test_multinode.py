"""Multi-node parallel jobs on a real cluster: the nodes meet over TCP at the main node's
address, and losing a node's host retries the whole job with no node of the old attempt left."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from shoal import Client
from shoal.devcluster import LocalCluster, ManagedProcess
from shoal.errors import InvalidArgument
from shoal.v1 import batch_pb2, types_pb2

from .conftest import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

S = types_pb2.JobStatus
ACTIVE = (S.JOB_STATUS_STARTING, S.JOB_STATUS_RUNNING)
RENDEZVOUS = str(Path(__file__).resolve().parent.parent / "support" / "rendezvous.py")
SHOAL = [sys.executable, "-m", "shoal.cli"]


def shoal(cluster: LocalCluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SHOAL_ADDR": cluster.address}
    return subprocess.run([*SHOAL, *args], capture_output=True, text=True, env=env, timeout=120)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def crash_host(agent: ManagedProcess) -> None:
    """kill -9 the agent's process group and every job it runs (jobs have sessions of their
    own), as a host crash would."""
    proc = psutil.Process(agent.pid)
    groups = set()
    for child in proc.children(recursive=True):
        with contextlib.suppress(OSError):
            groups.add(os.getpgid(child.pid))
    groups.add(os.getpgid(agent.pid))
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    assert agent.proc is not None
    agent.proc.wait(10)


def pids_of(directory: Path, attempt: int) -> dict[int, psutil.Process]:
    """Node index -> the process that node's script of `attempt` recorded."""
    found = {}
    for path in directory.glob(f"a{attempt}-n*.pid"):
        index = int(path.name.split("-n", 1)[1].removesuffix(".pid"))
        pid, created = path.read_text().split()
        with contextlib.suppress(psutil.NoSuchProcess):
            proc = psutil.Process(int(pid))
            if abs(proc.create_time() - float(created)) < 0.01:
                found[index] = proc
    return found


def alive(procs: dict[int, psutil.Process]) -> list[int]:
    result = []
    for index, proc in procs.items():
        with contextlib.suppress(psutil.NoSuchProcess):
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                result.append(index)
    return result


def test_three_nodes_meet_at_the_main_node_and_the_job_succeeds(cluster_factory, tmp_path: Path) -> None:  # noqa: ANN001
    cluster = cluster_factory(agents=3)
    port = free_port()
    submitted = shoal(cluster, "submit", "--output", "json", "--name", "mpi", "--num-nodes", "3",
                      "--main-node", "1", "--", sys.executable, RENDEZVOUS, str(port), str(tmp_path))  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    job_id = json.loads(submitted.stdout)["jobId"]
    with Client(cluster.address, timeout=30) as client:
        final = client.wait([job_id], timeout=90)[job_id]
        assert final.status == S.JOB_STATUS_SUCCEEDED, final.status_reason
        assert (tmp_path / "a1-arrived").read_text() == "0 2"  # every other node reached the main
        nodes = client.describe_nodes(job_id)
        assert [n.job_id for n in nodes] == [f"{job_id}#{i}" for i in range(3)]
        assert len({n.attempts[-1].node_id for n in nodes}) == 3  # three distinct hosts
        assert [n.node_details.is_main_node for n in nodes] == [False, True, False]
        assert {n.node_details.main_node_address for n in nodes} == {"127.0.0.1"}
        # The parent's status, exit code and times come from the main node.
        assert final.attempts[-1].exit_code == 0 and final.attempts[-1].node_id == nodes[1].attempts[-1].node_id
        assert final.node_properties.num_nodes == 3 and final.node_properties.main_node == 1
        assert final.attempts[-1].main_node_address == "127.0.0.1"

    described = json.loads(shoal(cluster, "describe", f"{job_id}#1", "--output", "json").stdout)["jobs"][0]
    assert described["nodeDetails"]["nodeIndex"] == 1 and described["nodeDetails"]["isMainNode"]
    assert described["status"] == "SUCCEEDED"
    logs = shoal(cluster, "logs", f"{job_id}#1")
    assert logs.returncode == 0 and "nodes [0, 2] arrived at 127.0.0.1" in logs.stdout
    assert f"reached the main node at 127.0.0.1:{port}" in shoal(cluster, "logs", f"{job_id}#2").stdout
    assert "Nodes:" in shoal(cluster, "describe", job_id).stdout

    # A gang larger than the cluster waits, and `why` says how many nodes of its shape exist.
    too_big = shoal(cluster, "submit", "--num-nodes", "4", "--vcpus", "1", "--", "true").stdout.strip()
    why = eventually(lambda: (out := shoal(cluster, "why", too_big).stdout) and "multi-node" in out and out,
                     what="a reason for the 4-node job")  # fmt: skip
    assert "needs 4 node(s) with 1 vCPU, 256 MiB, on distinct nodes" in why
    assert "3 of the 3 node(s) large enough have 1 vCPU, 256 MiB free" in why and "Never fits" in why
    assert shoal(cluster, "cancel", too_big).returncode == 0

    # Terminating a running multi-node job stops every node; it ends FAILED with the reason.
    (tmp_path / "held").mkdir()
    held = shoal(cluster, "submit", "--num-nodes", "2", "--", sys.executable, RENDEZVOUS, str(free_port()),
                 str(tmp_path / "held"), "--hold").stdout.strip()  # fmt: skip
    eventually(lambda: (tmp_path / "held" / "a1-arrived").exists() and len(pids_of(tmp_path / "held", 1)) == 2,
               what="both nodes running")  # fmt: skip
    procs = pids_of(tmp_path / "held", 1)
    assert shoal(cluster, "terminate", f"{held}#1", "--reason", "enough").returncode == 0
    with Client(cluster.address, timeout=30) as client:
        final = client.wait([held], timeout=60)[held]
        assert final.status == S.JOB_STATUS_FAILED and final.status_reason == "enough"
        assert all(n.status in (S.JOB_STATUS_FAILED, S.JOB_STATUS_SUCCEEDED) for n in client.describe_nodes(held))
    assert alive(procs) == []


def test_losing_a_node_host_retries_the_whole_job_and_stops_every_old_node_first(
    cluster_factory, tmp_path: Path  # noqa: ANN001
) -> None:
    cluster = cluster_factory(agents=4)
    port = free_port()
    with Client(cluster.address, timeout=30) as client:
        job_id = client.submit_job(
            "mnp-retry",
            command=[sys.executable, RENDEZVOUS, str(port), str(tmp_path), "--hold"],
            num_nodes=3,
            retry_strategy=2,
        ).job_id
        eventually(lambda: (tmp_path / "a1-arrived").exists() and len(pids_of(tmp_path, 1)) == 3,
                   what="all three nodes of attempt 1 running and met")  # fmt: skip
        old = pids_of(tmp_path, 1)
        nodes = client.describe_nodes(job_id)
        victim_node = nodes[2].node_id  # a node other than the main one (node 0)
        assert victim_node and victim_node != nodes[0].node_id
        victim = next(p for p in cluster.agent_procs if p.name == victim_node)

        crash_host(victim)

        # The retry starts as a whole once the old attempt's nodes have all stopped.
        eventually(lambda: len(pids_of(tmp_path, 2)) == 3 or list(tmp_path.glob("a2-*.overlap")),
                   timeout=60, what="attempt 2 on three nodes")  # fmt: skip
        assert alive(old) == [], "a node of attempt 1 still runs while attempt 2 does"
        assert not list(tmp_path.glob("a2-*.overlap")), "attempt 2 saw processes of attempt 1"
        (tmp_path / "release-2").write_text("")
        final = client.wait([job_id], timeout=60)[job_id]

    assert final.status == S.JOB_STATUS_SUCCEEDED, final.status_reason
    assert [a.attempt for a in final.attempts] == [1, 2]
    first = final.attempts[0]
    assert first.interrupted and first.status_reason.startswith("Host lost"), first.status_reason
    assert "node 2 of 3" in first.status_reason
    with Client(cluster.address, timeout=30) as client:
        children = client.describe_nodes(job_id)
    assert victim_node not in {c.attempts[-1].node_id for c in children}
    # Every node of attempt 1 had ended before any node of attempt 2 started.
    ended_1 = max(c.attempts[0].stopped_at for c in children)
    started_2 = min(c.attempts[1].started_at for c in children)
    assert ended_1 <= started_2
    assert all(c.attempts[1].attempt == 2 for c in children)


def test_bad_node_properties_are_refused_with_the_field_and_nothing_is_written(cluster: LocalCluster) -> None:
    with Client(cluster.address, timeout=30) as client:
        before = len(list(client.list_jobs()))
        bad = batch_pb2.SubmitJobRequest(job_name="bad", container_overrides=batch_pb2.ContainerOverrides(command=["true"]))
        bad.node_properties.num_nodes = 2
        bad.node_properties.node_range_properties.add(target_nodes="0:5", container=types_pb2.ContainerProperties(command=["true"]))
        with pytest.raises(InvalidArgument, match=r"node_properties\.node_range_properties\[0\]\.target_nodes"):
            client.submit_job(bad)
        with pytest.raises(InvalidArgument, match=r"node_properties\.main_node"):
            client.submit_job("bad", command=["true"], num_nodes=2, main_node=2)
        ok = batch_pb2.SubmitJobRequest(job_name="ok", container_overrides=batch_pb2.ContainerOverrides(command=["true"]))
        with pytest.raises(InvalidArgument, match=r"jobs\[1\]\.node_properties\.num_nodes"):
            client.submit_jobs([ok, batch_pb2.SubmitJobRequest(
                job_name="bad", container_overrides=batch_pb2.ContainerOverrides(command=["true"]),
                node_properties=types_pb2.NodeProperties(num_nodes=500))])  # fmt: skip
        definition = batch_pb2.RegisterJobDefinitionRequest(job_definition_name="gap")
        definition.node_properties.num_nodes = 3
        definition.node_properties.node_range_properties.add(target_nodes="0", container=types_pb2.ContainerProperties(command=["true"]))
        with pytest.raises(InvalidArgument, match=r"node\(s\) 1, 2 are in no range"):
            client.register_job_definition(definition)
        assert len(list(client.list_jobs())) == before
        assert client.describe_job_definitions("gap") == []
    refused = shoal(cluster, "submit", "--num-nodes", "2", "--main-node", "5", "--", "true")
    assert refused.returncode == 2 and refused.stderr.startswith("shoal: --main-node")


def test_a_multinode_definition_from_a_file_resolves_per_node_containers(cluster: LocalCluster, tmp_path: Path) -> None:
    path = tmp_path / "allreduce.yaml"
    path.write_text(
        "jobDefinitionName: allreduce\n"
        "type: multinode\n"
        "nodeProperties:\n"
        "  numNodes: 2\n"
        "  nodeRangeProperties:\n"
        "    - {targetNodes: '0', container: {command: [coordinator], vcpus: 1}}\n"
        "    - {targetNodes: '1:', container: {command: [worker, Ref::size], vcpus: 2, memory: 512}}\n"
        "parameters: {size: small}\n"
    )
    assert shoal(cluster, "defs", "register", "--file", str(path)).returncode == 0
    listed = json.loads(shoal(cluster, "defs", "list", "--output", "json").stdout)["jobDefinitions"]
    assert [d["type"] for d in listed if d["jobDefinitionName"] == "allreduce"] == ["multinode"]
    # --num-nodes 3 on a 2-agent cluster: resolved and stored, then it waits (it cannot fit).
    submitted = shoal(cluster, "submit", "--definition", "allreduce", "--num-nodes", "3", "--main-node", "2",
                      "--env", "K=v", "-p", "size=big", "--output", "json")  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    job_id = json.loads(submitted.stdout)["jobId"]
    with Client(cluster.address, timeout=30) as client:
        job = client.describe_job(job_id)
        ranges = job.node_properties.node_range_properties
        assert job.node_properties.num_nodes == 3 and job.node_properties.main_node == 2
        assert [list(r.container.command) for r in ranges] == [["coordinator"], ["worker", "big"]]
        assert all(r.container.environment[0].name == "K" for r in ranges)
        assert list(job.container.command) == ["worker", "big"]  # the parent shows its main node's
        eventually(lambda: "Never fits" in " ".join(client.explain_job(job_id).reasons),
                   what=f"a reason, not {list(client.explain_job(job_id).reasons)}")
        assert client.describe_nodes(job_id) == []  # nodes exist once it is first placed
        client.cancel_job(job_id, "not now")
        assert client.wait([job_id], timeout=30)[job_id].status == S.JOB_STATUS_FAILED


def test_top_level_listing_leaves_out_array_children_and_nodes_whatever_the_filters(
    cluster_factory,  # noqa: ANN001
) -> None:
    cluster = cluster_factory(agents=2)
    with Client(cluster.address, timeout=30) as client:
        array = client.submit_job("arr", command=["true"], array_size=3).job_id
        gang = client.submit_job("gang", command=["true"], num_nodes=2).job_id
        plain = client.submit_job("plain", command=["true"]).job_id
        final = client.wait([array, gang, plain], timeout=90)
        assert {j.status for j in final.values()} == {S.JOB_STATUS_SUCCEEDED}
        everything = {s.job_id for s in client.list_jobs()}
        assert {f"{array}:{i}" for i in range(3)} | {f"{gang}#{i}" for i in range(2)} <= everything
        # With only a status (no queue or name filter), and with a queue: parents only.
        for filters in ({"status": "SUCCEEDED"}, {"queue": "default"}, {}):
            top = [s.job_id for s in client.list_jobs(top_level_only=True, **filters)]
            assert sorted(top) == sorted([array, gang, plain]), filters
