"""Gang placement of multi-node jobs in place(): all or none, distinct nodes, backfill, and the
reservation that keeps a waiting gang from being starved by smaller jobs behind it."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

import pytest

from controller.scheduler import JobView, NodeView, Plan, Resources, Snapshot, place
from controller.scheduler.snapshot import NodeRequest
from tests.unit.builders import job, mib, node, nodes, queue, snapshot

pytestmark = pytest.mark.unit

def gang(job_id: str, n: int, *, vcpus: float = 1, memory: str | int = "1Gi", queue: str = "q",
         shapes: list[tuple[float, str | int]] | None = None, runtime: str = "") -> JobView:  # fmt: skip
    """A multi-node job of n nodes of one shape (or one node per entry of `shapes`)."""
    sizes = shapes or [(vcpus, memory)] * n
    needs = tuple(NodeRequest(Resources.from_vcpus(c, mib(m)), runtime) for c, m in sizes)
    order = job(job_id, queue=queue).order  # submitted now: after every job built before it
    return JobView(job_id, queue, needs[0].request, order, runtime, gang=needs)


def check(snap: Snapshot, plan: Plan) -> None:
    """Invariants with gangs: every job placed once or waiting; a gang's nodes distinct, all
    in one environment of its queue; no node over its free capacity."""
    runnable = {j.job_id: j for j in snap.runnable}
    placed = [p.job_id for p in plan.placements] + [g.job_id for g in plan.gangs]
    assert len(placed) == len(set(placed)), "a job was placed twice"
    assert not set(placed) & set(plan.waiting)
    assert set(placed) | set(plan.waiting) == set(runnable)
    free = {n.node_id: n for n in snap.nodes}
    used: dict[str, Resources] = defaultdict(lambda: Resources(0, 0, 0))
    for p in plan.placements:
        used[p.node_id] = used[p.node_id] + runnable[p.job_id].request
    for g in plan.gangs:
        job = runnable[g.job_id]
        assert len(g.node_ids) == len(job.gang), "a gang placed in part"
        assert len(set(g.node_ids)) == len(g.node_ids), f"{g.job_id}: two of its nodes on one node"
        assert {free[n].compute_environment for n in g.node_ids} == {g.compute_environment}
        assert g.compute_environment in snap.queues[job.queue].compute_environments
        for need, node_id in zip(job.gang, g.node_ids, strict=True):
            used[node_id] = used[node_id] + need.request
    for node_id, total in used.items():
        assert total.fits_in(free[node_id].free), f"{node_id} over capacity"


def plan_of(snap: Snapshot) -> Plan:
    plan = place(snap)
    check(snap, plan)
    # Leaving a queue early must not change the decision (gangs keep a queue open).
    full = place(snap, early_stop=False)
    assert (full.placements, full.gangs, dict(full.waiting)) == (plan.placements, plan.gangs, dict(plan.waiting))
    return plan


def test_a_gang_gets_one_distinct_node_per_node_index():
    snap = snapshot(nodes=nodes(4, cpus=2, memory="4Gi"), jobs=[gang("g", 3, vcpus=2)])
    plan = plan_of(snap)
    (placement,) = plan.gangs
    assert len(set(placement.node_ids)) == 3 and placement.compute_environment == "a"
    assert plan.placements == [] and "g" not in plan.waiting


def test_all_or_none_a_gang_that_does_not_fit_takes_nothing():
    # 3 nodes, one of them full: 2 of the 3 nodes fit; nothing is held for the gang.
    snap = snapshot(
        nodes=[*nodes(2, cpus=2, memory="4Gi"), node("busy", cpus=2, memory="4Gi", used_cpus=2)],
        jobs=[gang("g", 3, vcpus=1), small := job("s", vcpus=2, memory="1Gi")],
    )
    plan = plan_of(snap)
    assert plan.gangs == []
    # The capacity the gang could not use went to the job behind it.
    assert [p.job_id for p in plan.placements] == [small.job_id]
    assert plan.waiting["g"] == (
        "Waiting for capacity: multi-node job needs 3 node(s) with 1 vCPU, 1024 MiB, on distinct nodes; "
        "in a: 2 of the 3 node(s) large enough have 1 vCPU, 1024 MiB free"
    )
    assert plan.passed_over == {"g"}


def test_nodes_of_a_gang_never_share_a_node_even_when_one_node_could_hold_them_all():
    snap = snapshot(nodes=[node("big", cpus=64, memory="64Gi")], jobs=[gang("g", 2, vcpus=1)])
    plan = plan_of(snap)
    assert plan.gangs == []
    assert plan.waiting["g"].startswith("Never fits as configured: multi-node job needs 2 node(s)")
    assert "no compute environment of the queue has that many nodes that large" in plan.waiting["g"]


def test_mixed_node_shapes_are_matched_hardest_first():
    # Node 0 wants a big node; greedy in index order could give the big node to node 1.
    snap = snapshot(
        nodes=[node("big", cpus=8, memory="8Gi"), node("small", cpus=1, memory="1Gi")],
        jobs=[gang("g", 2, shapes=[(1, "1Gi"), (8, "8Gi")])],
    )
    (placement,) = plan_of(snap).gangs
    assert placement.node_ids == ("small", "big")


def test_a_gang_stays_in_one_compute_environment():
    snap = snapshot(
        queues=[queue("q", envs=["a", "b"])],
        nodes=[*nodes(1, cpus=2, env="a"), *nodes(2, cpus=2, env="b")],
        jobs=[gang("g", 2, vcpus=1)],
    )
    (placement,) = plan_of(snap).gangs
    assert placement.compute_environment == "b" and set(placement.node_ids) == {"b-n0", "b-n1"}


def test_a_waiting_gang_does_not_block_smaller_jobs_behind_it():
    snap = snapshot(
        nodes=nodes(2, cpus=4, memory="8Gi"),
        jobs=[gang("g", 3, vcpus=1), *(job(f"s{i}", vcpus=1) for i in range(8))],
    )
    plan = plan_of(snap)
    assert plan.gangs == [] and len(plan.placements) == 8


def test_early_stop_still_looks_at_a_gang_behind_jobs_that_cannot_fit():
    # The single jobs fail first; the queue must not be left before the gang was looked at.
    snap = snapshot(
        nodes=nodes(3, cpus=2, memory="4Gi"),
        jobs=[*(job(f"huge{i}", vcpus=32) for i in range(3)), gang("g", 3, vcpus=1)],
    )
    plan = plan_of(snap)
    assert [g.job_id for g in plan.gangs] == ["g"]


def test_a_gang_passed_over_enough_times_reserves_its_nodes():
    base = snapshot(
        nodes=[*nodes(2, cpus=2, memory="4Gi"), node("busy", cpus=2, memory="4Gi", used_cpus=1)],
        jobs=[gang("g", 3, vcpus=2), job("s", vcpus=1)],
    )
    # Not yet: the small job behind it takes the free vCPU.
    before = plan_of(replace(base, gang_passes={"g": 2}, gang_reserve_after=3))
    assert [p.job_id for p in before.placements] == ["s"]
    assert "passed over 2 of 3 times" in before.waiting["g"]
    # After 3 passes over it: all three nodes are held for it, so the job behind waits.
    after = plan_of(replace(base, gang_passes={"g": 3}, gang_reserve_after=3))
    assert after.placements == [] and after.gangs == []
    assert after.reservations == {"g": ("a-n0", "a-n1", "busy")}
    assert "reserves node(s) a-n0, a-n1, busy (jobs behind it do not start there)" in after.waiting["g"]
    # reserve_after 0 turns reservations off.
    assert plan_of(replace(base, gang_passes={"g": 99}, gang_reserve_after=0)).reservations == {}


def test_a_reservation_holds_only_what_the_gang_needs_on_a_node_that_has_it_free():
    snap = snapshot(
        nodes=[node("n0", cpus=4, memory="8Gi"), node("busy", cpus=4, memory="8Gi", used_cpus=4)],
        jobs=[gang("g", 2, vcpus=2), job("s", vcpus=2)],
    )
    plan = plan_of(replace(snap, gang_passes={"g": 5}))
    assert plan.reservations == {"g": ("busy", "n0")}
    assert [(p.job_id, p.node_id) for p in plan.placements] == [("s", "n0")]  # n0 has 2 vCPUs beyond the gang's 2


def test_jobs_ahead_of_a_reserving_gang_are_not_held_back():
    snap = snapshot(
        nodes=nodes(2, cpus=2, memory="4Gi"),
        jobs=[job("first", vcpus=1), gang("g", 2, vcpus=2), job("behind", vcpus=1)],
    )
    plan = plan_of(replace(snap, gang_passes={"g": 3}))
    assert [p.job_id for p in plan.placements] == ["first"]  # ahead: placed; behind: waits
    assert "behind" in plan.waiting


def _simulate(reserve_after: int, passes: int = 60) -> int | None:
    """A 3-node gang of whole 2-vCPU nodes, behind a steady stream of 1-vCPU jobs that each run
    3 passes, staggered so the three nodes are never idle at once. Returns the pass in which
    the gang was placed (None = starved), feeding `passed_over` back as the leader does."""
    node_ids = ["n0", "n1", "n2"]
    running: list[tuple[str, str, int]] = []  # (job, node, last pass)
    for i, node_id in enumerate(node_ids):
        running += [(f"warm{i}a", node_id, i), (f"warm{i}b", node_id, i + 1)]
    waiting_small = [job(f"s{i}", vcpus=1, memory="1Gi") for i in range(200)]
    g = gang("g", 3, vcpus=2, memory="1Gi")
    gang_order = g.order
    # The gang was submitted before every small job.
    waiting_small = [replace(j, order=(gang_order[0] + 1 + k, 0)) for k, j in enumerate(waiting_small)]
    passes_over: dict[str, int] = {}
    for tick in range(passes):
        running = [r for r in running if r[2] >= tick]
        used = defaultdict(int)
        for _, node_id, _ in running:
            used[node_id] += 1
        views = [
            NodeView(n, "a", Resources.from_vcpus(2, 4096), Resources.from_vcpus(2 - used[n], 4096 - 1024 * used[n]), True)
            for n in node_ids
        ]
        snap = Snapshot({"q": queue("q")}, {"a": snapshot().envs["a"]}, views, [g, *waiting_small],
                        gang_passes=dict(passes_over), gang_reserve_after=reserve_after)  # fmt: skip
        plan = plan_of(snap)
        if plan.gangs:
            return tick
        for jid in plan.passed_over:
            passes_over[jid] = passes_over.get(jid, 0) + 1
        placed = {p.job_id for p in plan.placements}
        running += [(p.job_id, p.node_id, tick + 2) for p in plan.placements]
        waiting_small = [j for j in waiting_small if j.job_id not in placed]
    return None


def test_without_reservations_a_gang_is_starved_by_smaller_jobs_behind_it():
    assert _simulate(reserve_after=0) is None


def test_with_reservations_a_gang_starts_once_the_work_on_its_nodes_has_ended():
    placed_at = _simulate(reserve_after=3)
    assert placed_at is not None
    # 3 passes over it, then its reserved nodes drain: the small jobs there run at most 3 passes.
    assert placed_at <= 3 + 3


def test_never_fits_counts_distinct_nodes_across_node_shapes():
    # Each shape alone has 2 nodes large enough, but the gang needs 3 distinct ones.
    snap = snapshot(nodes=nodes(2, cpus=2, memory="4Gi"), jobs=[gang("g", 3, shapes=[(1, 256), (2, 512), (2, 512)])])
    reason = plan_of(snap).waiting["g"]
    assert reason.startswith("Never fits as configured: multi-node job needs 1 node(s) with 1 vCPU, 256 MiB, "
                             "2 node(s) with 2 vCPUs, 512 MiB, on distinct nodes")  # fmt: skip
