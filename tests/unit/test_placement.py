"""place(snapshot): policy, reasons, invariants, and a brute-force reference under hypothesis."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.scheduler import JobView, NodeView, QueueView, Resources, Snapshot, place
from controller.scheduler.snapshot import EnvView, Lane, shape_of
from tests.unit.builders import check_invariants, job, jobs, node, nodes, placed_on, queue, snapshot

pytestmark = pytest.mark.unit


def plan_of(snap: Snapshot):
    plan = place(snap)
    check_invariants(snap, plan)
    return plan


# -- packing and order ------------------------------------------------------------------------


def test_33_one_vcpu_jobs_on_two_16_vcpu_nodes():
    snap = snapshot(nodes=nodes(2, cpus=16, memory="64Gi", env="a"), jobs=jobs(queue="q", n=33, vcpus=1))
    plan = plan_of(snap)
    where = placed_on(plan)
    assert len(where) == 32
    # Best fit fills one node before starting the other (tie on an empty cluster: node id).
    assert [where[f"q-j{i}"] for i in range(16)] == ["a-n0"] * 16
    assert [where[f"q-j{i}"] for i in range(16, 32)] == ["a-n1"] * 16
    assert plan.waiting == {
        "q-j32": "Waiting for capacity: needs 1 vCPU, 1024 MiB; no node in a has that free (next in queue q)"
    }


def test_fifo_by_submission_order_not_list_order():
    early = jobs(queue="q", n=3, vcpus=1, name="early")
    late = jobs(queue="q", n=3, vcpus=1, name="late")
    snap = snapshot(nodes=nodes(1, cpus=3), jobs=list(reversed(late + early)))
    plan = plan_of(snap)
    assert sorted(placed_on(plan)) == ["early0", "early1", "early2"]
    assert plan.waiting == {
        "late0": "Waiting for capacity: needs 1 vCPU, 1024 MiB; no node in a has that free (next in queue q)",
        "late1": "Waiting for capacity: needs 1 vCPU, 1024 MiB; no node in a has that free (1 job ahead in queue q)",
        "late2": "Waiting for capacity: needs 1 vCPU, 1024 MiB; no node in a has that free (2 jobs ahead in queue q)",
    }
    # Placements come out in FIFO order too.
    assert [p.job_id for p in plan.placements] == ["early0", "early1", "early2"]


@pytest.mark.parametrize(
    ("priorities", "winner"),
    [
        ({"hi": 10, "lo": 1}, "hi"),
        ({"hi": 1, "lo": 10}, "lo"),
        ({"hi": 5, "lo": 5}, "hi"),  # tie: by queue name
    ],
)
def test_queue_priority_decides_who_gets_scarce_capacity(priorities, winner):
    queues = [queue(name, envs=["a"], priority=p) for name, p in priorities.items()]
    # The losing queue's jobs are submitted first: priority beats FIFO across queues.
    loser = "lo" if winner == "hi" else "hi"
    snap = snapshot(
        queues=queues,
        nodes=nodes(1, cpus=4),
        jobs=jobs(queue=loser, n=4) + jobs(queue=winner, n=4),
    )
    plan = plan_of(snap)
    assert sorted(placed_on(plan)) == [f"{winner}-j{i}" for i in range(4)]
    assert all(job_id.startswith(loser) for job_id in plan.waiting)


def test_compute_environments_tried_in_queue_order():
    snap = snapshot(
        queues=[queue("q", envs=["b", "a"])],
        nodes=nodes(1, cpus=2, env="a") + nodes(1, cpus=2, env="b"),
        jobs=jobs(queue="q", n=4),
    )
    plan = plan_of(snap)
    assert [(p.job_id, p.compute_environment) for p in plan.placements] == [
        ("q-j0", "b"),
        ("q-j1", "b"),
        ("q-j2", "a"),
        ("q-j3", "a"),
    ]


@pytest.mark.parametrize(
    ("free", "request_", "expected"),
    [
        # (node id, free vCPUs, free memory) ... ; job (vCPUs, memory) -> chosen node
        ([("x", 8, "32Gi"), ("y", 4, "32Gi"), ("z", 2, "32Gi")], (2, "1Gi"), "z"),
        ([("x", 8, "32Gi"), ("y", 4, "32Gi"), ("z", 2, "32Gi")], (3, "1Gi"), "y"),
        ([("x", 4, "32Gi"), ("y", 4, "8Gi"), ("z", 4, "16Gi")], (1, "1Gi"), "y"),  # vCPU tie: memory
        ([("x", 4, "32Gi"), ("y", 4, "8Gi"), ("z", 4, "16Gi")], (1, "12Gi"), "z"),  # y too small
        ([("c", 4, "8Gi"), ("b", 4, "8Gi"), ("d", 4, "8Gi")], (1, "1Gi"), "b"),  # full tie: node id
        ([("x", 2, "1Gi"), ("y", 16, "64Gi")], (2, "2Gi"), "y"),  # tight on vCPUs, short of memory
    ],
)
def test_best_fit_leaves_the_least_free(free, request_, expected):
    node_list = [
        node(node_id, cpus=16, memory="64Gi", used_cpus=16 - cpus, used_memory=65536 - int(mem[:-2]) * 1024)
        for node_id, cpus, mem in free
    ]
    vcpus, memory = request_
    snap = snapshot(nodes=node_list, jobs=[job("j", vcpus=vcpus, memory=memory)])
    assert placed_on(plan_of(snap)) == {"j": expected}


def test_free_capacity_is_updated_as_jobs_are_placed():
    # Two 3-vCPU jobs on nodes with 4 free each: the second must not land on the first's node.
    snap = snapshot(nodes=nodes(2, cpus=4), jobs=jobs(n=2, vcpus=3))
    assert sorted(placed_on(plan_of(snap)).values()) == ["a-n0", "a-n1"]


def test_memory_bound_packing():
    snap = snapshot(nodes=nodes(1, cpus=64, memory="4Gi"), jobs=jobs(n=5, vcpus=1, memory="1Gi"))
    plan = plan_of(snap)
    assert len(plan.placements) == 4
    assert plan.waiting == {
        "q-j4": "Waiting for capacity: needs 1 vCPU, 1024 MiB; no node in a has that free (next in queue q)"
    }


# -- backfill ---------------------------------------------------------------------------------


def test_backfill_past_a_job_that_can_never_fit():
    snap = snapshot(
        nodes=nodes(2, cpus=4, memory="16Gi"),
        jobs=[job("huge", vcpus=8, memory="2Gi"), job("small", vcpus=1)],
    )
    plan = plan_of(snap)
    assert placed_on(plan) == {"small": "a-n0"}
    assert plan.waiting == {
        "huge": "Needs 8 vCPUs, 2048 MiB; largest node in compute environment(s) a has 4 vCPUs, 16384 MiB"
    }


def test_backfill_past_a_job_waiting_for_capacity():
    snap = snapshot(
        nodes=nodes(1, cpus=4, used_cpus=2),
        jobs=[job("three", vcpus=3), job("two", vcpus=2), job("one", vcpus=1)],
    )
    plan = plan_of(snap)
    assert placed_on(plan) == {"two": "a-n0"}
    assert plan.waiting["three"].startswith("Waiting for capacity: needs 3 vCPUs, 1024 MiB")
    assert plan.waiting["one"] == (
        "Waiting for capacity: needs 1 vCPU, 1024 MiB; no node in a has that free (1 job ahead in queue q)"
    )


def test_larger_shape_after_a_failed_one_gets_its_own_reason():
    # 'mid' fails for lack of free capacity; 'huge' is larger in every way (so it is known to
    # fail without a scan) but must still be told it can never fit.
    snap = snapshot(
        nodes=nodes(1, cpus=4, used_cpus=3),
        jobs=[job("mid", vcpus=2), job("huge", vcpus=8, memory="2Gi")],
    )
    plan = plan_of(snap)
    assert plan.waiting["mid"].startswith("Waiting for capacity")
    assert plan.waiting["huge"] == (
        "Needs 8 vCPUs, 2048 MiB; largest node in compute environment(s) a has 4 vCPUs, 65536 MiB"
    )


# -- reasons ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("snap_kwargs", "reason"),
    [
        (
            dict(queues=[queue("q", enabled=False)], nodes=nodes(1)),
            "Queue q is DISABLED",
        ),
        (
            dict(queues=[queue("other")], nodes=nodes(1)),
            "Queue q does not exist",
        ),
        (
            dict(queues=[queue("q", envs=["a", "b"])], nodes=nodes(1), disabled_envs=["a", "b"]),
            "No compute environment of queue q is ENABLED (a is DISABLED; b is DISABLED)",
        ),
        (
            dict(queues=[queue("q", envs=["gone"])], missing_envs=["gone"]),
            "No compute environment of queue q is ENABLED (gone does not exist)",
        ),
        (
            dict(queues=[queue("q", envs=["a", "b"])], nodes=nodes(2, env="a", schedulable=False)),
            "No READY node in compute environment(s) a, b",
        ),
        (
            dict(queues=[queue("q", envs=["a", "b"])], nodes=nodes(1, env="b"), disabled_envs=["b"]),
            "No READY node in compute environment(s) a",
        ),
    ],
)
def test_queue_and_environment_reasons(snap_kwargs, reason):
    snap = snapshot(jobs=jobs(queue="q", n=2), **snap_kwargs)
    plan = plan_of(snap)
    assert plan.placements == []
    assert plan.waiting == {"q-j0": reason, "q-j1": reason}


def test_runtime_constraint():
    snap = snapshot(
        nodes=nodes(1, cpus=64, env="a", prefix="plain")
        + nodes(1, cpus=2, env="a", runtimes=("process", "podman"), prefix="pod"),
        jobs=jobs(n=3, runtime="podman", name="p")
        + jobs(n=1, runtime="docker", name="d")
        + jobs(n=1, name="any"),
    )
    plan = plan_of(snap)
    assert placed_on(plan) == {"p0": "pod0", "p1": "pod0", "any0": "plain0"}
    assert plan.waiting == {
        "p2": "Waiting for capacity: needs 1 vCPU, 1024 MiB; no node in a has that free (next in queue q)",
        "d0": "Needs runtime docker; no READY node in a offers it",
    }


def test_runtime_largest_node_counts_only_nodes_offering_it():
    snap = snapshot(
        nodes=nodes(1, cpus=64, prefix="plain") + nodes(1, cpus=2, runtimes=("podman",), prefix="pod"),
        jobs=[job("p", vcpus=4, runtime="podman")],
    )
    assert plan_of(snap).waiting == {
        "p": "Needs 4 vCPUs, 1024 MiB; largest node in compute environment(s) a has 2 vCPUs, 65536 MiB"
    }


def test_reasons_with_fractional_vcpus_and_several_environments():
    snap = snapshot(
        queues=[queue("q", envs=["a", "b"])],
        nodes=nodes(1, cpus=1, env="a") + nodes(1, cpus=0.5, env="b"),
        jobs=jobs(n=6, vcpus=0.5, memory="256Mi"),
    )
    plan = plan_of(snap)
    assert len(plan.placements) == 3
    assert plan.waiting["q-j5"] == (
        "Waiting for capacity: needs 0.5 vCPUs, 256 MiB; no node in a, b has that free (2 jobs ahead in queue q)"
    )


def test_gpu_jobs_only_on_gpu_nodes():
    snap = snapshot(
        nodes=nodes(1, cpus=64, prefix="cpu") + nodes(1, cpus=8, gpus=2, prefix="gpu"),
        jobs=jobs(n=3, vcpus=1, gpus=1, name="g") + [job("big", vcpus=1, gpus=4)],
    )
    plan = plan_of(snap)
    assert placed_on(plan) == {"g0": "gpu0", "g1": "gpu0"}
    assert plan.waiting["g2"].startswith(
        "Waiting for GPUs: needs 1 vCPU, 1024 MiB, 1 GPU; vCPUs and memory are free in a, but no node there has 1 GPU free"
    )
    assert plan.waiting["big"] == (
        "Needs 1 vCPU, 1024 MiB, 4 GPUs; largest node in compute environment(s) a has 64 vCPUs, 65536 MiB, 0 GPUs"
    )


def test_node_listed_in_a_disabled_environment_is_not_used_by_another_queue():
    snap = snapshot(
        queues=[queue("q", envs=["a", "b"])],
        nodes=nodes(1, env="a") + nodes(1, env="b"),
        disabled_envs=["a"],
        jobs=jobs(n=1),
    )
    assert placed_on(plan_of(snap)) == {"q-j0": "b-n0"}


def test_a_job_listed_twice_is_decided_once():
    (j,) = jobs(n=1)
    snap = Snapshot({"q": queue()}, {"a": EnvView("a", True)}, nodes(1, cpus=4), [j, j])
    plan = place(snap)
    assert [p.job_id for p in plan.placements] == [j.job_id]
    assert plan.waiting == {}


def test_bad_free_capacity_is_clamped_to_capacity():
    cap = Resources.from_vcpus(2, 1024)
    bogus = NodeView("n", "a", cap, Resources.from_vcpus(8, 4096), True)
    snap = snapshot(nodes=[bogus], jobs=jobs(n=3, vcpus=1, memory=512))
    plan = place(snap)
    assert len(plan.placements) == 2


def test_deterministic_whatever_the_listing_order():
    all_jobs = jobs(queue="q", n=20, vcpus=3) + jobs(queue="r", n=20, vcpus=1)
    all_nodes = nodes(3, cpus=8) + nodes(2, cpus=4, env="b")
    queues = [queue("q", envs=["a", "b"], priority=2), queue("r", envs=["b", "a"], priority=2)]
    first = place(snapshot(queues=queues, nodes=all_nodes, jobs=all_jobs))
    second = place(snapshot(queues=queues[::-1], nodes=all_nodes[::-1], jobs=all_jobs[::-1]))
    assert first == second


def test_empty_snapshot():
    assert place(snapshot()) == place(snapshot(nodes=nodes(3)))


# -- resources --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resources", "text"),
    [
        (Resources.from_vcpus(2, 1024), "2 vCPUs, 1024 MiB"),
        (Resources.from_vcpus(1, 256), "1 vCPU, 256 MiB"),
        (Resources.from_vcpus(0.5, 512), "0.5 vCPUs, 512 MiB"),
        (Resources.from_vcpus(0.125, 4), "0.125 vCPUs, 4 MiB"),
        (Resources.from_vcpus(1.5, 2048, 1), "1.5 vCPUs, 2048 MiB, 1 GPU"),
    ],
)
def test_resources_describe(resources, text):
    assert resources.describe() == text


def test_resources_arithmetic():
    a, b = Resources(1500, 1024, 1), Resources(500, 24)
    assert a + b == Resources(2000, 1048, 1)
    assert a - b == Resources(1000, 1000, 1)
    assert b.fits_in(a) and not a.fits_in(b)
    assert Resources.from_vcpus(0.1 + 0.2, 1).milli_vcpus == 300  # exact units, no float drift


# -- properties -------------------------------------------------------------------------------


def reference_placements(snap: Snapshot) -> list[tuple[str, str]]:
    """The policy written the slow, obvious way: O(jobs x nodes)."""
    free = {}
    for n in snap.nodes:
        if n.node_id not in free:
            f, c = n.free, n.capacity
            free[n.node_id] = [
                max(0, min(f.milli_vcpus, c.milli_vcpus)),
                max(0, min(f.memory_mib, c.memory_mib)),
                max(0, min(f.gpus, c.gpus)),
            ]
    first_listing = {}
    for n in snap.nodes:
        first_listing.setdefault(n.node_id, n)
    out = []
    queues = sorted((q for q in snap.queues.values() if q.enabled), key=lambda q: (-q.priority, q.name))
    for q in queues:
        envs = [e for e in dict.fromkeys(q.compute_environments) if e in snap.envs and snap.envs[e].enabled]
        for j in sorted((j for j in snap.runnable if j.queue == q.name), key=lambda j: j.order):
            r = j.request
            for env in envs:
                fits = [
                    (free[n.node_id][0], free[n.node_id][1], free[n.node_id][2], n.node_id)
                    for n in first_listing.values()
                    if n.compute_environment == env
                    and n.schedulable
                    and (not j.runtime or j.runtime in n.runtimes)
                    and free[n.node_id][0] >= r.milli_vcpus
                    and free[n.node_id][1] >= r.memory_mib
                    and free[n.node_id][2] >= r.gpus
                ]
                if fits:
                    node_id = min(fits)[3]
                    free[node_id][0] -= r.milli_vcpus
                    free[node_id][1] -= r.memory_mib
                    free[node_id][2] -= r.gpus
                    out.append((j.job_id, node_id))
                    break
    return out


ENVS = ["a", "b", "c"]
RUNTIMES = ["process", "podman", "docker"]


@st.composite
def snapshots(draw):
    n_nodes = draw(st.integers(0, 8))
    node_list = []
    for i in range(n_nodes):
        cap = Resources(
            draw(st.sampled_from([500, 1000, 2000, 4000, 8000])),
            draw(st.sampled_from([512, 1024, 4096])),
            draw(st.integers(0, 2)),
        )
        used = Resources(
            draw(st.integers(0, cap.milli_vcpus)),
            draw(st.integers(0, cap.memory_mib)),
            draw(st.integers(0, cap.gpus)),
        )
        runtimes = frozenset(draw(st.sets(st.sampled_from(RUNTIMES), min_size=1)))
        node_list.append(
            NodeView(
                f"n{i}",
                draw(st.sampled_from(ENVS)),
                cap,
                cap - used,
                draw(st.booleans() | st.just(True)),
                runtimes,
            )
        )
    queue_list = [
        QueueView(
            name,
            draw(st.integers(0, 3)),
            draw(st.booleans() | st.just(True)),
            tuple(draw(st.lists(st.sampled_from(ENVS), min_size=1, max_size=3, unique=True))),
        )
        for name in draw(st.sets(st.sampled_from(["q1", "q2", "q3"]), min_size=1))
    ]
    envs = {e: EnvView(e, draw(st.booleans() | st.just(True))) for e in ENVS if draw(st.integers(0, 5)) > 0}
    job_list = [
        JobView(
            f"j{i}",
            draw(st.sampled_from(["q1", "q2", "q3"])),
            Resources(
                draw(st.sampled_from([250, 500, 1000, 1500, 3000, 9000])),
                draw(st.sampled_from([64, 256, 1024, 2048])),
                draw(st.sampled_from([0, 0, 0, 1, 3])),
            ),
            (draw(st.integers(1, 50)), i),
            draw(st.sampled_from(["", "", "", *RUNTIMES])),
        )
        for i in range(draw(st.integers(0, 40)))
    ]
    return Snapshot({q.name: q for q in queue_list}, envs, node_list, draw(st.permutations(job_list)))


@settings(max_examples=300, deadline=None)
@given(snapshots())
def test_property_invariants_and_reference(snap):
    plan = place(snap)
    check_invariants(snap, plan)
    # The fast pass (indexes, failed-shape pruning) places exactly what the obvious one does.
    assert [(p.job_id, p.node_id) for p in plan.placements] == reference_placements(snap)


@settings(max_examples=200, deadline=None)
@given(snapshots())
def test_property_nobody_waits_for_capacity_that_is_free(snap):
    """Backfill is complete: a job told to wait for capacity fits on no eligible node afterwards."""
    plan = place(snap)
    left = {n.node_id: n.free for n in snap.nodes}
    job_by_id = {j.job_id: j for j in snap.runnable}
    for p in plan.placements:
        left[p.node_id] = left[p.node_id] - job_by_id[p.job_id].request
    for job_id, reason in plan.waiting.items():
        if not reason.startswith("Waiting for capacity"):
            continue
        j = job_by_id[job_id]
        q = snap.queues[j.queue]
        for n in snap.nodes:
            eligible = (
                n.schedulable
                and n.compute_environment in q.compute_environments
                and snap.envs.get(n.compute_environment, EnvView("", False)).enabled
                and (not j.runtime or j.runtime in n.runtimes)
            )
            if eligible:
                assert not j.request.fits_in(left[n.node_id]), f"{job_id} waits but fits on {n.node_id}"


def test_an_image_job_without_a_runtime_goes_to_a_container_node():
    from controller.scheduler import NodeView, Resources, Snapshot, place
    from controller.scheduler.snapshot import EnvView, JobView, QueueView

    cap = Resources.from_vcpus(4, 4096)
    snap = Snapshot(
        queues={"q": QueueView("q", 1, True, ("a",))},
        envs={"a": EnvView("a", True)},
        nodes=[
            NodeView("proc", "a", cap, cap, True, frozenset({"process"})),
            NodeView("ctr", "a", cap, cap, True, frozenset({"podman", "process"})),
        ],
        runnable=[JobView("j1", "q", Resources.from_vcpus(1, 64), (1, 0), runtime="container")],
    )
    plan = place(snap)
    assert [(p.job_id, p.node_id) for p in plan.placements] == [("j1", "ctr")]
    only_proc = Snapshot(queues=snap.queues, envs=snap.envs, nodes=snap.nodes[:1], runnable=snap.runnable)
    assert "Needs runtime container" in place(only_proc).waiting["j1"]


@settings(max_examples=300, deadline=None)
@given(snapshots())
def test_property_leaving_a_queue_early_changes_nothing(snap):
    """A queue is left once no shape it asks for can fit; its unexamined tail gets exactly the
    reasons the full walk would have given, in the same words and the same 'ahead' counts."""
    fast, full = place(snap), place(snap, early_stop=False)
    assert fast.placements == full.placements
    assert dict(fast.waiting) == dict(full.waiting)
    for job_id, reason in full.waiting.items():  # single lookups walk the tail
        assert fast.waiting.get(job_id) == reason
        assert job_id in fast.waiting
    assert len(fast.waiting) == len(full.waiting)


@settings(max_examples=200, deadline=None)
@given(snapshots(), st.randoms(use_true_random=False))
def test_property_lanes_with_skips_equal_the_flat_list(snap, rnd):
    """What the leader passes (per-queue lanes in order, some ids to skip, shapes a superset)
    plans exactly like the flat list without the skipped jobs."""
    skipped = {j.job_id for j in snap.runnable if rnd.random() < 0.2}
    lanes = {}
    for name in {j.queue for j in snap.runnable}:
        ordered = sorted((j for j in snap.runnable if j.queue == name), key=lambda j: j.order)
        shapes = {shape_of(j) for j in ordered} | {("", 1, 1, 0)}
        lanes[name] = Lane(ordered, frozenset(shapes), frozenset(skipped))
    kept = [j for j in snap.runnable if j.job_id not in skipped]
    flat = place(Snapshot(snap.queues, snap.envs, snap.nodes, kept))
    laned = place(Snapshot(snap.queues, snap.envs, snap.nodes, lanes=lanes))
    assert laned.placements == flat.placements
    assert dict(laned.waiting) == dict(flat.waiting)


def test_a_long_queue_is_left_after_the_first_job_that_cannot_fit():
    """With no room left, the pass does not walk the queue; `why` still works per job."""
    many = jobs(queue="q", n=5000, vcpus=1)
    snap = snapshot(nodes=nodes(1, cpus=2), jobs=many)
    plan = place(snap)
    assert len(plan.placements) == 2
    assert len(plan.waiting._explicit) == 1  # the first job that did not fit; the rest is the tail
    assert plan.waiting["q-j4999"] == (
        "Waiting for capacity: needs 1 vCPU, 1024 MiB; no node in a has that free (4997 jobs ahead in queue q)"
    )
