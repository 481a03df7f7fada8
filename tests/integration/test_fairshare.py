"""Fair-share scheduling for real: a saturated 4-slot cluster (2 agents x 2 vCPUs, 1-vCPU jobs)
and a queue with a scheduling policy. Shares are measured in vCPU-seconds from the jobs' own
attempt start/stop times (as the agents recorded them), never from the test's clock."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterable

import grpc
import pytest

from shoal import Client, InvalidArgument, NotFound
from shoal.client import build_submit_request
from shoal.devcluster import LocalCluster
from shoal.v1 import batch_pb2, batch_pb2_grpc, types_pb2

from .conftest import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

S = types_pb2.JobStatus
JOB = ["sh", "-c", "sleep 0.2"]


def shoal(cluster: LocalCluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SHOAL_ADDR": cluster.address}
    return subprocess.run([sys.executable, "-m", "shoal.cli", *args], capture_output=True, text=True, env=env, timeout=60)


def fair_queue(client: Client, policy: str, shares: dict[str, float], decay: int = 600) -> str:
    client.create_scheduling_policy(policy, shares, share_decay_seconds=decay)
    client.create_job_queue(f"{policy}-q", ["default"], priority=5, scheduling_policy=policy)
    return f"{policy}-q"


def submit(client: Client, queue: str, shares: Iterable[str], command: list[str] = JOB) -> list[str]:
    requests = [
        build_submit_request(f"{share}-{i}", job_queue=queue, command=command, vcpus=1, memory_mib=64, share_identifier=share)
        for i, share in enumerate(shares)
    ]
    return [r.job_id for r in client.submit_jobs(requests)]


def intervals(jobs: Iterable[types_pb2.Job]) -> list[tuple[int, int]]:
    return [(a.started_at, a.stopped_at) for j in jobs for a in j.attempts if a.started_at and a.stopped_at]


def vcpu_seconds(spans: list[tuple[int, int]], start: int, end: int) -> float:
    """vCPU-seconds (1-vCPU jobs) of the spans, clipped to [start, end]."""
    return sum(max(0, min(b, end) - max(a, start)) for a, b in spans) / 1000


def first_start(jobs: Iterable[types_pb2.Job]) -> list[int]:
    return sorted(j.attempts[0].started_at for j in jobs)


def test_weights_1_and_3_split_a_saturated_cluster_3_to_1_and_a_late_share_is_not_starved(
    cluster_factory: Callable[..., LocalCluster],
) -> None:
    cluster = cluster_factory(agents=2)  # 2 x 2 vCPUs: 4 one-vCPU slots
    with Client(cluster.address, timeout=30) as client:
        queue = fair_queue(client, "teams", {"light": 1.0, "heavy": 3.0})
        # One batch, the two shares interleaved: FIFO would split the slots 1:1.
        ids = submit(client, queue, ["heavy", "light"] * 48)
        final = client.wait(ids, timeout=180)
        assert all(j.status == S.JOB_STATUS_SUCCEEDED for j in final.values())
        by_share = {
            share: [j for j in final.values() if j.share_identifier == share] for share in ("light", "heavy")
        }
        # Measure while both shares still had work queued: from the first start to the last
        # start of the share whose backlog ran out first.
        start = min(first_start(final.values()))
        end = min(max(first_start(by_share["light"])), max(first_start(by_share["heavy"])))
        light = vcpu_seconds(intervals(by_share["light"]), start, end)
        heavy = vcpu_seconds(intervals(by_share["heavy"]), start, end)
        assert heavy > 0, (light, heavy)
        ratio = light / heavy
        assert 2.7 <= ratio <= 3.3, f"light:heavy = {light:.2f}:{heavy:.2f} vCPU-seconds = {ratio:.2f}, expected 3 within 10%"

        # A backlog of one share, then a share that arrives late: it runs right away.
        backlog = submit(client, queue, ["light"] * 40)
        eventually(
            lambda: sum(1 for j in client.describe_jobs(backlog) if j.status != S.JOB_STATUS_RUNNABLE) >= 4,
            what="the backlog to start",
        )
        late = submit(client, queue, ["newcomer"] * 4)
        done = client.wait(backlog + late, timeout=180)
        assert all(j.status == S.JOB_STATUS_SUCCEEDED for j in done.values())
        late_started = max(first_start(done[j] for j in late))
        after = sum(1 for j in backlog if done[j].attempts[0].started_at > late_started)
        # FIFO would start every backlog job before the newcomer's; fair share starts the
        # newcomer's next.
        assert after >= 20, f"only {after} of 40 backlog jobs started after the late share's last one"


def usage_of(client: Client, job_id: str) -> float | None:
    """The share usage `shoal why` reports for a waiting job (None: no such line yet)."""
    for reason in client.explain_job(job_id).reasons:
        match = re.search(r"usage ([0-9.]+) vCPU-seconds", reason)
        if match:
            return float(match.group(1))
    return None


def leader_of(cluster: LocalCluster) -> str:
    for address in cluster.controller_addrs:
        try:
            with grpc.insecure_channel(address) as channel:
                info = batch_pb2_grpc.BatchStub(channel).DescribeCluster(batch_pb2.DescribeClusterRequest(), timeout=2)
        except grpc.RpcError:
            continue
        if info.is_leader:
            return address
    return ""


def test_usage_survives_a_leader_failover_and_keeps_accumulating(cluster_factory: Callable[..., LocalCluster]) -> None:
    cluster = cluster_factory(agents=2, controllers=2)
    with Client(cluster.address, timeout=30) as client:
        queue = fair_queue(client, "survive", {"alice": 1.0})
        ran = submit(client, queue, ["alice"] * 8, command=["sh", "-c", "sleep 0.3"])
        assert all(j.status == S.JOB_STATUS_SUCCEEDED for j in client.wait(ran, timeout=120).values())
        charged = sum(b - a for a, b in intervals(client.describe_jobs(ran))) / 1000
        # A job too big for any node waits forever; `why` shows its share's usage.
        (probe,) = [
            r.job_id
            for r in client.submit_jobs([build_submit_request(
                "probe", job_queue=queue, command=["true"], vcpus=1, memory_mib=4000, share_identifier="alice",
            )])
        ]  # fmt: skip
        before = eventually(lambda: usage_of(client, probe), what="usage in why")
        assert before == pytest.approx(charged, rel=0.05), (before, charged)
        why = shoal(cluster, "why", probe).stdout
        assert "Share alice of fair-share queue survive-q (policy survive): weight 1" in why, why

        old = leader_of(cluster)
        cluster.controller_procs[cluster.controller_addrs.index(old)].kill9()
        new = eventually(lambda: (a := leader_of(cluster)) and a != old and a, timeout=60, what="a new leader")
        assert new != old
        after = eventually(lambda: usage_of(client, probe), timeout=60, what="usage from the new leader")
        # Decayed by a few seconds over a 600 s window, not lost.
        assert 0.9 * before <= after <= before, (before, after)
        more = submit(client, queue, ["alice"] * 4, command=["sh", "-c", "sleep 0.3"])
        assert all(j.status == S.JOB_STATUS_SUCCEEDED for j in client.wait(more, timeout=120).values())
        added = sum(b - a for a, b in intervals(client.describe_jobs(more))) / 1000
        assert usage_of(client, probe) == pytest.approx(after + added, rel=0.05), (after, added)

        # Deleting the queue deletes its usage: a new queue of the same name starts from zero.
        client.cancel_job(probe, "test over")
        assert client.wait([probe], timeout=60)[probe].status == S.JOB_STATUS_FAILED
        client.update_job_queue(queue, state="DISABLED")
        client.delete_job_queue(queue)
        client.create_job_queue(queue, ["default"], scheduling_policy="survive")
        (again,) = [
            r.job_id
            for r in client.submit_jobs([build_submit_request(
                "probe", job_queue=queue, command=["true"], vcpus=1, memory_mib=4000, share_identifier="alice",
            )])
        ]  # fmt: skip
        assert eventually(lambda: usage_of(client, again) is not None, what="why of the new queue")
        assert usage_of(client, again) == 0.0
        client.cancel_job(again, "test over")


def test_policies_and_share_identifiers_are_validated_and_nothing_is_written(
    cluster_factory: Callable[..., LocalCluster],
) -> None:
    cluster = cluster_factory(agents=1)
    with Client(cluster.address, timeout=30) as client:
        with pytest.raises(InvalidArgument, match=r"share_distribution\[0\].weight_factor: must be 0.0001..999.9999"):
            client.create_scheduling_policy("bad", {"a": 0.0})
        with pytest.raises(InvalidArgument, match=r"team-1 overlaps team\*"):
            client.create_scheduling_policy("bad", {"team*": 1.0, "team-1": 2.0})
        with pytest.raises(InvalidArgument, match="compute_reservation: must be 0..99"):
            client.create_scheduling_policy("bad", {"a": 1.0}, compute_reservation=100)
        assert client.describe_scheduling_policies() == []
        with pytest.raises(NotFound, match="scheduling policy 'nope' does not exist"):
            client.create_job_queue("q2", ["default"], scheduling_policy="nope")
        assert [q.job_queue_name for q in client.describe_job_queues()] == ["default"]

        queue = fair_queue(client, "p", {"a": 1.0})
        # A fair-share queue needs a share identifier; a FIFO queue refuses one.
        missing = shoal(cluster, "submit", "--queue", queue, "--", "true")
        assert missing.returncode == 3, missing
        assert "share_identifier: is required on job queue 'p-q', which uses fair-share scheduling policy 'p'" in missing.stderr
        fifo = shoal(cluster, "submit", "--share-identifier", "a", "--", "true")
        assert fifo.returncode == 3 and "job queue 'default' has no scheduling policy" in fifo.stderr
        wildcard = shoal(cluster, "submit", "--queue", queue, "--share-identifier", "a*", "--", "true")
        assert wildcard.returncode == 3 and "a '*' wildcard is for policies" in wildcard.stderr
        priority = shoal(cluster, "submit", "--queue", queue, "--share-identifier", "a", "--scheduling-priority", "10000", "--", "true")
        assert priority.returncode == 3 and "scheduling_priority_override: must be 0..9999" in priority.stderr
        assert list(client.list_jobs()) == []

        # Submit-time overrides win over the definition's priority.
        client.register_job_definition("prio", command=["true"], scheduling_priority=7)
        ok = shoal(cluster, "submit", "--queue", queue, "--share-identifier", "a", "--definition", "prio", "--", "true")
        over = shoal(cluster, "submit", "--queue", queue, "--share-identifier", "a", "--definition", "prio",
                     "--scheduling-priority", "42", "--", "true")  # fmt: skip
        jobs = client.describe_jobs([ok.stdout.strip(), over.stdout.strip()])
        assert [(j.share_identifier, j.scheduling_priority) for j in jobs] == [("a", 7), ("a", 42)]

        # The CLI round trip of a policy; a queue in use keeps its policy.
        made = shoal(cluster, "policies", "create", "cli", "--share", "x=1", "--share", "y*=2.5", "--decay-seconds", "60")
        assert made.returncode == 0, made
        listed = shoal(cluster, "policies", "list").stdout
        assert "cli" in listed and "x=1,y*=2.5" in listed
        assert shoal(cluster, "policies", "update", "cli", "--share", "x=4", "--compute-reservation", "10").returncode == 0
        (policy,) = client.describe_scheduling_policies(["cli"])
        assert (policy.fairshare_policy.compute_reservation, policy.fairshare_policy.share_decay_seconds) == (10, 0)
        assert [(s.share_identifier, s.weight_factor) for s in policy.fairshare_policy.share_distribution] == [("x", 4.0)]
        in_use = shoal(cluster, "policies", "delete", "p")
        assert in_use.returncode == 3 and "used by job queue(s) p-q" in in_use.stderr
        fifo_to_fair = shoal(cluster, "queues", "update", "default", "--scheduling-policy", "cli")
        assert fifo_to_fair.returncode == 3 and "is a FIFO queue" in fifo_to_fair.stderr
        assert shoal(cluster, "queues", "update", queue, "--scheduling-policy", "cli").returncode == 0
        assert client.describe_job_queues([queue])[0].scheduling_policy == "cli"
        assert shoal(cluster, "policies", "delete", "p").returncode == 0
        assert [p.name for p in client.describe_scheduling_policies()] == ["cli"]
