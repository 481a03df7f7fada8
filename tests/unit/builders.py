"""Builders that read like the domain, for scheduler tests.

    snap = snapshot(
        queues=[queue("q", envs=["a"])],
        nodes=nodes(2, cpus=16, memory="64Gi", env="a"),
        jobs=jobs(queue="q", n=33, vcpus=1),
    )
    plan = place(snap)
    check_invariants(snap, plan)

Job order follows the order in which `jobs(...)` calls are made (a module-wide counter), so
"submitted first" reads as "built first".
"""

from __future__ import annotations

import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from controller.scheduler import EnvView, JobView, NodeView, Plan, QueueView, Resources, Snapshot

_submission = itertools.count(1)
_UNITS = {"Mi": 1, "Gi": 1024, "Ti": 1024 * 1024}


def mib(memory: str | int) -> int:
    """'64Gi' -> 65536, '512Mi' -> 512, 300 -> 300."""
    if isinstance(memory, int):
        return memory
    match = re.fullmatch(r"(\d+)(Mi|Gi|Ti)", memory)
    assert match, f"memory like '512Mi' or '64Gi', not {memory!r}"
    return int(match.group(1)) * _UNITS[match.group(2)]


def nodes(
    n: int,
    *,
    cpus: float = 16,
    memory: str | int = "64Gi",
    env: str = "a",
    used_cpus: float = 0,
    used_memory: str | int = 0,
    gpus: int = 0,
    schedulable: bool = True,
    runtimes: Iterable[str] = ("process",),
    prefix: str | None = None,
) -> list[NodeView]:
    """n identical nodes named '<env>-n0', '<env>-n1', ... (or '<prefix>0', ...)."""
    capacity = Resources.from_vcpus(cpus, mib(memory), gpus)
    used = Resources.from_vcpus(used_cpus, mib(used_memory))
    name = prefix if prefix is not None else f"{env}-n"
    return [
        NodeView(f"{name}{i}", env, capacity, capacity - used, schedulable, frozenset(runtimes))
        for i in range(n)
    ]


def node(node_id: str, *, env: str = "a", cpus: float = 16, memory: str | int = "64Gi", **kw) -> NodeView:
    (view,) = nodes(1, env=env, cpus=cpus, memory=memory, prefix="", **kw)
    return NodeView(
        node_id, view.compute_environment, view.capacity, view.free, view.schedulable, view.runtimes
    )


def jobs(
    *,
    queue: str = "q",
    n: int = 1,
    vcpus: float = 1,
    memory: str | int = "1Gi",
    gpus: int = 0,
    runtime: str = "",
    name: str | None = None,
    share: str = "",
    priority: int = 0,
) -> list[JobView]:
    """n identical jobs named '<name>0', '<name>1', ... (default name '<queue>-j'), FIFO in that order."""
    request = Resources.from_vcpus(vcpus, mib(memory), gpus)
    prefix = name if name is not None else f"{queue}-j"
    return [
        JobView(f"{prefix}{i}", queue, request, (next(_submission), 0), runtime, share=share, priority=priority)
        for i in range(n)
    ]


def job(job_id: str, **kw) -> JobView:
    (view,) = jobs(n=1, **kw)
    return JobView(job_id, view.queue, view.request, view.order, view.runtime)


def queue(
    name: str = "q", *, envs: Sequence[str] = ("a",), priority: int = 1, enabled: bool = True
) -> QueueView:
    return QueueView(name, priority, enabled, tuple(envs))


def snapshot(
    *,
    queues: Sequence[QueueView] = (),
    nodes: Sequence[NodeView] = (),
    jobs: Sequence[JobView] = (),
    disabled_envs: Iterable[str] = (),
    missing_envs: Iterable[str] = (),
) -> Snapshot:
    """Every environment named by a queue or a node exists and is ENABLED unless listed."""
    queues = list(queues) or [queue()]
    disabled, missing = set(disabled_envs), set(missing_envs)
    names = {e for q in queues for e in q.compute_environments} | {n.compute_environment for n in nodes}
    envs = {e: EnvView(e, e not in disabled) for e in sorted(names - missing)}
    ids = Counter(j.job_id for j in jobs)
    assert max(ids.values(), default=1) == 1, f"job ids listed twice: {[i for i, c in ids.items() if c > 1]}"
    return Snapshot({q.name: q for q in queues}, envs, list(nodes), list(jobs))


def placed_on(plan: Plan) -> dict[str, str]:
    """job_id -> node_id."""
    return {p.job_id: p.node_id for p in plan.placements}


def check_invariants(snap: Snapshot, plan: Plan) -> None:
    """What every plan must satisfy, whatever the policy details."""
    node_by_id = {n.node_id: n for n in snap.nodes}
    job_by_id = {j.job_id: j for j in snap.runnable}
    placed_ids = [p.job_id for p in plan.placements]
    # No job placed twice, and no job both placed and waiting.
    assert len(placed_ids) == len(set(placed_ids)), "a job was placed twice"
    assert not set(placed_ids) & set(plan.waiting), "a job is both placed and waiting"
    # Every runnable job is placed or has a reason; nothing else appears.
    assert set(placed_ids) | set(plan.waiting) == set(job_by_id)
    assert all(reason for reason in plan.waiting.values()), "an empty reason"
    used: dict[str, Resources] = defaultdict(lambda: Resources(0, 0, 0))
    for p in plan.placements:
        n = node_by_id[p.node_id]
        j = job_by_id[p.job_id]
        q = snap.queues[j.queue]
        # Only schedulable nodes of enabled environments of the job's (enabled) queue.
        assert n.schedulable, f"{p.job_id} placed on unschedulable {n.node_id}"
        assert q.enabled
        assert n.compute_environment in q.compute_environments
        assert snap.envs[n.compute_environment].enabled
        assert p.compute_environment == n.compute_environment
        if j.runtime:
            assert j.runtime in n.runtimes
        used[p.node_id] = used[p.node_id] + j.request
    # No node over capacity.
    for node_id, total in used.items():
        n = node_by_id[node_id]
        assert total.fits_in(n.free), f"{node_id} over capacity: {total} placed, {n.free} free"
