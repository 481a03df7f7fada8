"""Losing part of the control plane while jobs run: the leader controller, an etcd member.

Neither may cost a running job anything: after a failover every agent gets a fresh grace, so
nothing is requeued, nothing placed twice, nothing lost.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from shoal.devcluster import EtcdServer
from shoal.v1 import types_pb2

from .conftest import eventually
from .harness import leader_address, wait_journalled
from .invariants import check_invariants
from .workload import JobSpec, ids, mixed_workload, submit

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(150)]

S = types_pb2.JobStatus
RUNNING = S.JOB_STATUS_RUNNING


def busy_nodes(client, jobs) -> set[str]:  # noqa: ANN001
    return {j.node_id for j in client.describe_jobs(jobs) if j.status == RUNNING}


def test_kill9_leader_no_job_lost_none_placed_twice(chaos_cluster, client_for, journal: Path) -> None:  # noqa: ANN001
    cluster = chaos_cluster(agents=3, controllers=3)
    client = client_for(cluster)
    old = eventually(lambda: leader_address(cluster), what="a leader")
    jobs = submit(client, mixed_workload(long_seconds=10), journal)
    for node in eventually(lambda: busy_nodes(client, ids(jobs, ["w-long-a"])), what="w-long-a RUNNING"):
        wait_journalled(client, jobs, node, journal)

    cluster.controller_procs[cluster.controller_addrs.index(old)].kill9()

    new = eventually(lambda: leader_address(cluster), timeout=60, what="a new leader")
    assert new != old
    # The new leader places work: a job submitted after the failover runs.
    after = submit(client, [JobSpec("after-failover", 0.5)], journal)
    eventually(lambda: client.describe_jobs(after)[0].status in (RUNNING, S.JOB_STATUS_SUCCEEDED), timeout=60,
               what="the job submitted after the failover placed")  # fmt: skip

    report = check_invariants(client, {**jobs, **after}, journal)
    assert report.interrupted() == {}, "a controller failover requeued running jobs"


def etcd_is_raft_leader(member: EtcdServer) -> bool:
    request = urllib.request.Request(
        f"http://{member.endpoint}/v3/maintenance/status", data=b"{}", method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=2) as resp:
            status = json.loads(resp.read())
    except OSError:
        return False
    return bool(status.get("leader")) and status.get("leader") == status.get("header", {}).get("member_id")


def test_stop_etcd_leader_member_and_bring_it_back(
    etcd_trio, chaos_cluster, client_for, journal: Path
) -> None:  # noqa: ANN001
    # etcd_trio comes first, so it is torn down after the cluster that uses it.
    members = etcd_trio
    cluster = chaos_cluster(agents=3, controllers=2, etcd_endpoint=",".join(m.endpoint for m in members))
    client = client_for(cluster)
    eventually(lambda: leader_address(cluster), what="a leader")
    jobs = submit(client, mixed_workload("before", long_seconds=10), journal)
    for node in eventually(
        lambda: busy_nodes(client, ids(jobs, ["before-long-a"])), what="before-long-a RUNNING"
    ):
        wait_journalled(client, jobs, node, journal)

    # Stop the member that leads etcd's raft group: the hardest one to lose.
    stopped = eventually(
        lambda: next((m for m in members if etcd_is_raft_leader(m)), None), what="etcd's leader"
    )
    stopped.stop()
    # The cluster keeps working on two members: submissions are stored, jobs finish.
    during = submit(client, mixed_workload("during", long_seconds=3), journal)
    eventually(
        lambda: busy_nodes(client, ids(during, ["during-long-a"])),
        timeout=60,
        what="a job submitted without the member RUNNING",
    )

    stopped.start(wait=False)
    stopped.wait_healthy(60)
    after = submit(client, [JobSpec("after-etcd-restart", 0.5)], journal)

    report = check_invariants(client, {**jobs, **during, **after}, journal)
    assert report.interrupted() == {}, "losing one etcd member requeued running jobs"
