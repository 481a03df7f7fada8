"""How many nodes a MANAGED compute environment needs, and which idle ones can go (pure).

`desired_nodes(env, runnable_requests, nodes)` turns the work waiting for an environment into a
node count, the way a person would: pack the waiting jobs (largest first) into the free room of
the environment's READY nodes, then into new nodes of the provisioner's size, and add the
nodes that are busy anyway. The count is clamped to what min/max vCPUs allow. Above the need,
idle nodes are scaled in in two steps (drain, then remove once DRAINED), and only nodes that
have been idle for `scale_in_idle` seconds: a node that runs a job is never chosen.

`demand_by_env` decides which managed environment each waiting job counts against: the first
ENABLED managed environment of the job's (ENABLED) queue whose node size can hold the job, so
that a queue with two managed environments does not grow both for the same job.

No I/O, no clock (idle times are inputs), deterministic: the scaling loop in
`controller/services/provisioning.py` is the I/O shell around it.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from controller.scheduler.snapshot import QueueView, Resources

__all__ = [
    "ManagedEnv",
    "ManagedNode",
    "NodeState",
    "ScalingDecision",
    "demand_by_env",
    "desired_nodes",
]


class NodeState(enum.Enum):
    READY = "READY"
    DRAINING = "DRAINING"
    DRAINED = "DRAINED"


@dataclass(frozen=True, slots=True)
class ManagedEnv:
    """What scaling needs to know about one MANAGED compute environment."""

    name: str
    enabled: bool
    """DISABLED: scale to the minimum, no new work is expected."""
    min_vcpus: int
    max_vcpus: int
    node: Resources
    """Size of one provisioned node (the provisioner's node_vcpus / node_memory_mib)."""

    @property
    def min_nodes(self) -> int:
        """Fewest nodes that give at least min_vcpus (never more than max_nodes)."""
        if self.node.milli_vcpus <= 0:
            return 0
        return min(-(-self.min_vcpus * 1000 // self.node.milli_vcpus), self.max_nodes)

    @property
    def max_nodes(self) -> int:
        """Most nodes that stay within max_vcpus."""
        if self.node.milli_vcpus <= 0:
            return 0
        return self.max_vcpus * 1000 // self.node.milli_vcpus


@dataclass(frozen=True, slots=True)
class ManagedNode:
    """One registered, not LOST node of the environment."""

    node_id: str
    state: NodeState
    capacity: Resources
    used: Resources
    """Requests of its STARTING/RUNNING attempts."""
    running: int
    """Number of STARTING/RUNNING attempts on it; > 0 means busy (never scaled in)."""
    idle_for: float = 0.0
    """Seconds it has had no attempt (0 while busy)."""
    scale_in: bool = False
    """DRAINING/DRAINED because scaling drained it (not an operator): may be undrained."""

    @property
    def busy(self) -> bool:
        return self.running > 0


@dataclass(frozen=True)
class ScalingDecision:
    desired: int
    """Nodes the environment should have, within [min_nodes, max_nodes]."""
    needed: int
    """Nodes the waiting and running work needs, before clamping (for explanations)."""
    drain: tuple[str, ...] = ()
    """READY idle nodes to drain now (scale-in, step one)."""
    remove: tuple[str, ...] = ()
    """DRAINED idle nodes the provisioner should remove (scale-in, step two)."""
    undrain: tuple[str, ...] = ()
    """Nodes drained for scale-in that are needed again."""
    waiting_jobs: int = 0
    """Waiting jobs counted against this environment."""
    too_large: int = 0
    """Waiting jobs that no node of this environment's size could ever hold."""


def _shape(r: Resources) -> tuple[int, int, int]:
    return (r.milli_vcpus, r.memory_mib, r.gpus)


def _fits_count(free: list[int], shape: tuple[int, int, int]) -> int:
    """How many requests of `shape` fit into `free` (a [milli, mem, gpus] list)."""
    count = None
    for have, want in zip(free, shape, strict=True):
        if want <= 0:
            continue
        n = have // want if have > 0 else 0
        count = n if count is None else min(count, n)
    # A request of all zeros fits anywhere, any number of times: it never needs a node.
    return count if count is not None else 1 << 62


def desired_nodes(
    env: ManagedEnv,
    runnable_requests: Iterable[Resources],
    nodes: Sequence[ManagedNode],
    *,
    scale_in_idle: float = 30.0,
) -> ScalingDecision:
    """The node count `env` should have and the scale-in steps to take now. Pure."""
    lo, hi = env.min_nodes, env.max_nodes
    node_shape = _shape(env.node)
    shapes: Counter[tuple[int, int, int]] = Counter()
    too_large = 0
    waiting = 0
    for request in runnable_requests:
        waiting += 1
        if request.fits_in(env.node):
            shapes[_shape(request)] += 1
        else:
            too_large += 1
    if not env.enabled:
        shapes.clear()

    # Existing room: READY nodes first, then nodes drained for scale-in (undraining one is
    # cheaper than starting one); operator-drained nodes take no work. Deterministic order.
    def room_order(n: ManagedNode) -> tuple[int, str]:
        return (0 if n.state is NodeState.READY else 1, n.node_id)

    usable = sorted((n for n in nodes if n.state is NodeState.READY or n.scale_in), key=room_order)
    bins: list[tuple[str | None, list[int]]] = [
        (n.node_id, [max(0, v) for v in _shape(n.capacity - n.used)]) for n in usable
    ]
    busy = {n.node_id for n in nodes if n.busy}
    receiving: set[str] = set()
    new_bins = 0
    # First fit decreasing, by shape with counts: O(shapes x bins), not O(jobs x bins).
    for shape in sorted(shapes, reverse=True):
        left = shapes[shape]
        for node_id, free in bins:
            if left == 0:
                break
            k = min(left, _fits_count(free, shape))
            if k <= 0:
                continue
            for i in range(3):
                free[i] -= k * shape[i]
            left -= k
            if node_id is not None:
                receiving.add(node_id)
        per_node = _fits_count(list(node_shape), shape)
        while left > 0:
            if len(busy | receiving) + new_bins > hi:
                # Already past the maximum (and it only grows): the exact surplus does not matter.
                new_bins += -(-left // per_node)
                left = 0
                break
            k = min(left, per_node)
            free = [node_shape[i] - k * shape[i] for i in range(3)]
            bins.append((None, free))
            new_bins += 1
            left -= k

    in_use = busy | receiving
    needed = len(in_use) + new_bins
    desired = max(lo, min(needed, hi)) if env.enabled else lo

    # Scale-in: the nodes beyond `desired`, idle ones only, longest idle first, already
    # drained ones before READY ones (they are further along).
    surplus = len(nodes) - desired
    state_rank = {NodeState.DRAINED: 0, NodeState.DRAINING: 1, NodeState.READY: 2}
    candidates = sorted(
        (n for n in nodes if n.node_id not in in_use and not n.busy and n.idle_for >= scale_in_idle),
        key=lambda n: (state_rank[n.state], -n.idle_for, n.node_id),
    )
    chosen = candidates[: max(0, surplus)]
    chosen_ids = {n.node_id for n in chosen}
    drain = tuple(n.node_id for n in chosen if n.state is NodeState.READY)
    remove = tuple(n.node_id for n in chosen if n.state is NodeState.DRAINED)
    # Nodes drained for scale-in come back when the environment needs more nodes than the
    # ones still working (READY, or drained by an operator, which scaling never undoes).
    drained_for_scale_in = [n for n in nodes if n.scale_in and n.state is not NodeState.READY]
    working = len(nodes) - len(drained_for_scale_in)
    back = sorted(
        (n for n in drained_for_scale_in if n.node_id not in chosen_ids),
        key=lambda n: (n.node_id not in receiving, not n.busy, n.node_id),
    )
    undrain = tuple(n.node_id for n in back[: max(0, desired - working)])
    return ScalingDecision(
        desired=desired,
        needed=needed,
        drain=drain,
        remove=remove,
        undrain=undrain,
        waiting_jobs=waiting,
        too_large=too_large,
    )


def demand_by_env(
    queues: Mapping[str, QueueView],
    runnable: Iterable[tuple[str, Resources]],
    envs: Mapping[str, ManagedEnv],
) -> dict[str, list[Resources]]:
    """Waiting requests per managed environment: each (queue, request) counts against the first
    ENABLED managed environment of its ENABLED queue whose nodes can hold it; if none can hold
    it, against the queue's first enabled managed environment (to be reported as too large)."""
    demand: dict[str, list[Resources]] = {name: [] for name in envs}
    choice: dict[tuple[str, tuple[int, int, int]], str | None] = {}
    for queue_name, request in runnable:
        key = (queue_name, _shape(request))
        if key not in choice:
            choice[key] = _choose(queues.get(queue_name), request, envs)
        env_name = choice[key]
        if env_name is not None:
            demand[env_name].append(request)
    return demand


def _choose(queue: QueueView | None, request: Resources, envs: Mapping[str, ManagedEnv]) -> str | None:
    if queue is None or not queue.enabled:
        return None
    candidates = [envs[n] for n in queue.compute_environments if n in envs and envs[n].enabled]
    for env in candidates:
        if request.fits_in(env.node):
            return env.name
    return candidates[0].name if candidates else None
