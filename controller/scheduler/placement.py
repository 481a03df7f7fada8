"""One scheduling pass: `place(snapshot) -> Plan`.

Policy, in the order it is applied:

1. Queues by priority, higher first; equal priorities by queue name.
2. Within a queue, FIFO by submission order (`JobView.order`; equal orders keep the order in
   which the snapshot lists them). The sort is cheapest when `runnable` is already in
   submission order, which is how the leader should keep it. A fair-share queue (one whose
   `QueueView.fairshare` is set) goes in fair-share order instead: the share with the lowest
   weighted load first, then schedulingPriority, then submission order
   (`controller.scheduler.fairshare`), within its compute reservation.
3. For each job, the queue's ENABLED compute environments in the queue's order; inside an
   environment only schedulable (READY) nodes, and only nodes offering the job's runtime when
   it names one.
4. Inside an environment, best fit: the node left with the least free capacity after placing,
   compared as (free vCPUs, free memory, free GPUs, node id) — so the tie-break is the node id.
5. Backfill: a job that does not fit now is skipped, and smaller jobs behind it may use the
   free capacity. Free capacity is updated as jobs are placed, so no node is ever over capacity.
6. GPUs: a job asking for N GPUs gets the first N of its node's free device ids
   (`NodeView.gpu_ids`) in its `Placement`, so no device is given twice.

Every runnable job ends up either in `Plan.placements` or with a reason in `Plan.waiting`,
worded so a user can act on it (this is what `shoal why JOB` shows).

Speed. The leader runs this on every change, with up to ~100k runnable jobs and ~1k nodes, so
the pass avoids O(jobs x nodes):
- free nodes of one (environment, runtime) are kept sorted by free capacity in blocks that
  know their largest free memory (`_FreeIndex`), so the best fit is a bisect plus a short walk
  that skips blocks without enough memory, and an update is a delete plus an insort;
- free capacity only shrinks during a pass, so once a job shape failed to fit, every later job
  of the same or a larger shape fails without touching a node (`_FailedShapes`);
- per-queue and per-runtime reasons ("queue disabled", "no node offers podman") are worked out
  once per queue, not once per job;
- a queue is left as soon as every shape its jobs ask for (`Lane.shapes`) is known not to fit:
  the rest of the queue cannot place anything, so the pass costs O(jobs placed + jobs looked
  at), not O(queue length). The jobs left unexamined (the queue's *tail*) still have their
  reasons: `Plan.waiting` works them out when asked (`Waiting`), exactly as the loop would
  have. The leader keeps each queue's lane sorted between passes (`controller.services.view`),
  so a pass on a 100,000-job queue with 8 free slots looks at a handful of jobs.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Container, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter

from controller.scheduler import gang as G
from controller.scheduler.fairshare import FairOrder
from controller.scheduler.snapshot import JobView, Lane, NodeView, Snapshot, describe, shape_of

__all__ = ["Placement", "Plan", "Waiting", "lanes_of", "place"]


CONTAINER = "container"
"""Pseudo-runtime of a job with an image but no runtime of its own: any container runtime will do."""


def offers(runtimes: frozenset[str], runtime: str) -> bool:
    """Whether a node offering `runtimes` can run a job that asks for `runtime` ("" = any)."""
    if not runtime:
        return True
    if runtime == CONTAINER:
        return bool(runtimes & {"podman", "docker"})
    return runtime in runtimes


@dataclass(frozen=True, slots=True)
class Placement:
    job_id: str
    node_id: str
    compute_environment: str
    gpu_ids: tuple[str, ...] = ()
    """The node's GPU devices given to the job (when the node's free ids are known)."""


@dataclass(frozen=True)
class Plan:
    placements: list[Placement]
    """In the order they were decided (queue priority, then FIFO)."""
    waiting: Waiting
    """job_id -> why it waits, in words a user can act on (a read-only mapping)."""
    gangs: list[G.GangPlacement] = field(default_factory=list)
    """Multi-node jobs placed, each on distinct nodes (see `controller.scheduler.gang`)."""
    passed_over: frozenset[str] = frozenset()
    """Multi-node jobs that waited in this pass while jobs behind them were placed."""
    reservations: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Multi-node job id -> the nodes it reserved in this pass."""


def place(snapshot: Snapshot, *, early_stop: bool = True) -> Plan:
    """Decide which runnable jobs start where. Pure and deterministic.

    `early_stop=False` looks at every job (the result is the same; tests compare the two).
    """
    return _Pass(snapshot, early_stop=early_stop).run()


class _Tail:
    """The unexamined rest of a queue: every job in it waits, for a reason known per shape."""

    __slots__ = ("queue", "jobs", "start", "ahead", "skip", "reason_of", "placed", "fixed")

    def __init__(self, queue: str, jobs: Sequence[JobView], start: int, ahead: int, skip: Container[str],
                 reason_of: dict[tuple, tuple[str, bool] | str], placed: Container[str],
                 fixed: str | None = None) -> None:  # fmt: skip
        self.fixed = fixed  # one reason for every job (the queue cannot run anything)
        self.queue = queue
        self.jobs = jobs
        self.start = start
        self.ahead = ahead
        self.skip = skip
        self.reason_of = reason_of  # (runtime, milli, mem, gpus) -> (text, in line) or a plain text
        self.placed = placed

    def reasons(self) -> Iterator[tuple[str, str]]:
        """(job id, reason) of every job in the tail, in queue order."""
        ahead, name = self.ahead, self.queue
        skip, placed, reason_of, fixed = self.skip, self.placed, self.reason_of, self.fixed
        jobs = self.jobs
        for i in range(self.start, len(jobs)):
            job = jobs[i]
            job_id = job.job_id
            if job_id in skip or job_id in placed:
                continue
            hit = fixed if fixed is not None else reason_of[shape_of(job)]
            if type(hit) is str:
                yield job_id, hit
                continue
            text, in_line = hit
            if not in_line:
                yield job_id, text
            else:
                yield job_id, text + _ahead_text(ahead, name)
                ahead += 1


class Waiting(Mapping[str, str]):
    """job_id -> reason: the reasons the pass wrote down, plus its queues' tails, resolved on
    demand. A lookup of a job in a tail walks the tail (fine for `shoal why`); the leader never
    iterates it whole."""

    def __init__(self, explicit: dict[str, str], tails: list[_Tail]) -> None:
        self._explicit = explicit
        self._tails = tails
        self._resolved: dict[str, str] | None = None if tails else explicit

    def _all(self) -> dict[str, str]:
        if self._resolved is None:
            resolved = dict(self._explicit)
            for tail in self._tails:
                for job_id, reason in tail.reasons():
                    resolved.setdefault(job_id, reason)
            self._resolved = resolved
        return self._resolved

    def get(self, job_id: str, default: str | None = None) -> str | None:  # type: ignore[override]
        reason = self._explicit.get(job_id)
        if reason is not None:
            return reason
        if self._resolved is not None:
            return self._resolved.get(job_id, default)
        for tail in self._tails:
            for found, reason in tail.reasons():
                if found == job_id:
                    return reason
        return default

    def __getitem__(self, job_id: str) -> str:
        reason = self.get(job_id)
        if reason is None:
            raise KeyError(job_id)
        return reason

    def __contains__(self, job_id: object) -> bool:
        return isinstance(job_id, str) and self.get(job_id) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def __repr__(self) -> str:
        return f"Waiting({self._all()!r})"


# ---------------------------------------------------------------------------------------------
# Internals. Entries of a free-capacity index are tuples (free_milli, free_mem, free_gpus,
# node_id), kept sorted; tuples keep the hot loop in C (bisect, comparisons) instead of Python.

_Entry = tuple[int, int, int, str]
_Shape = tuple[int, int, int]  # (milli_vcpus, memory_mib, gpus) of a request


class _Node:
    """Mutable free capacity of one schedulable node during a pass."""

    __slots__ = ("node_id", "env", "capacity", "milli", "mem", "gpus", "runtimes", "indexes", "gpu_ids")

    def __init__(self, view: NodeView) -> None:
        cap, free = view.capacity, view.free
        self.node_id = view.node_id
        self.env = view.compute_environment
        self.capacity: _Shape = (cap.milli_vcpus, cap.memory_mib, cap.gpus)
        # The snapshot should never say free > capacity or free < 0; clamp so that a bad view
        # cannot make us over-commit.
        self.milli = max(0, min(free.milli_vcpus, cap.milli_vcpus))
        self.mem = max(0, min(free.memory_mib, cap.memory_mib))
        self.gpus = max(0, min(free.gpus, cap.gpus))
        # Free device ids, handed out in order; never more GPUs free than ids to give.
        self.gpu_ids = list(view.gpu_ids) if view.gpu_ids is not None else None
        if self.gpu_ids is not None:
            self.gpus = min(self.gpus, len(self.gpu_ids))
        self.runtimes = view.runtimes
        self.indexes: list[_FreeIndex] = []  # every index this node is listed in

    def entry(self) -> _Entry:
        return (self.milli, self.mem, self.gpus, self.node_id)

    def take(self, milli: int, mem: int, gpus: int) -> tuple[str, ...]:
        """Take capacity; returns the GPU device ids given (none unless ids are known)."""
        old = self.entry()
        self.milli -= milli
        self.mem -= mem
        self.gpus -= gpus
        new = self.entry()
        for index in self.indexes:
            index.move(old, new)
        if gpus and self.gpu_ids is not None:
            given = tuple(self.gpu_ids[:gpus])
            del self.gpu_ids[:gpus]
            return given
        return ()


class _FreeIndex:
    """The nodes of one (environment, runtime), sorted by free capacity, for best-fit queries.

    Entries (free_milli, free_mem, free_gpus, node_id) are kept sorted in blocks of at most
    2 * _BLOCK entries; each block keeps an upper bound of the free memory and GPUs in it.
    `best_fit` finds the first entry with enough vCPUs by bisection and then walks forward,
    skipping whole blocks whose bound is too small. Without the blocks, memory-bound work
    (nodes with vCPUs free but memory gone) makes every query walk past every full node.

    The bounds are lazy: taking capacity from an entry may leave its block's bound too high
    (marked stale); a stale bound is recomputed only when a walk through the block found
    nothing, so each recomputation is paid for by an earlier move.
    """

    __slots__ = ("blocks", "firsts", "max_mem", "max_gpus", "stale")

    def __init__(self, entries: list[_Entry]) -> None:
        entries = sorted(entries)
        self.blocks = [entries[i : i + _BLOCK] for i in range(0, len(entries), _BLOCK)] or [[]]
        self.firsts = [block[0] if block else _EMPTY for block in self.blocks]
        self.max_mem = [max((e[1] for e in block), default=-1) for block in self.blocks]
        self.max_gpus = [max((e[2] for e in block), default=-1) for block in self.blocks]
        self.stale = [False] * len(self.blocks)

    def best_fit(self, milli: int, mem: int, gpus: int) -> _Entry | None:
        """The smallest entry with at least (milli, mem, gpus) free, or None."""
        probe = (milli,)
        blocks, max_mem, max_gpus = self.blocks, self.max_mem, self.max_gpus
        b = bisect_left(self.firsts, probe) - 1
        if b < 0:
            b = 0
        for bi in range(b, len(blocks)):
            if max_mem[bi] < mem or max_gpus[bi] < gpus:
                continue
            block = blocks[bi]
            for i in range(bisect_left(block, probe) if bi == b else 0, len(block)):
                entry = block[i]
                if entry[1] >= mem and entry[2] >= gpus:
                    return entry
            if self.stale[bi]:
                self._tighten(bi)
        return None

    def _tighten(self, bi: int) -> None:
        block = self.blocks[bi]
        self.max_mem[bi] = max((e[1] for e in block), default=-1)
        self.max_gpus[bi] = max((e[2] for e in block), default=-1)
        self.stale[bi] = False

    def move(self, old: _Entry, new: _Entry) -> None:
        """Replace an entry by one with less (or equal) free capacity."""
        blocks, firsts = self.blocks, self.firsts
        bi = bisect_right(firsts, old) - 1
        block = blocks[bi]
        del block[bisect_left(block, old)]
        if not block and len(blocks) > 1:
            del blocks[bi], firsts[bi], self.max_mem[bi], self.max_gpus[bi], self.stale[bi]
        else:
            firsts[bi] = block[0] if block else _EMPTY
            if old[1] == self.max_mem[bi] or old[2] == self.max_gpus[bi]:
                self.stale[bi] = True
        bi = bisect_right(firsts, new) - 1
        if bi < 0:
            bi = 0
        block = blocks[bi]
        insort(block, new)
        firsts[bi] = block[0]
        if new[1] > self.max_mem[bi]:
            self.max_mem[bi] = new[1]
        if new[2] > self.max_gpus[bi]:
            self.max_gpus[bi] = new[2]
        if len(block) > 2 * _BLOCK:
            half = block[_BLOCK:]
            del block[_BLOCK:]
            blocks.insert(bi + 1, half)
            firsts.insert(bi + 1, half[0])
            self.max_mem.insert(bi + 1, 0)
            self.max_gpus.insert(bi + 1, 0)
            self.stale.insert(bi + 1, False)
            self._tighten(bi)
            self._tighten(bi + 1)


_BLOCK = 32
_EMPTY: _Entry = (-1, -1, -1, "")  # `firsts` value of the only block of an empty index


class _FailedShapes:
    """Shapes that did not fit during this pass, and the reason each was given.

    Free capacity only shrinks during a pass, so a shape that failed keeps failing, and so does
    every shape at least as large in every dimension. Failed shapes are kept, per GPU count, as
    a staircase of their minimal (milli, mem) points: milli ascending, memory descending. A
    shape is dominated when the staircase point with the largest milli <= its milli has
    memory <= its memory — one bisect.
    """

    __slots__ = ("reasons", "stairs")

    def __init__(self) -> None:
        self.reasons: dict[_Shape, tuple[str, bool]] = {}
        self.stairs: dict[int, tuple[list[int], list[int]]] = {}

    def dominated(self, milli: int, mem: int, gpus: int) -> bool:
        for stair_gpus, (millis, mems) in self.stairs.items():
            if stair_gpus <= gpus:
                k = bisect_right(millis, milli) - 1
                if k >= 0 and mems[k] <= mem:
                    return True
        return False

    def add(self, milli: int, mem: int, gpus: int) -> None:
        millis, mems = self.stairs.setdefault(gpus, ([], []))
        k = bisect_right(millis, milli) - 1
        if k >= 0 and mems[k] <= mem:
            return  # already covered
        lo = bisect_left(millis, milli)
        hi = lo
        while hi < len(millis) and mems[hi] >= mem:
            hi += 1
        millis[lo:hi] = [milli]
        mems[lo:hi] = [mem]


class _Target:
    """Where the jobs of one (environment list, runtime) may go, and what failed there."""

    __slots__ = ("envs", "indexes", "envs_text", "failed", "_frontier", "_gpu_totals")

    def __init__(self, envs: tuple[str, ...], indexes: list[_FreeIndex], capacities: list[_Shape]):
        self.envs = envs  # environments with at least one eligible node, in queue order
        self.indexes = indexes  # one sorted free-capacity index per env, same order
        self.envs_text = ", ".join(envs)
        self.failed = _FailedShapes()
        self._frontier = _pareto_max(capacities)
        self._gpu_totals = sum(c[2] for c in capacities)

    def fail(self, shape: _Shape) -> tuple[str, bool]:
        """The reason for a shape that does not fit now; (text, counts as waiting in line)."""
        reason = self.failed.reasons.get(shape)
        if reason is not None:
            return reason
        milli, mem, gpus = shape
        needs = describe(milli, mem, gpus)
        if any(c[0] >= milli and c[1] >= mem and c[2] >= gpus for c in self._frontier):
            if gpus and any(index.best_fit(milli, mem, 0) is not None for index in self.indexes):
                # vCPUs and memory are free somewhere: the GPUs are what is missing.
                text = f"{gpus} GPU" if gpus == 1 else f"{gpus} GPUs"
                reason = (
                    f"Waiting for GPUs: needs {needs}; vCPUs and memory are free in {self.envs_text}, "
                    f"but no node there has {text} free ({self._gpu_totals} GPUs in all)",
                    True,
                )
            else:
                reason = (f"Waiting for capacity: needs {needs}; no node in {self.envs_text} has that free", True)
        else:
            largest = max(self._frontier)
            has = describe(*largest, with_gpus=gpus > 0)
            reason = (
                f"Needs {needs}; largest node in compute environment(s) {self.envs_text} has {has}",
                False,
            )
        self.failed.reasons[shape] = reason
        self.failed.add(milli, mem, gpus)
        return reason


def _pareto_max(points: list[_Shape]) -> list[_Shape]:
    """The points not dominated by another (enough to answer 'does any node ever fit X')."""
    frontier: list[_Shape] = []
    for p in sorted(set(points), reverse=True):
        if not any(q[0] >= p[0] and q[1] >= p[1] and q[2] >= p[2] for q in frontier):
            frontier.append(p)
    return frontier


def _ahead_text(ahead: int, queue: str) -> str:
    if ahead == 0:
        return f" (next in queue {queue})"
    if ahead == 1:
        return f" (1 job ahead in queue {queue})"
    return f" ({ahead} jobs ahead in queue {queue})"


_JOB_ORDER = attrgetter("order")


class _Pass:
    def __init__(self, snapshot: Snapshot, *, early_stop: bool = True) -> None:
        self.snapshot = snapshot
        self.early_stop = early_stop
        self.tails: list[_Tail] = []
        self.placements: list[Placement] = []
        self.waiting: dict[str, str] = {}
        # Schedulable nodes of enabled environments, by environment; the only nodes we place on.
        self.nodes_by_env: dict[str, list[_Node]] = {}
        seen_nodes: set[str] = set()
        envs = snapshot.envs
        for view in snapshot.nodes:
            if view.node_id in seen_nodes or not view.schedulable:
                continue
            env = envs.get(view.compute_environment)
            if env is None or not env.enabled:
                continue
            seen_nodes.add(view.node_id)
            self.nodes_by_env.setdefault(view.compute_environment, []).append(_Node(view))
        self._indexes: dict[tuple[str, str], _FreeIndex] = {}
        self._targets: dict[tuple[tuple[str, ...], str], _Target | str] = {}
        self.placed: set[str] = set()
        self.gangs: list[G.GangPlacement] = []
        self._gang_marks: list[tuple[str, int]] = []  # (waiting gang, decisions made before it)
        self.reservations: dict[str, tuple[str, ...]] = {}

    def run(self) -> Plan:
        lanes = self.snapshot.lanes
        if lanes is None:
            lanes = lanes_of(self.snapshot.runnable)
        queues = self.snapshot.queues
        known = [queues[name] for name in lanes if name in queues]
        known.sort(key=lambda q: (-q.priority, q.name))
        for queue in known:
            self._run_queue(queue.name, lanes[queue.name])
        for name, lane in lanes.items():
            if name not in queues:
                self._all_wait(lane, f"Queue {name} does not exist")
        # A job listed twice (the snapshot should never do that) is placed at most once (see
        # _run_queue) and, once placed, is not also reported as waiting. Checking here instead
        # of per job keeps a set operation off the path of the ~100k jobs that wait.
        waiting = self.waiting
        for placement in self.placements:
            waiting.pop(placement.job_id, None)
        decided = len(self.placements) + len(self.gangs)
        passed_over = frozenset(jid for jid, mark in self._gang_marks if decided > mark)
        return Plan(
            self.placements, Waiting(waiting, self.tails), self.gangs, passed_over, self.reservations
        )

    def _place_gang(self, job: JobView, envs: tuple[str, ...]) -> None:
        """A multi-node job: all its nodes now, or a reason (and maybe a reservation)."""
        if job.job_id in self.placed:
            return  # listed twice
        snapshot = self.snapshot

        def eligible(env: str, runtime: str) -> list[_Node]:
            return [n for n in self.nodes_by_env.get(env, ()) if offers(n.runtimes, runtime)]

        decision = G.place_gang(
            job,
            envs,
            eligible,
            passes_waited=snapshot.gang_passes.get(job.job_id, 0),
            reserve_after=snapshot.gang_reserve_after,
        )
        if decision.placement is not None:
            self.placed.add(job.job_id)
            self.gangs.append(decision.placement)
            return
        self.waiting[job.job_id] = decision.reason
        self._gang_marks.append((job.job_id, len(self.placements) + len(self.gangs)))
        if decision.reserved:
            self.reservations[job.job_id] = decision.reserved

    def _all_wait(self, lane: Lane, reason: str) -> None:
        if lane.jobs:
            self.tails.append(_Tail("", lane.jobs, 0, 0, lane.skip, {}, self.placed, fixed=reason))

    # -- per queue ---------------------------------------------------------------------------

    def _queue_reason(self, name: str) -> tuple[str, tuple[str, ...]]:
        """('', enabled envs) when the queue can run jobs, else (reason, ())."""
        queue = self.snapshot.queues[name]
        if not queue.enabled:
            return f"Queue {name} is DISABLED", ()
        envs = self.snapshot.envs
        enabled = []
        problems = []
        for env_name in dict.fromkeys(queue.compute_environments):
            env = envs.get(env_name)
            if env is None:
                problems.append(f"{env_name} does not exist")
            elif not env.enabled:
                problems.append(f"{env_name} is DISABLED")
            else:
                enabled.append(env_name)
        if not enabled:
            detail = f" ({'; '.join(problems)})" if problems else " (it has none)"
            return f"No compute environment of queue {name} is ENABLED{detail}", ()
        return "", tuple(enabled)

    def _target(self, envs: tuple[str, ...], runtime: str) -> _Target | str:
        key = (envs, runtime)
        target = self._targets.get(key)
        if target is not None:
            return target
        if not any(self.nodes_by_env.get(env) for env in envs):
            target = f"No READY node in compute environment(s) {', '.join(envs)}"
        else:
            usable: list[str] = []
            indexes: list[_FreeIndex] = []
            capacities: list[_Shape] = []
            for env in envs:
                eligible = [n for n in self.nodes_by_env.get(env, ()) if offers(n.runtimes, runtime)]
                if not eligible:
                    continue
                usable.append(env)
                indexes.append(self._index(env, runtime, eligible))
                capacities.extend(n.capacity for n in eligible)
            if not usable:
                target = f"Needs runtime {runtime}; no READY node in {', '.join(envs)} offers it"
            else:
                target = _Target(tuple(usable), indexes, capacities)
        self._targets[key] = target
        return target

    def _index(self, env: str, runtime: str, eligible: list[_Node]) -> _FreeIndex:
        key = (env, runtime)
        index = self._indexes.get(key)
        if index is None:
            index = self._indexes[key] = _FreeIndex([n.entry() for n in eligible])
            for n in eligible:
                n.indexes.append(index)
        return index

    def _run_queue(self, name: str, lane: Lane) -> None:
        waiting = self.waiting
        reason, envs = self._queue_reason(name)
        if reason:
            self._all_wait(lane, reason)
            return
        jobs, skip = lane.jobs, lane.skip
        nodes: dict[str, _Node] = {n.node_id: n for env in envs for n in self.nodes_by_env.get(env, ())}
        fair = self.snapshot.queues[name].fairshare
        order: FairOrder | None = None
        if fair is not None:  # a fair-share queue: its own order (controller.scheduler.fairshare)
            capacity = sum(n.capacity[0] for n in nodes.values()) if fair.compute_reservation else 0
            order = FairOrder(jobs, fair, capacity)
        placements_append = self.placements.append
        placed = self.placed
        targets: dict[str, _Target | str] = {}
        # Shapes of this queue that might still fit somewhere; when none is left, stop.
        open_shapes: set[tuple] | None = None
        open_gangs: set[str] = set()  # multi-node jobs of this queue not looked at yet
        if self.early_stop:
            open_shapes = set()
            for shape_key in lane.shapes:
                if G.is_gang_shape(shape_key):
                    open_gangs.add(G.gang_job_id(shape_key))
                    continue
                runtime = shape_key[0]
                target = targets.get(runtime)
                if target is None:
                    target = targets[runtime] = self._target(envs, runtime)
                if type(target) is not str:
                    open_shapes.add(shape_key)
            if open_shapes:
                self._close_shapes(open_shapes, targets)  # an earlier queue may have failed some
        runtime = None
        target = ""
        failed = reasons = None
        ahead = 0  # jobs of this queue ahead of the current one, waiting for capacity
        for i, job in enumerate(jobs if order is None else order):
            if open_shapes is not None and not open_shapes and not open_gangs:
                self._leave_tail(name, lane, i, ahead, targets, envs, order)
                return
            job_id = job.job_id
            if job.gang:
                open_gangs.discard(job_id)
                if job_id not in skip:
                    self._place_gang(job, envs)
                continue
            if job_id in skip:
                continue
            if job.runtime != runtime:
                runtime = job.runtime
                target = targets.get(runtime)
                if target is None:
                    target = targets[runtime] = self._target(envs, runtime)
                if type(target) is not str:
                    failed = target.failed
                    reasons = failed.reasons
            if type(target) is str:
                waiting[job_id] = target
                continue
            request = job.request
            milli = request.milli_vcpus
            mem = request.memory_mib
            gpus = request.gpus
            if order is not None and not order.allows(milli):
                waiting[job_id] = order.reservation_text()
                continue
            shape = (milli, mem, gpus)
            hit = reasons.get(shape)
            if hit is None and failed.stairs and failed.dominated(milli, mem, gpus):
                hit = target.fail(shape)
            if hit is None:
                for index in target.indexes:
                    entry = index.best_fit(milli, mem, gpus)
                    if entry is None:
                        continue
                    if job_id in placed:
                        break  # listed twice and already placed
                    placed.add(job_id)
                    node = nodes[entry[3]]
                    gpu_ids = node.take(milli, mem, gpus)
                    placements_append(Placement(job_id, node.node_id, node.env, gpu_ids=gpu_ids))
                    if order is not None:
                        order.placed(job)
                    break
                else:
                    hit = target.fail(shape)
                    if open_shapes:
                        self._close_shapes(open_shapes, targets)
            if hit is not None:
                text, in_line = hit
                if not in_line:
                    waiting[job_id] = text
                elif ahead > 1:
                    waiting[job_id] = f"{text} ({ahead} jobs ahead in queue {name})"
                    ahead += 1
                else:
                    waiting[job_id] = text + _ahead_text(ahead, name)
                    ahead += 1

    @staticmethod
    def _close_shapes(open_shapes: set[tuple], targets: dict[str, _Target | str]) -> None:
        """Drop the shapes that can no longer fit (a new shape just failed)."""
        for shape_key in list(open_shapes):
            target = targets[shape_key[0]]
            assert type(target) is not str
            milli, mem, gpus = shape_key[1], shape_key[2], shape_key[3]
            if (milli, mem, gpus) in target.failed.reasons or target.failed.dominated(milli, mem, gpus):
                open_shapes.discard(shape_key)

    def _leave_tail(self, name: str, lane: Lane, start: int, ahead: int,
                    targets: dict[str, _Target | str], envs: tuple[str, ...],
                    order: FairOrder | None = None) -> None:  # fmt: skip
        """The rest of the queue waits: record why per shape, resolve per job on demand."""
        jobs = lane.jobs
        if order is not None:  # a fair-share queue: its rest in fair-share order
            jobs, start = order.rest(), 0
        if start >= len(jobs):
            return
        reason_of: dict[tuple, tuple[str, bool] | str] = {}
        for shape_key in set(lane.shapes):
            if G.is_gang_shape(shape_key):
                continue  # a queue is only left once its multi-node jobs were looked at
            target = targets.get(shape_key[0])
            if target is None:
                target = targets[shape_key[0]] = self._target(envs, shape_key[0])
            if type(target) is str:
                reason_of[shape_key] = target
            elif order is not None and not order.allows(shape_key[1]):
                reason_of[shape_key] = order.reservation_text()  # as the loop would have said
            else:
                reason_of[shape_key] = target.fail(shape_key[1:])
        self.tails.append(_Tail(name, jobs, start, ahead, lane.skip, reason_of, self.placed))


def lanes_of(runnable: Sequence[JobView]) -> dict[str, Lane]:
    """Group a flat list of runnable jobs into per-queue lanes in FIFO order."""
    by_queue: dict[str, list[JobView]] = {}
    for job in runnable:
        jobs = by_queue.get(job.queue)
        if jobs is None:
            by_queue[job.queue] = [job]
        else:
            jobs.append(job)
    lanes = {}
    for name, jobs in by_queue.items():
        jobs.sort(key=_JOB_ORDER)
        lanes[name] = Lane(jobs, frozenset(shape_of(j) for j in jobs))
    return lanes
