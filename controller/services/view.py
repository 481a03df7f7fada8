"""The replica's in-memory view of the cluster, fed by one range read and a watch.

Every replica keeps one. Reads (DescribeJobs, ListJobs, WatchJobs) are served from it; the
leader schedules from it. It is built with a single consistent read of the whole prefix at
revision R and then follows a watch from R+1; when the watch reports that R was compacted it
rebuilds from a fresh read (DESIGN: never skip events).

Writers wait for `wait_for(revision)` after a successful write before answering, which gives a
client read-your-writes on the replica it talks to, and lets the leader schedule from a view
that already contains its own last pass.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from controller.domain import jobs as J
from controller.services.runnable import RunnableIndex
from controller.store.etcd import Compacted, EtcdClient, Event, KeyValue
from controller.store.keys import Keys
from shoal import log
from shoal.v1 import state_pb2, types_pb2

logger = log.get("controller.view")


@dataclass(slots=True)
class JobEntry:
    job: types_pb2.Job
    # FIFO order: (create revision of the key that first held it, index within its batch).
    order: tuple[int, int]
    mod_revision: int
    # Set while the job still lives in an unexpanded submission batch.
    batch_id: str = ""


@dataclass
class ViewData:
    jobs: dict[str, JobEntry] = field(default_factory=dict)
    batches: dict[str, list[str]] = field(default_factory=dict)  # batch id -> job ids
    controls: dict[str, state_pb2.JobControl] = field(default_factory=dict)
    queues: dict[str, types_pb2.JobQueue] = field(default_factory=dict)
    envs: dict[str, types_pb2.ComputeEnvironment] = field(default_factory=dict)
    definitions: dict[tuple[str, int], types_pb2.JobDefinition] = field(default_factory=dict)
    nodes: dict[str, types_pb2.Node] = field(default_factory=dict)
    policies: dict[str, types_pb2.SchedulingPolicy] = field(default_factory=dict)
    # Fair-share queue name -> its shares' decayed usage (written by the leader).
    usage: dict[str, state_pb2.FairshareUsage] = field(default_factory=dict)
    # Indexes, kept in step with `jobs`.
    by_status: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))
    by_node: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    dependents: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    # Jobs not started yet (SUBMITTED, PENDING, RUNNABLE) per queue: the queue-depth limit.
    waiting_by_queue: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # RUNNABLE jobs per queue in FIFO order: what the leader schedules from.
    runnable: RunnableIndex = field(default_factory=RunnableIndex)
    # Jobs per (queue, status): the dashboard's and DescribeCluster's counts without a scan.
    by_queue_status: dict[tuple[str, int], int] = field(default_factory=lambda: defaultdict(int))
    # Jobs that reached RUNNING / a final state, per minute of their started_at / stopped_at
    # (minute = ms // 60000); rebuilt from the jobs on every load, pruned to the last hours.
    started_per_minute: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    finished_per_minute: dict[int, int] = field(default_factory=lambda: defaultdict(int))


JobListener = Callable[[types_pb2.Job, int], None]

# Minutes of per-minute counts kept beyond the newest one seen (the dashboard shows one hour).
_MINUTES_KEPT = 180


def _create_revision(kv: KeyValue) -> int:
    return kv.create_revision


def _count_minute(counts: dict[int, int], at_ms: int) -> None:
    minute = at_ms // 60_000
    counts[minute] += 1
    if len(counts) > 2 * _MINUTES_KEPT:  # rare: prune minutes far behind the newest
        newest = max(counts)
        for old in [m for m in counts if m < newest - _MINUTES_KEPT]:
            del counts[old]


class ClusterView:
    def __init__(self, client: EtcdClient, keys: Keys) -> None:
        self._client = client
        self._keys = keys
        self.data = ViewData()
        self.revision = 0
        self.ready = asyncio.Event()
        # Called after every applied change (the leader loop's wake-up).
        self._change_listeners: set[Callable[[], None]] = set()
        self._revision_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._job_listeners: set[JobListener] = set()
        self._task: asyncio.Task[None] | None = None
        self.healthy = False

    # ---- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="cluster-view")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        delay = 0.05
        while True:
            try:
                await self._load()
                delay = 0.05
                async for events in self._client.watch(
                    self._keys.root, prefix=True, start_revision=self.revision + 1
                ):
                    self._apply_events(events)
            except Compacted as err:
                logger.warning("view.compacted", compact_revision=err.compact_revision)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - etcd down: keep serving the last view, say so
                self.healthy = False
                logger.warning("view.etcd_unavailable", error=str(err))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _load(self) -> None:
        kvs, revision = await self._client.get_prefix(self._keys.root)
        data = ViewData()
        self.data = data
        # In creation order, as the watch would have delivered them: the jobs dict then iterates
        # roughly oldest first, which ListJobs' paging relies on to be cheap (not for correctness).
        for kv in sorted(kvs, key=_create_revision):
            self._apply_put(kv)
        self.revision = revision
        self.healthy = True
        self.ready.set()
        self._wake_revision_waiters()
        self._changed()
        logger.info("view.loaded", revision=revision, jobs=len(data.jobs), nodes=len(data.nodes))

    # ---- applying changes --------------------------------------------------------------

    def _apply_events(self, events: Iterable[Event]) -> None:
        last = self.revision
        for ev in events:
            if ev.type == "put":
                self._apply_put(ev.kv)
            else:
                self._apply_delete(ev.kv)
            last = max(last, ev.kv.mod_revision)
        self.revision = last
        self.healthy = True
        self._wake_revision_waiters()
        self._changed()

    def _apply_put(self, kv: KeyValue) -> None:
        kind, name = self._keys.parse(kv.key)
        d = self.data
        if kind == "jobs":
            job = types_pb2.Job.FromString(kv.value)
            old = d.jobs.get(name)
            order = old.order if old is not None else (kv.create_revision, job.batch_index)
            self._index_job(name, old.job if old else None, job, order)
            d.jobs[name] = JobEntry(job, order, kv.mod_revision)
            if self._job_listeners:
                self._notify(job, kv.mod_revision)
        elif kind == "subs":
            batch = state_pb2.SubmissionBatch.FromString(kv.value)
            ids = []
            jobs = d.jobs
            create, mod = kv.create_revision, kv.mod_revision
            notify = self._notify if self._job_listeners else None
            # Up to 1,000 new SUBMITTED jobs per value: the indexes by hand (what `_index_job`
            # does for a new SUBMITTED job), anything else through `_index_job`.
            submitted = d.by_status[J.SUBMITTED]
            waiting = d.waiting_by_queue
            counts = d.by_queue_status
            for job in batch.jobs:
                job_id = job.job_id
                ids.append(job_id)
                if job_id in jobs:  # already expanded by the leader
                    continue
                order = (create, job.batch_index)
                if job.status == J.SUBMITTED and not job.node_id:
                    submitted.add(job_id)
                    waiting[job.job_queue] += 1
                    counts[(job.job_queue, J.SUBMITTED)] += 1
                    for dep in job.depends_on:
                        d.dependents[dep.job_id].add(job_id)
                else:
                    self._index_job(job_id, None, job, order)
                jobs[job_id] = JobEntry(job, order, mod, name)
                if notify is not None:
                    notify(job, mod)
            d.batches[name] = ids
        elif kind == "control":
            d.controls[name] = state_pb2.JobControl.FromString(kv.value)
        elif kind == "queues":
            d.queues[name] = types_pb2.JobQueue.FromString(kv.value)
        elif kind == "envs":
            d.envs[name] = types_pb2.ComputeEnvironment.FromString(kv.value)
        elif kind == "defs":
            definition = types_pb2.JobDefinition.FromString(kv.value)
            d.definitions[(definition.job_definition_name, definition.revision)] = definition
        elif kind == "nodes":
            d.nodes[name] = types_pb2.Node.FromString(kv.value)
        elif kind == "policies":
            d.policies[name] = types_pb2.SchedulingPolicy.FromString(kv.value)
        elif kind == "usage":
            d.usage[name] = state_pb2.FairshareUsage.FromString(kv.value)

    def _apply_delete(self, kv: KeyValue) -> None:
        kind, name = self._keys.parse(kv.key)
        d = self.data
        if kind == "jobs":
            old = d.jobs.pop(name, None)
            if old is not None:
                self._index_job(name, old.job, None)
        elif kind == "subs":
            # The leader expanded the batch: its jobs now live under jobs/ (written in the
            # same or earlier transactions), so only unexpanded leftovers are dropped.
            for job_id in d.batches.pop(name, []):
                entry = d.jobs.get(job_id)
                if entry is not None and entry.batch_id == name:
                    d.jobs.pop(job_id)
                    self._index_job(job_id, entry.job, None)
        elif kind == "control":
            d.controls.pop(name, None)
        elif kind == "queues":
            d.queues.pop(name, None)
        elif kind == "envs":
            d.envs.pop(name, None)
        elif kind == "defs":
            def_name, _, rev = name.rpartition("/")
            with contextlib.suppress(ValueError):
                d.definitions.pop((def_name, int(rev)), None)
        elif kind == "nodes":
            d.nodes.pop(name, None)
        elif kind == "policies":
            d.policies.pop(name, None)
        elif kind == "usage":
            d.usage.pop(name, None)

    def _index_job(
        self,
        job_id: str,
        old: types_pb2.Job | None,
        new: types_pb2.Job | None,
        order: tuple[int, int] = (0, 0),
    ) -> None:
        d = self.data
        if old is not None:
            if old.status == J.RUNNABLE:
                d.runnable.remove(job_id)
            if old.status in J.WAITING:
                d.waiting_by_queue[old.job_queue] -= 1
            d.by_status[old.status].discard(job_id)
            d.by_queue_status[(old.job_queue, old.status)] -= 1
            if old.node_id:
                d.by_node[old.node_id].discard(job_id)
            if new is None:
                for dep in old.depends_on:
                    d.dependents[dep.job_id].discard(job_id)
        if new is not None:
            if new.status == J.RUNNABLE:
                d.runnable.add(new, order)
            if new.status in J.WAITING:
                d.waiting_by_queue[new.job_queue] += 1
            d.by_status[new.status].add(job_id)
            d.by_queue_status[(new.job_queue, new.status)] += 1
            if new.status == J.RUNNING and new.started_at and (old is None or old.started_at != new.started_at):
                _count_minute(d.started_per_minute, new.started_at)
            if new.status in J.FINAL and new.stopped_at and (old is None or old.status not in J.FINAL):
                _count_minute(d.finished_per_minute, new.stopped_at)
            if new.node_id and new.status in J.ACTIVE:
                d.by_node[new.node_id].add(job_id)
            if old is None:
                for dep in new.depends_on:
                    d.dependents[dep.job_id].add(job_id)

    # ---- waiting and listening ---------------------------------------------------------

    async def wait_for(self, revision: int, timeout: float = 10.0) -> None:
        """Return once the view includes `revision` (raises TimeoutError otherwise)."""
        if self.revision >= revision:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._revision_waiters.append((revision, fut))
        try:
            await asyncio.wait_for(fut, timeout)
        finally:
            if not fut.done():
                fut.cancel()
            with contextlib.suppress(ValueError):
                self._revision_waiters.remove((revision, fut))

    async def sync(self, timeout: float = 10.0) -> None:
        """Catch up with etcd's current revision (a linearizable read, then wait)."""
        await self.wait_for(await self._client.revision(), timeout)

    def _wake_revision_waiters(self) -> None:
        if not self._revision_waiters:
            return
        keep = []
        for revision, fut in self._revision_waiters:
            if revision <= self.revision:
                if not fut.done():
                    fut.set_result(None)
            else:
                keep.append((revision, fut))
        self._revision_waiters = keep

    def add_change_listener(self, listener: Callable[[], None]) -> None:
        self._change_listeners.add(listener)

    def remove_change_listener(self, listener: Callable[[], None]) -> None:
        self._change_listeners.discard(listener)

    def _changed(self) -> None:
        for listener in list(self._change_listeners):
            listener()

    def add_job_listener(self, listener: JobListener) -> None:
        self._job_listeners.add(listener)

    def remove_job_listener(self, listener: JobListener) -> None:
        self._job_listeners.discard(listener)

    def _notify(self, job: types_pb2.Job, revision: int) -> None:
        if not self._job_listeners:  # the common case: no WatchJobs stream open
            return
        for listener in list(self._job_listeners):
            listener(job, revision)

    # ---- queries -----------------------------------------------------------------------

    def job(self, job_id: str) -> types_pb2.Job | None:
        entry = self.data.jobs.get(job_id)
        return entry.job if entry is not None else None

    def latest_definition(self, name: str, *, active_only: bool = True) -> types_pb2.JobDefinition | None:
        best = None
        for (def_name, rev), definition in self.data.definitions.items():
            if def_name != name or (active_only and definition.status != "ACTIVE"):
                continue
            if best is None or rev > best.revision:
                best = definition
        return best

    def queue_status_counts(self) -> dict[str, dict[int, int]]:
        """Queue -> status -> number of jobs in the hot keyspace (every known queue present)."""
        out: dict[str, dict[int, int]] = {q: {} for q in self.data.queues}
        for (queue, status), n in self.data.by_queue_status.items():
            if n:
                out.setdefault(queue, {})[status] = n
        return out

    def jobs_per_minute(self, now_ms: int, minutes: int = 60) -> list[tuple[int, int, int]]:
        """(minute start ms, started, finished) for the `minutes` minutes up to `now_ms`."""
        last = now_ms // 60_000
        d = self.data
        return [
            (m * 60_000, d.started_per_minute.get(m, 0), d.finished_per_minute.get(m, 0))
            for m in range(last - minutes + 1, last + 1)
        ]

    def active_jobs_on(self, node_id: str) -> list[types_pb2.Job]:
        return [self.data.jobs[j].job for j in self.data.by_node.get(node_id, ()) if j in self.data.jobs]
