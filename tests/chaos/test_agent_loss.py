"""Losing an agent while jobs of several lengths run: crash, freeze, partition, termination notice.

Every scenario ends with `check_invariants` (see invariants.py): no job lost, every job in the
final state its retry strategy implies, each result committed once, and no two attempts of a
job alive at the same time (save the documented exceptions: a frozen host's stale attempt until
it is killed on wake-up, a noticed host's attempts during the agent's kill grace).
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from shoal.devcluster import LocalCluster
from shoal.v1 import types_pb2

from .conftest import AGENT_KILL_GRACE, FENCE_TIMEOUT, LOST_TIMEOUT, eventually
from .harness import (
    NetNamespace,
    crash_host,
    freeze_host,
    groups_alive,
    job_groups,
    jobs_on,
    netns_unavailable,
    node_status,
    wait_journalled,
)
from .invariants import Freeze, check_invariants
from .workload import ids, mixed_workload, submit

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(150)]

S = types_pb2.JobStatus
RUNNING = S.JOB_STATUS_RUNNING
ACTIVE = (S.JOB_STATUS_STARTING, S.JOB_STATUS_RUNNING)
READY = types_pb2.NODE_STATUS_READY
LOST = types_pb2.NODE_STATUS_LOST


def agent_proc(cluster: LocalCluster, node: str):  # noqa: ANN201
    return next(p for p in cluster.agent_procs if p.name == node)


def start_and_pick_victim(client, cluster: LocalCluster, journal: Path, anchor: str, **kw):  # noqa: ANN001, ANN003, ANN201
    """Submit the mixed workload; the victim is the node running job `anchor` (a long one)."""
    jobs = submit(client, mixed_workload(**kw), journal)
    (anchor_id,) = ids(jobs, [anchor])
    job = eventually(
        lambda: next((j for j in client.describe_jobs([anchor_id]) if j.status == RUNNING), None),
        what=f"{anchor} RUNNING",
    )
    victim = job.node_id
    wait_journalled(client, jobs, victim, journal)
    return jobs, victim, agent_proc(cluster, victim)


def moved_off(client, job_ids: list[str], node: str) -> bool:  # noqa: ANN001
    """None of `job_ids` is still active on `node`."""
    return not jobs_on(client, job_ids, node, statuses=ACTIVE)


def test_kill9_host_jobs_rerun_elsewhere(chaos_cluster, client_for, journal: Path) -> None:  # noqa: ANN001
    cluster = chaos_cluster(agents=3)
    client = client_for(cluster)
    jobs, victim, proc = start_and_pick_victim(client, cluster, journal, "w-long-a")
    hit = [j.job_id for j in jobs_on(client, jobs, victim, statuses=ACTIVE)]

    crash_host(proc)

    # The broken stream is noticed at once; after the reconnect grace the jobs run elsewhere.
    eventually(lambda: moved_off(client, hit, victim), what=f"jobs of {victim} requeued")
    (anchor,) = ids(jobs, ["w-long-a"])
    eventually(
        lambda: any(j.status == RUNNING and j.node_id != victim for j in client.describe_jobs([anchor])),
        what="w-long-a RUNNING on another agent",
    )
    # The crashed agent comes back: what it still holds is stale, and reporting it changes nothing.
    proc.start()
    eventually(lambda: node_status(client, victim) == READY, what=f"{victim} READY again")

    report = check_invariants(client, jobs, journal)
    lost = report.interrupted()
    assert anchor in lost
    for details in lost.values():
        for d in details:
            assert (d.node_id, d.status_reason) == (victim, "Host lost: agent disconnected")


def test_freeze_host_requeues_and_stale_attempt_dies_on_wake(
    chaos_cluster, client_for, journal: Path
) -> None:  # noqa: ANN001
    cluster = chaos_cluster(agents=3)
    client = client_for(cluster)
    # Long enough that most frozen attempts are still due to run when they wake up.
    jobs, victim, proc = start_and_pick_victim(client, cluster, journal, "w-long-a", long_seconds=14)
    hit = [j.job_id for j in jobs_on(client, jobs, victim, statuses=ACTIVE)]

    frozen = freeze_host(proc)
    try:
        eventually(
            lambda: moved_off(client, hit, victim),
            timeout=LOST_TIMEOUT + 30,
            what=f"jobs of {victim} requeued",
        )
        assert node_status(client, victim) == LOST
    finally:
        frozen.thaw()

    # On waking, the agent finds it heard nothing for longer than its fence timeout: it kills
    # its attempts at once (and the controller calls them stale when it re-registers).
    eventually(
        lambda: not groups_alive(frozen.groups), timeout=30, what="stale attempts killed after wake-up"
    )
    eventually(lambda: node_status(client, victim) == READY, what=f"{victim} READY again")

    report = check_invariants(
        client, jobs, journal,
        freezes=[Freeze(victim, frozen.stopped, frozen.resumed)],
        wake_kill_within=AGENT_KILL_GRACE + 2.0,
    )  # fmt: skip
    lost = report.interrupted()
    assert set(hit) <= set(lost)
    for details in lost.values():
        for d in details:
            assert (d.node_id, d.status_reason) == (victim, f"Host lost: no heartbeat for {LOST_TIMEOUT:g}s")


def test_sigterm_agent_requeues_at_once_and_kills_jobs(chaos_cluster, client_for, journal: Path) -> None:  # noqa: ANN001
    cluster = chaos_cluster(agents=3)
    client = client_for(cluster)
    # The victim runs the stubborn job: it ignores SIGTERM, so only the SIGKILL after the
    # agent's kill grace ends it.
    jobs, victim, proc = start_and_pick_victim(client, cluster, journal, "w-long-c")
    hit = [j.job_id for j in jobs_on(client, jobs, victim, statuses=ACTIVE)]
    groups = job_groups(proc)

    noticed = time.monotonic()
    proc.signal(signal.SIGTERM)

    eventually(lambda: moved_off(client, hit, victim), what=f"jobs of {victim} requeued")
    assert proc.proc is not None
    proc.proc.wait(30)
    assert not groups_alive(groups), "the agent exited and left job processes behind"

    # Strict: the controller requeues at once but starts no new attempt of a job until its
    # interrupted attempt has stopped, so no two attempts overlap even during the kill grace.
    report = check_invariants(client, jobs, journal)
    lost = report.interrupted()
    assert set(hit) <= set(lost)
    for details in lost.values():
        for d in details:
            assert (d.node_id, d.status_reason) == (victim, "Host interrupted: termination notice")
    # Every attempt alive on the victim got SIGTERM; the stubborn one lived on until SIGKILL.
    for job_id in hit:
        attempt = report.attempts(job_id)[0].attempt
        run = report.journal.run(job_id, attempt)
        if run is not None and run.last > noticed:
            assert run.terms, f"attempt {attempt} of {jobs[job_id].name} never got SIGTERM"


@pytest.mark.skipif(bool(netns_unavailable()), reason=netns_unavailable() or "netns available")
def test_partitioned_agent_fences_itself_and_jobs_run_elsewhere(
    chaos_cluster, client_for, journal: Path
) -> None:  # noqa: ANN001
    ns = NetNamespace.create()
    cluster = None
    try:
        # Controllers listen on the root end of the veth pair: the root namespace's agents reach
        # it locally, the namespaced agent through the link that will be cut.
        # Plaintext off loopback needs --insecure: the link is private to this test.
        cluster = chaos_cluster(
            agents=0, controller_host=ns.host_ip, controller_args=["--insecure"], agent_args=["--insecure"]
        )
        # The namespaced agent comes first and gets the long jobs (4 x 0.5 vCPU fill its 2).
        proc = cluster.start_agent(command_prefix=ns.prefix)
        victim = proc.name
        cluster.wait_nodes_ready(1)
        client = client_for(cluster)
        specs = mixed_workload(long_seconds=12)
        jobs = submit(client, [s for s in specs if "-long-" in s.name], journal)
        wait_journalled(client, jobs, victim, journal)
        cluster.start_agent()
        cluster.start_agent()
        cluster.wait_nodes_ready(3)
        jobs.update(submit(client, [s for s in specs if "-long-" not in s.name], journal))
        hit = [j.job_id for j in jobs_on(client, jobs, victim, statuses=ACTIVE)]
        groups = job_groups(proc)

        cut = ns.cut()
        # The agent is alive but hears nothing: after its fence timeout it kills its jobs
        # (SIGTERM, kill grace, SIGKILL), before the controller gives up on it.
        eventually(
            lambda: not groups_alive(groups),
            timeout=FENCE_TIMEOUT + AGENT_KILL_GRACE + 20,
            what="fenced jobs dead",
        )
        fenced_within = time.monotonic() - cut
        assert proc.alive()
        eventually(
            lambda: moved_off(client, hit, victim),
            timeout=LOST_TIMEOUT + 30,
            what=f"jobs of {victim} requeued",
        )

        ns.restore()
        eventually(
            lambda: node_status(client, victim) == READY,
            timeout=30,
            what=f"{victim} READY after the link is back",
        )

        report = check_invariants(client, jobs, journal)
        print(f"partition: jobs of {victim} dead {fenced_within:.2f}s after the cut")
        lost = report.interrupted()
        assert set(hit) <= set(lost)
        for details in lost.values():
            for d in details:
                assert (d.node_id, d.status_reason) == (
                    victim,
                    f"Host lost: no heartbeat for {LOST_TIMEOUT:g}s",
                )
        # Fenced before declared lost: the journal's last line of each stale attempt comes
        # before any other attempt of its job started (check_invariants proved no overlap).
        for job_id in hit:
            runs = report.journal.of(job_id)
            assert (
                runs
                and runs[0].node == victim
                and runs[0].last < cut + FENCE_TIMEOUT + AGENT_KILL_GRACE + 2.0
            )
    finally:
        if cluster is not None:  # the namespaced agent goes before its namespace
            cluster.agent_procs[0].stop()
        ns.delete()
