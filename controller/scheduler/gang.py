"""Gang placement of multi-node jobs, called by `placement.place` for a job with `JobView.gang`.

Rules:

- All or none: every node of the job gets a distinct schedulable node of ONE compute
  environment (the first of the queue's environments, in order, where the whole gang fits),
  or the job gets nothing. A gang that does not fit holds no capacity.
- Each node of the gang is placed best fit, the most demanding node first (the same fit as
  ordinary jobs: least free capacity left, ties by node id).
- Backfill: a gang that does not fit is skipped like any job, so smaller jobs behind it run.
- No starvation: a gang skipped while jobs behind it were placed has been *passed over*; the
  leader counts the passes that did (`Plan.passed_over` -> `Snapshot.gang_passes`). Once that
  count reaches `Snapshot.gang_reserve_after`, the gang *reserves* nodes in every pass in which
  it still does not fit: in the first environment that has enough nodes large enough, for each
  of its nodes the unreserved eligible node with the most free capacity (ties by node id). A
  reserved node that has the gang's share free holds that share; one that does not is closed
  to every job after the gang in the pass (later jobs of its queue, queues of lower priority).
  Reserved nodes thus only gain free capacity as their work ends, so the gang starts as soon as
  the work running on them (plus any that jobs ahead of it place there) has ended.

Pure and deterministic, like the rest of the scheduler.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from controller.scheduler.snapshot import GANG_SHAPE, JobView, NodeRequest, ShapeKey, describe


class GangNode(Protocol):
    """What gang placement needs of a node's mutable state in a pass (`placement._Node`)."""

    node_id: str
    capacity: tuple[int, int, int]
    milli: int
    mem: int
    gpus: int

    def take(self, milli: int, mem: int, gpus: int) -> None: ...


Eligible = Callable[[str, str], Sequence[GangNode]]
"""(environment, runtime) -> the schedulable nodes of that environment offering that runtime."""


@dataclass(frozen=True, slots=True)
class GangPlacement:
    job_id: str
    node_ids: tuple[str, ...]
    """By node index: node i of the job runs on node_ids[i]; all distinct."""
    compute_environment: str


@dataclass(frozen=True, slots=True)
class GangDecision:
    placement: GangPlacement | None
    reason: str
    """Why it waits ('' when placed)."""
    reserved: tuple[str, ...] = ()
    """Nodes it reserved in this pass (only when it waits)."""


def is_gang_shape(key: ShapeKey) -> bool:
    return key[0].startswith(GANG_SHAPE)


def gang_job_id(key: ShapeKey) -> str:
    return key[0][len(GANG_SHAPE):]


def _shape(need: NodeRequest) -> tuple[int, int, int]:
    r = need.request
    return (r.milli_vcpus, r.memory_mib, r.gpus)


def _fits_free(node: GangNode, shape: tuple[int, int, int]) -> bool:
    return node.milli >= shape[0] and node.mem >= shape[1] and node.gpus >= shape[2]


def _fits_capacity(node: GangNode, shape: tuple[int, int, int]) -> bool:
    c = node.capacity
    return c[0] >= shape[0] and c[1] >= shape[1] and c[2] >= shape[2]


def _hardest_first(needs: Sequence[NodeRequest]) -> list[int]:
    return sorted(range(len(needs)), key=lambda i: (tuple(-x for x in _shape(needs[i])), i))


def _choose(
    needs: Sequence[NodeRequest], env: str, eligible: Eligible, *, reserve: bool
) -> list[GangNode] | None:
    """One distinct node per need, or None. Placing: best fit among nodes with the need free.
    Reserving: among nodes large enough, the one with the most free capacity."""
    chosen: list[GangNode | None] = [None] * len(needs)
    used: set[str] = set()
    for i in _hardest_first(needs):
        shape = _shape(needs[i])
        best: GangNode | None = None
        best_key: tuple | None = None
        for node in eligible(env, needs[i].runtime):
            if node.node_id in used:
                continue
            if reserve:
                if not _fits_capacity(node, shape):
                    continue
                key = (not _fits_free(node, shape), -node.milli, -node.mem, -node.gpus, node.node_id)
            else:
                if not _fits_free(node, shape):
                    continue
                key = (node.milli - shape[0], node.mem - shape[1], node.gpus - shape[2], node.node_id)
            if best_key is None or key < best_key:
                best, best_key = node, key
        if best is None:
            return None
        chosen[i] = best
        used.add(best.node_id)
    return [n for n in chosen if n is not None]


def place_gang(
    job: JobView,
    envs: Sequence[str],
    eligible: Eligible,
    *,
    passes_waited: int = 0,
    reserve_after: int = 0,
) -> GangDecision:
    """Place `job`'s gang on distinct nodes of one environment, or explain why it waits (and
    reserve nodes for it once it was passed over `reserve_after` times). Takes the capacity
    it places (or reserves) from the nodes."""
    needs = job.gang
    for env in envs:
        chosen = _choose(needs, env, eligible, reserve=False)
        if chosen is None:
            continue
        for need, node in zip(needs, chosen, strict=True):
            node.take(*_shape(need))
        return GangDecision(GangPlacement(job.job_id, tuple(n.node_id for n in chosen), env), "")
    reason = explain(needs, envs, eligible)
    if reserve_after > 0 and passes_waited >= reserve_after:
        for env in envs:
            chosen = _choose(needs, env, eligible, reserve=True)
            if chosen is None:
                continue
            for need, node in zip(needs, chosen, strict=True):
                shape = _shape(need)
                if _fits_free(node, shape):
                    node.take(*shape)  # hold what the gang needs; the rest stays usable
                else:
                    node.take(node.milli, node.mem, node.gpus)  # nothing behind it starts here
            ids = tuple(sorted(n.node_id for n in chosen))
            reason += (
                f"; passed over {passes_waited} times, it reserves node(s) {', '.join(ids)} "
                "(jobs behind it do not start there)"
            )
            return GangDecision(None, reason, ids)
    elif reserve_after > 0 and passes_waited:
        reason += f"; passed over {passes_waited} of {reserve_after} times before it reserves nodes"
    return GangDecision(None, reason)


def explain(needs: Sequence[NodeRequest], envs: Sequence[str], eligible: Eligible) -> str:
    """'Multi-node job needs 3 nodes with 1 vCPU, 256 MiB each; in default 2 have that free
    now (3 are that large)' — per distinct node shape and environment."""
    groups: dict[tuple[tuple[int, int, int], str], int] = {}
    for need in needs:
        key = (_shape(need), need.runtime)
        groups[key] = groups.get(key, 0) + 1
    parts = []
    for env in envs:
        env_parts = []
        for (shape, runtime), _count in groups.items():
            nodes = eligible(env, runtime)
            free = sum(1 for n in nodes if _fits_free(n, shape))
            large = sum(1 for n in nodes if _fits_capacity(n, shape))
            env_parts.append(f"{free} of the {large} node(s) large enough have {describe(*shape)} free")
        parts.append(f"in {env}: " + "; ".join(env_parts))
    # Could it fit on an idle environment? The same choice a reservation makes, by capacity.
    can_ever = any(_choose(needs, env, eligible, reserve=True) is not None for env in envs)
    wanted = ", ".join(
        f"{count} node(s) with {describe(*shape)}" + (f" ({runtime})" if runtime else "")
        for (shape, runtime), count in groups.items()
    )
    head = "Waiting for capacity" if can_ever else "Never fits as configured"
    tail = "" if can_ever else "; no compute environment of the queue has that many nodes that large"
    return f"{head}: multi-node job needs {wanted}, on distinct nodes; {'; '.join(parts)}{tail}"
