"""Fair-share order in place(), and the arithmetic behind it, with plain data."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.scheduler import NodeView, Resources, Snapshot, place
from controller.scheduler.fairshare import FairShare, charge, decayed, reserved_fraction, weight_of
from controller.scheduler.snapshot import Lane, shape_of
from tests.unit.builders import check_invariants, jobs, nodes, placed_on, queue, snapshot

pytestmark = pytest.mark.unit


def fair_queue(name: str = "q", **policy) -> object:
    return replace(queue(name), fairshare=FairShare(policy=policy.pop("policy", "p"), **policy))


def plan_of(snap: Snapshot):
    plan = place(snap)
    check_invariants(snap, plan)
    # Leaving a queue early must not change a thing (same placements, same reasons).
    full = place(snap, early_stop=False)
    assert full.placements == plan.placements
    assert dict(full.waiting) == dict(plan.waiting)
    return plan


def shares_of(plan, snap) -> dict[str, int]:
    share = {j.job_id: j.share for j in snap.runnable}
    counts: dict[str, int] = {}
    for p in plan.placements:
        counts[share[p.job_id]] = counts.get(share[p.job_id], 0) + 1
    return counts


# -- arithmetic -------------------------------------------------------------------------------


def test_weight_exact_then_longest_wildcard_then_one():
    weights = {"teamA": 0.5, "team*": 2.0, "teamB*": 4.0}
    assert weight_of("teamA", weights) == 0.5
    assert weight_of("teamB-7", weights) == 4.0  # the longer prefix wins
    assert weight_of("teamC", weights) == 2.0
    assert weight_of("other", weights) == 1.0


def test_decay_halves_after_ln2_times_the_decay_window():
    half = round(60 * math.log(2) * 1000)
    assert decayed(100.0, 1_000, 1_000 + half, 60) == pytest.approx(50.0, rel=1e-3)
    assert decayed(100.0, 1_000, 1_000, 60) == 100.0
    assert decayed(100.0, 1_000, 500, 60) == 100.0  # a clock going backwards does not grow it
    assert decayed(100.0, 0, 10_000, 0) == 0.0  # no window: only current usage counts
    # Charging decays what was there first, then adds.
    assert charge(100.0, 1_000, 1_000 + half, 60, 10.0) == pytest.approx(60.0, rel=1e-3)


def test_reservation_fraction_shrinks_with_active_shares():
    assert reserved_fraction(50, 1) == 0.5
    assert reserved_fraction(50, 2) == 0.25
    assert reserved_fraction(50, 3) == 0.125
    assert reserved_fraction(0, 3) == 0.0


# -- ordering ---------------------------------------------------------------------------------


def test_weight_1_gets_three_times_the_slots_of_weight_3():
    snap = snapshot(
        queues=[fair_queue(weights={"A": 1.0, "B": 3.0})],
        nodes=nodes(1, cpus=8),
        # B submitted first: FIFO would give it everything.
        jobs=jobs(n=20, share="B", name="b") + jobs(n=20, share="A", name="a"),
    )
    plan = plan_of(snap)
    assert shares_of(plan, snap) == {"A": 6, "B": 2}


def test_running_jobs_count_against_their_share():
    # A already runs 3 vCPUs in this queue: the one free slot goes to B (load 3x1 = 3 > 3x0).
    snap = snapshot(
        queues=[fair_queue(weights={"A": 1.0, "B": 3.0}, running={"A": 3000})],
        nodes=nodes(1, cpus=1),
        jobs=jobs(n=5, share="A", name="a") + jobs(n=5, share="B", name="b"),
    )
    assert shares_of(plan_of(snap), snap) == {"B": 1}


def test_decayed_usage_puts_a_heavy_past_user_last():
    # Equal weights, nothing running; A used 600 vCPU-seconds over a 60 s window (load 10).
    snap = snapshot(
        queues=[fair_queue(decay_seconds=60, usage={"A": 600.0, "B": 30.0})],
        nodes=nodes(1, cpus=4),
        jobs=jobs(n=10, share="A", name="a") + jobs(n=10, share="B", name="b"),
    )
    plan = plan_of(snap)
    assert shares_of(plan, snap) == {"B": 4}
    # Without a decay window past usage does not count: the slots are split.
    no_window = snapshot(
        queues=[fair_queue(decay_seconds=0, usage={"A": 600.0})],
        nodes=nodes(1, cpus=4),
        jobs=jobs(n=10, share="A", name="a") + jobs(n=10, share="B", name="b"),
    )
    assert shares_of(plan_of(no_window), no_window) == {"A": 2, "B": 2}


def test_a_late_share_goes_before_the_backlog():
    early = jobs(n=50, share="A", name="a")
    late = jobs(n=2, share="C", name="c")
    snap = snapshot(
        queues=[fair_queue(decay_seconds=600, usage={"A": 6000.0}, running={"A": 2000})],
        nodes=nodes(1, cpus=2),
        jobs=early + late,
    )
    assert set(placed_on(plan_of(snap))) == {"c0", "c1"}


def test_wildcard_entries_weigh_each_identifier_separately():
    # "user*" weighs 3 and each user is its own share; "boss" weighs 1.
    snap = snapshot(
        queues=[fair_queue(weights={"user*": 3.0, "boss": 1.0})],
        nodes=nodes(1, cpus=5),
        jobs=jobs(n=9, share="user1", name="u") + jobs(n=9, share="user2", name="v") + jobs(n=9, share="boss", name="b"),
    )
    counts = shares_of(plan_of(snap), snap)
    assert counts["boss"] == 3 and counts["user1"] == 1 and counts["user2"] == 1


def test_priority_first_within_a_share_then_age():
    low = jobs(n=2, share="A", name="low", priority=1)
    high = jobs(n=2, share="A", name="high", priority=9)
    snap = snapshot(queues=[fair_queue()], nodes=nodes(1, cpus=3), jobs=low + high)
    plan = plan_of(snap)
    assert [p.job_id for p in plan.placements] == ["high0", "high1", "low0"]
    assert "next in queue q" in plan.waiting["low1"]


def test_backfill_within_fair_order():
    big = jobs(n=1, share="A", name="big", vcpus=8)
    small = jobs(n=3, share="A", name="small", vcpus=1)
    snap = snapshot(queues=[fair_queue()], nodes=nodes(1, cpus=2), jobs=big + small)
    plan = plan_of(snap)
    assert set(placed_on(plan)) == {"small0", "small1"}
    assert plan.waiting["big0"].startswith("Needs 8 vCPUs")


def test_compute_reservation_keeps_capacity_for_inactive_shares():
    # 50% with one active share: half of the 8 vCPUs stays free.
    snap = snapshot(
        queues=[fair_queue(compute_reservation=50)],
        nodes=nodes(1, cpus=8),
        jobs=jobs(n=10, share="A", name="a"),
    )
    plan = plan_of(snap)
    assert len(plan.placements) == 4
    assert plan.waiting["a4"].startswith("Fair-share compute reservation: the 1 active share identifier(s)")
    # Two active shares: 25% is kept, 6 of 8 vCPUs are used.
    two = snapshot(
        queues=[fair_queue(compute_reservation=50)],
        nodes=nodes(1, cpus=8),
        jobs=jobs(n=10, share="A", name="a") + jobs(n=10, share="B", name="b"),
    )
    assert shares_of(plan_of(two), two) == {"A": 3, "B": 3}


def test_fifo_queue_beside_a_fair_one_keeps_fifo():
    fifo = jobs(queue="f", n=3, name="f", share="")
    snap = snapshot(
        queues=[fair_queue("fair", weights={"A": 1.0}), replace(queue("f"), priority=5)],
        nodes=nodes(1, cpus=4),
        jobs=fifo + jobs(queue="fair", n=3, share="A", name="x"),
    )
    plan = plan_of(snap)
    assert [p.job_id for p in plan.placements] == ["f0", "f1", "f2", "x0"]


def test_lanes_input_gives_the_same_plan():
    all_jobs = jobs(n=30, share="B", name="b") + jobs(n=30, share="A", name="a", vcpus=2)
    snap = snapshot(queues=[fair_queue(weights={"A": 1.0, "B": 3.0})], nodes=nodes(2, cpus=8), jobs=all_jobs)
    lanes = {"q": Lane(sorted(all_jobs, key=lambda j: j.order), frozenset(shape_of(j) for j in all_jobs))}
    via_lanes = place(Snapshot(snap.queues, snap.envs, snap.nodes, lanes=lanes))
    assert via_lanes.placements == place(snap).placements


# -- GPUs -------------------------------------------------------------------------------------


def gpu_node(node_id: str, ids: tuple[str, ...], free_ids: tuple[str, ...] | None = None, cpus: float = 8) -> NodeView:
    capacity = Resources.from_vcpus(cpus, 16384, len(ids))
    free_ids = ids if free_ids is None else free_ids
    free = Resources(capacity.milli_vcpus, capacity.memory_mib, len(free_ids))
    return NodeView(node_id, "a", capacity, free, True, frozenset({"process"}), gpu_ids=free_ids)


def test_gpu_jobs_get_distinct_devices_per_node():
    snap = snapshot(
        nodes=[gpu_node("g0", ("0", "1")), gpu_node("g1", ("0", "1"))],
        jobs=jobs(n=5, gpus=1, name="g"),
    )
    plan = plan_of(snap)
    assert len(plan.placements) == 4
    given = [(p.node_id, p.gpu_ids) for p in plan.placements]
    assert sorted(given) == [("g0", ("0",)), ("g0", ("1",)), ("g1", ("0",)), ("g1", ("1",))]
    assert plan.waiting["g4"].startswith("Waiting for GPUs: needs 1 vCPU, 1024 MiB, 1 GPU;")


def test_gpu_ids_in_use_are_never_given_again():
    # Device "0" is held by a running attempt: only "1" is free.
    snap = snapshot(nodes=[gpu_node("g0", ("0", "1"), free_ids=("1",))], jobs=jobs(n=2, gpus=1, name="g"))
    plan = plan_of(snap)
    assert [(p.job_id, p.gpu_ids) for p in plan.placements] == [("g0", ("1",))]


def test_multi_gpu_job_gets_that_many_devices_and_cpu_jobs_none():
    snap = snapshot(
        nodes=[gpu_node("g0", ("0", "1", "2", "3"))],
        jobs=jobs(n=1, gpus=3, name="three") + jobs(n=1, name="cpu") + jobs(n=1, gpus=2, name="two"),
    )
    plan = plan_of(snap)
    got = {p.job_id: p.gpu_ids for p in plan.placements}
    assert got == {"three0": ("0", "1", "2"), "cpu0": ()}
    assert plan.waiting["two0"].startswith("Waiting for GPUs")


def test_free_count_is_capped_by_the_ids_known():
    # The counts say 2 free, but only one id is free: one job, never a made-up device.
    capacity = Resources.from_vcpus(8, 16384, 2)
    view = NodeView("g0", "a", capacity, capacity, True, frozenset({"process"}), gpu_ids=("1",))
    snap = snapshot(nodes=[view], jobs=jobs(n=2, gpus=1, name="g"))
    assert [p.gpu_ids for p in plan_of(snap).placements] == [("1",)]


# -- properties -------------------------------------------------------------------------------

SHARE_NAMES = ["a", "b", "c-1", "c-2"]


@st.composite
def fair_snapshots(draw):
    node_list = []
    for i in range(draw(st.integers(0, 5))):
        ids = tuple(f"g{k}" for k in range(draw(st.integers(0, 3))))
        free_ids = tuple(g for g in ids if draw(st.booleans()))
        cap = Resources(draw(st.sampled_from([1000, 2000, 4000])), 4096, len(ids))
        free = Resources(draw(st.integers(0, cap.milli_vcpus)), draw(st.integers(0, 4096)), len(free_ids))
        node_list.append(NodeView(f"n{i}", "a", cap, free, True, frozenset({"process"}), gpu_ids=free_ids))
    fair = FairShare(
        weights=draw(st.dictionaries(st.sampled_from(["a", "b", "c-*"]), st.sampled_from([0.5, 1.0, 3.0]))),
        decay_seconds=draw(st.sampled_from([0, 60])),
        compute_reservation=draw(st.sampled_from([0, 0, 30, 90])),
        usage=draw(st.dictionaries(st.sampled_from(SHARE_NAMES), st.floats(0, 1000))),
        running=draw(st.dictionaries(st.sampled_from(SHARE_NAMES), st.integers(0, 4000))),
        policy="p",
    )
    queues = [replace(queue("q"), fairshare=fair), replace(queue("f"), priority=draw(st.integers(0, 2)))]
    job_list = []
    for i in range(draw(st.integers(0, 25))):
        q = draw(st.sampled_from(["q", "q", "f"]))
        job_list += jobs(
            queue=q, n=1, name=f"j{i}-", vcpus=draw(st.sampled_from([0.5, 1, 2])), memory=draw(st.sampled_from([64, 1024])),
            gpus=draw(st.sampled_from([0, 0, 1, 2])), share=draw(st.sampled_from(SHARE_NAMES)) if q == "q" else "",
            priority=draw(st.sampled_from([0, 0, 5])),
        )  # fmt: skip
    return snapshot(queues=queues, nodes=node_list, jobs=job_list)


@given(fair_snapshots())
@settings(max_examples=150, deadline=None)
def test_fair_share_plans_keep_the_invariants_and_never_share_a_device(snap: Snapshot) -> None:
    plan = plan_of(snap)  # invariants + early stop changes nothing
    free_ids = {n.node_id: set(n.gpu_ids or ()) for n in snap.nodes}
    request = {j.job_id: j.request for j in snap.runnable}
    for p in plan.placements:
        assert len(p.gpu_ids) == request[p.job_id].gpus
        assert set(p.gpu_ids) <= free_ids[p.node_id], "a device that is not free"
        free_ids[p.node_id] -= set(p.gpu_ids)  # each device given at most once
    # Within a share, a job never starts while an older job of the same shape, priority and
    # share waits (fair share changes the order between shares, not within one).
    placed = {p.job_id for p in plan.placements}
    for waiting_id in plan.waiting:
        w = next(j for j in snap.runnable if j.job_id == waiting_id)
        if w.queue != "q":
            continue
        for j in snap.runnable:
            if j.job_id in placed and j.queue == "q" and j.share == w.share and j.priority == w.priority and j.order > w.order:
                assert shape_of(j) != shape_of(w), f"{j.job_id} started before the older {w.job_id}"
