"""RUNNABLE jobs per queue, kept in FIFO order between scheduling passes.

The leader schedules from this index instead of collecting and sorting every RUNNABLE job on
every pass: with 100,000 jobs queued and a few slots freeing up at a time, a pass then costs
what it places, not what waits (see `controller.scheduler.placement`, which leaves a queue as
soon as none of its shapes can fit).

The view (`controller.services.view`) keeps it in step with the jobs it holds: `add` when a job
becomes RUNNABLE, `remove` when it stops being RUNNABLE. Both are O(1); the work of keeping a
queue's list sorted is done when the leader asks for the queue's lane (`lanes`), in one go:
a watch batch that admits 10,000 jobs in random order costs one sort of a nearly sorted list,
not 10,000 inserts into the middle of it. Lists handed out are never changed afterwards (a
later change copies first), so a pass's `Waiting` may keep pointing at them.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from operator import attrgetter

from controller.domain import jobs as J
from controller.domain import multinode
from controller.scheduler import JobView, Resources
from controller.scheduler.snapshot import Lane, NodeRequest, ShapeKey, shape_of
from shoal.v1 import types_pb2

_ORDER = attrgetter("order")
# Above this many removals at once, one filtering pass beats a bisect + delete per job.
_BULK_REMOVE = 32


def job_view(job: types_pb2.Job, order: tuple[int, int]) -> JobView | None:
    """What the scheduler needs of a runnable job (None for an array parent: never placed)."""
    if job.array_properties.size:
        return None
    container = job.container
    r = container.resources
    gang: tuple[NodeRequest, ...] = ()
    if job.node_properties.num_nodes:  # a multi-node job: placed as a whole
        gang = tuple(
            NodeRequest(
                Resources.from_vcpus(c.resources.vcpus, c.resources.memory_mib, c.resources.gpus),
                _runtime_of(c),
            )
            for c in multinode.node_containers(job.node_properties)
        )
    return JobView(
        job_id=job.job_id,
        queue=job.job_queue,
        request=Resources.from_vcpus(r.vcpus, r.memory_mib, r.gpus),
        order=order,
        runtime=_runtime_of(container),
        share=job.share_identifier,
        priority=job.scheduling_priority,
        gang=gang,
    )


def _runtime_of(container: types_pb2.ContainerProperties) -> str:
    # An image without a runtime needs a node with any container runtime.
    return container.runtime or ("container" if container.image else "")


class _Queue:
    __slots__ = ("jobs", "added", "removed", "shapes", "shared")

    def __init__(self) -> None:
        self.jobs: list[JobView] = []  # sorted by order, once `added`/`removed` are applied
        self.added: dict[str, JobView] = {}
        self.removed: list[JobView] = []
        self.shapes: Counter[ShapeKey] = Counter()
        self.shared = False  # `jobs` was handed out: copy before changing it

    def settle(self) -> list[JobView]:
        jobs = self.jobs
        if self.removed:
            if self.shared:
                jobs = list(jobs)
            if len(self.removed) > _BULK_REMOVE:
                gone = {id(v) for v in self.removed}
                jobs = [v for v in jobs if id(v) not in gone]
            else:
                for view in self.removed:
                    i = bisect_left(jobs, view.order, key=_ORDER)
                    while jobs[i] is not view:
                        i += 1
                    del jobs[i]
            self.removed = []
            self.shared = False
        if self.added:
            new = sorted(self.added.values(), key=_ORDER)
            if self.shared:
                jobs = list(jobs)
            if jobs and new[0].order < jobs[-1].order:
                jobs.extend(new)
                jobs.sort(key=_ORDER)  # two sorted runs: one merge
            else:
                jobs.extend(new)
            self.added = {}
            self.shared = False
        self.jobs = jobs
        return jobs


class RunnableIndex:
    """RUNNABLE jobs by queue in FIFO order, their shapes, and runnable array children."""

    def __init__(self) -> None:
        self._queues: dict[str, _Queue] = {}
        self._views: dict[str, JobView] = {}
        # Array parent id -> ids of its RUNNABLE children.
        self.children: dict[str, set[str]] = {}
        # Views the leader already built for jobs it just made RUNNABLE (see `hint`).
        self._hints: dict[str, JobView] = {}

    def __len__(self) -> int:
        return len(self._views)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._views

    def get(self, job_id: str) -> JobView | None:
        return self._views.get(job_id)

    def hint(self, view: JobView) -> None:
        """A view the leader built for a job it is about to write as RUNNABLE: `add` takes it
        instead of building the same one again when the write comes back through the watch."""
        if len(self._hints) > 100_000:  # writes that never came back (a lost term): forget them
            self._hints.clear()
        self._hints[view.job_id] = view

    def add(self, job: types_pb2.Job, order: tuple[int, int]) -> None:
        view = self._hints.pop(job.job_id, None)
        if view is None or view.order != order or view.queue != job.job_queue:
            view = job_view(job, order)
        if view is None:
            return
        if view.job_id in self._views:
            self.remove(view.job_id)
        self._views[view.job_id] = view
        queue = self._queues.get(view.queue)
        if queue is None:
            queue = self._queues[view.queue] = _Queue()
        queue.added[view.job_id] = view
        queue.shapes[shape_of(view)] += 1
        parent = J.parent_id(view.job_id)
        if parent:
            self.children.setdefault(parent, set()).add(view.job_id)

    def remove(self, job_id: str) -> None:
        view = self._views.pop(job_id, None)
        if view is None:
            return
        queue = self._queues[view.queue]
        if queue.added.get(job_id) is view:
            del queue.added[job_id]
        else:
            queue.removed.append(view)
        shape = shape_of(view)
        queue.shapes[shape] -= 1
        if not queue.shapes[shape]:
            del queue.shapes[shape]
        parent = J.parent_id(job_id)
        if parent:
            siblings = self.children.get(parent)
            if siblings is not None:
                siblings.discard(job_id)
                if not siblings:
                    del self.children[parent]

    def lanes(self) -> dict[str, Lane]:
        """Queue name -> its RUNNABLE jobs in FIFO order (lists that will not change)."""
        out = {}
        for name, queue in list(self._queues.items()):
            jobs = queue.settle()
            if not jobs:
                if not queue.shapes:
                    del self._queues[name]
                continue
            queue.shared = True
            out[name] = Lane(jobs, frozenset(queue.shapes))
        return out
