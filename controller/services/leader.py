"""The leader's loop: the only writer of job state.

One pass = drain agent events and cancel/terminate requests, expand new submissions, admit
jobs whose dependencies are settled, fail over the work of lost agents, run the pure
scheduler, then write every change in as few fenced etcd transactions as etcd allows, and
only then tell the agents. A pass sees the view as of the previous pass's commit (it waits for
its own writes to come back through the watch), so no job is ever placed twice.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from controller.config import ControllerConfig
from controller.domain import jobs as J
from controller.domain import multinode as M
from controller.scheduler import (
    EnvView,
    JobView,
    NodeView,
    QueueView,
    Resources,
    Snapshot,
    place,
)
from controller.scheduler.snapshot import Lane, shape_of
from controller.services import fairshare as F
from controller.services import sessions as S
from controller.services.gangs import GangRunner
from controller.services.history import HistoryStore, archivable
from controller.services.runnable import job_view
from controller.services.view import ClusterView
from controller.store.election import Leadership
from controller.store.etcd import EtcdClient, Op
from controller.store.keys import Keys
from shoal import errors, log
from shoal.v1 import agent_pb2, state_pb2, types_pb2

logger = log.get("controller.leader")

REASON_AGENT_DISCONNECTED = "Host lost: agent disconnected"
PASS_DELAY = 0.001
"""Seconds a pass waits after its wake-up, so that replies ready at that moment go out first."""
REASON_AGENT_RESTARTED = "Host lost: agent restarted"
REASON_INTERRUPTED = "Host interrupted: termination notice"


def _wall_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class LeaderStats:
    """Counters of the leader loop, read by the metrics endpoint at scrape time."""

    passes: int = 0
    placements: int = 0
    jobs_written: int = 0
    last_pass_seconds: float = 0.0
    pass_seconds_total: float = 0.0
    # The placement decision alone (`_schedule`: building the inputs, `place`, the new
    # attempts), without the pass's events, admissions and etcd writes.
    decide_seconds_total: float = 0.0
    last_decide_seconds: float = 0.0
    nodes_lost: int = 0


@dataclass
class _DrainRequest:
    node_id: str
    interrupt: bool
    deadline_seconds: int
    reason: str
    done: asyncio.Future[types_pb2.Node] | None = None


@dataclass
class _UndrainRequest:
    node_id: str
    done: asyncio.Future[types_pb2.Node] | None = None


@dataclass
class _Pass:
    """What one pass changes; written together, then acted upon."""

    jobs: dict[str, types_pb2.Job] = field(default_factory=dict)
    nodes: dict[str, types_pb2.Node] = field(default_factory=dict)
    deletes: list[bytes] = field(default_factory=list)
    # Deleted last, after the jobs they contained were written.
    batch_deletes: list[bytes] = field(default_factory=list)
    commands: list[tuple[str, agent_pb2.ControllerMessage]] = field(default_factory=list)
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    finished: set[str] = field(default_factory=set)


class LeaderLoop:
    def __init__(
        self,
        *,
        config: ControllerConfig,
        client: EtcdClient,
        keys: Keys,
        view: ClusterView,
        leadership: Leadership,
        mono: Callable[[], float] = time.monotonic,
        wall_ms: Callable[[], int] = _wall_ms,
    ) -> None:
        self.config = config
        self.client = client
        self.keys = keys
        self.view = view
        self.leadership = leadership
        self.epoch = leadership.epoch
        self._mono = mono
        self._wall_ms = wall_ms
        self.sessions: dict[str, S.AgentSession] = {}
        self._events: list[S.AgentEvent] = []
        self._wake = asyncio.Event()
        self._term_started = mono()
        self._disconnected_at: dict[str, float] = {}
        # Broken streams: node -> seconds after `_disconnected_at` its attempts are failed over
        # (its host's fence has stopped them by then: sessions.requeue_delay).
        self._requeue_after: dict[str, float] = {}
        # Hand-overs announced on the current stream: node -> granted window (seconds).
        self._handovers: dict[str, float] = {}
        # StartAttempt already sent in this term (or known held by the agent).
        self._sent_starts: set[tuple[str, int]] = set()
        self._first_pass = True
        # job id -> why it waits, from the last scheduling pass (for `shoal why`).
        self.waiting: Mapping[str, str] = {}
        self.stats = LeaderStats()
        self._node_requests: list[_DrainRequest | _UndrainRequest] = []
        # Requeued jobs whose interrupted attempt may still be stopping: job id -> (attempt, until).
        self._stopping: dict[str, tuple[int, float]] = {}
        self.history = HistoryStore(client, keys)
        # Set by the replica when MANAGED environments are scaled: env name -> what it is doing.
        self.scaling_status: Callable[[str], str | None] = lambda _env: None
        # Statuses of dependencies that live only in history (looked up before a pass).
        self._archived_status: dict[str, int] = {}
        # Multi-node jobs: starting, ending and retrying their nodes together.
        self.gangs = GangRunner(self)

    # ---- inputs ------------------------------------------------------------------------

    def submit_event(self, event: S.AgentEvent) -> None:
        self._events.append(event)
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    async def drain(
        self, node_id: str, *, interrupt: bool = False, deadline_seconds: int = 0, reason: str = ""
    ) -> types_pb2.Node:
        """Stop placing work on a node; optionally interrupt its jobs now or at a deadline."""
        return await self._node_request(_DrainRequest(node_id, interrupt, deadline_seconds, reason))

    async def undrain(self, node_id: str) -> types_pb2.Node:
        """Let a DRAINING or DRAINED node take work again."""
        return await self._node_request(_UndrainRequest(node_id))

    async def _node_request(self, request: _DrainRequest | _UndrainRequest) -> types_pb2.Node:
        if request.node_id not in self.view.data.nodes:
            raise errors.NotFound(f"node_id: node '{request.node_id}' does not exist")
        request.done = asyncio.get_running_loop().create_future()
        self._node_requests.append(request)
        self._wake.set()
        return await asyncio.wait_for(request.done, 30)

    # ---- the loop ----------------------------------------------------------------------

    async def run(self) -> None:
        """Run passes until leadership is lost (returns) or fails (raises)."""
        self.view.add_change_listener(self.wake)
        tick = min(0.2, self.config.reconnect_grace / 2)
        archiver = asyncio.create_task(self._archive_forever(), name="archive")
        try:
            while not self.leadership.lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), tick)
                self._wake.clear()
                if not self.leadership.valid():
                    break
                # Let what the change that woke us made ready run first (the answer to the
                # SubmitJobs call that wrote it, for one) before a pass holds the loop.
                await asyncio.sleep(PASS_DELAY)
                await self._resolve_archived_dependencies()
                await self._one_pass()
        finally:
            archiver.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await archiver
            self.view.remove_change_listener(self.wake)
            for session in list(self.sessions.values()):
                session.close()

    async def _archive_forever(self) -> None:
        """Move long-finished jobs to history and expire old history, while leading."""
        interval = max(0.5, min(60.0, self.config.archive_after / 2))
        while not self.leadership.lost.is_set():
            await asyncio.sleep(interval)
            if not self.leadership.valid():
                return
            try:
                now = self._wall_ms()
                jobs = archivable(
                    self.view.data.jobs, self.view.data.dependents, now, int(self.config.archive_after * 1000)
                )
                if jobs:
                    moved = await self.history.archive(jobs, [self.leadership.guard()])
                    logger.info("history.archived", jobs=moved)
                expired = await self.history.expire(
                    now - int(self.config.history_retention * 1000), [self.leadership.guard()]
                )
                if expired:
                    logger.info("history.expired", jobs=expired)
            except errors.FencedOut:
                self.leadership.lost.set()
                return
            except errors.ShoalError as err:
                logger.warning("history.archive_failed", error=str(err))

    async def _resolve_archived_dependencies(self) -> None:
        """Find the final status of dependencies that are no longer in the hot keyspace."""
        data = self.view.data
        candidates = set(data.by_status.get(J.SUBMITTED, ()))
        if self._first_pass:
            candidates |= data.by_status.get(J.PENDING, set())
        missing = set()
        for jid in candidates:
            entry = data.jobs.get(jid)
            if entry is None:
                continue
            for dep in entry.job.depends_on:
                if dep.job_id not in data.jobs and dep.job_id not in self._archived_status:
                    missing.add(dep.job_id)
        if not missing:
            return
        try:
            found = await self.history.lookup(sorted(missing))
        except errors.ShoalError as err:
            logger.warning("history.lookup_failed", error=str(err))
            return
        for job_id in missing:
            job = found.get(job_id)
            # Gone from history too (past retention): it cannot be waited for any more.
            self._archived_status[job_id] = job.status if job is not None else J.FAILED

    async def _one_pass(self) -> None:
        started = self._mono()
        try:
            await self._pass()
        finally:
            elapsed = self._mono() - started
            self.stats.passes += 1
            self.stats.last_pass_seconds = elapsed
            self.stats.pass_seconds_total += elapsed

    async def _pass(self) -> None:
        p = _Pass()
        now = self._wall_ms()
        mono = self._mono()
        events, self._events = self._events, []
        node_requests, self._node_requests = self._node_requests, []
        self._expand_submissions(p)
        for event in events:
            self._apply_event(p, event, now, mono)
        self._check_timeouts(p, now, mono)
        for request in node_requests:
            self._apply_node_request(p, request, now)
        self._progress_drains(p, now)
        self._apply_controls(p, now)
        self.gangs.settle(p, now)
        self._admit(p, now)
        self._update_parents(p, now)
        self._admit(p, now)  # dependents of array jobs that just ended
        await asyncio.sleep(0)  # let keepalives and agent streams run between the heavy steps
        decide_started = self._mono()
        self._schedule(p)
        decided = self._mono() - decide_started
        self.stats.decide_seconds_total += decided
        self.stats.last_decide_seconds = decided
        await asyncio.sleep(0)
        self._resend_starts(p)
        if p.jobs or p.nodes or p.deletes or p.batch_deletes:
            ops = [Op.put(self.keys.job(jid), job.SerializeToString()) for jid, job in p.jobs.items()]
            # Fair-share usage of the attempts this pass ended: one value per queue, same txns.
            usage = F.charge_usage(self.view.data, p.jobs, now)
            ops += [Op.put(self.keys.usage(q), u.SerializeToString()) for q, u in usage.items()]
            ops += [Op.put(self.keys.node(nid), node.SerializeToString()) for nid, node in p.nodes.items()]
            ops += [Op.delete(k) for k in p.deletes]
            ops += [Op.delete(k) for k in p.batch_deletes]
            try:
                revision = await self.client.txn_batches([self.leadership.guard()], ops)
            except errors.FencedOut:
                logger.warning("leader.fenced_out", epoch=self.epoch)
                self._fail_node_requests(node_requests, "leadership was lost; retry")
                self.leadership.lost.set()
                return
            except errors.Unavailable as err:
                # The write may or may not have been applied, and this pass already changed
                # in-memory session state. Step down: a fresh term rebuilds everything from
                # etcd, which is the only state that counts.
                logger.warning("leader.write_failed", error=str(err))
                self._fail_node_requests(node_requests, f"etcd write failed: {err}")
                self.leadership.lost.set()
                return
            self.stats.jobs_written += len(p.jobs)
            for fn in p.after_commit:
                fn()
            self._send(p)
            await self.view.wait_for(revision)
        else:
            for fn in p.after_commit:
                fn()
            self._send(p)
        self._first_pass = False
        if p.jobs:
            logger.debug("leader.pass", changed=len(p.jobs), commands=len(p.commands))

    @staticmethod
    def _fail_node_requests(requests: list[_DrainRequest | _UndrainRequest], why: str) -> None:
        for request in requests:
            if request.done is not None and not request.done.done():
                request.done.set_exception(errors.Unavailable(why))

    def _send(self, p: _Pass) -> None:
        for node_id, msg in p.commands:
            session = self.sessions.get(node_id)
            if session is not None and session.registered:
                session.send(msg)

    # ---- helpers -----------------------------------------------------------------------

    def _job(self, p: _Pass, job_id: str) -> types_pb2.Job | None:
        job = p.jobs.get(job_id)
        return job if job is not None else self.view.job(job_id)

    def _set(self, p: _Pass, job: types_pb2.Job) -> None:
        p.jobs[job.job_id] = job
        if job.status in J.FINAL:
            p.finished.add(job.job_id)

    # ---- submissions -------------------------------------------------------------------

    # At most this many submitted jobs are taken in per pass: a deep backlog is worked off in
    # passes short enough that the lease keepalive and agent streams never starve.
    MAX_EXPANDED_PER_PASS = 20_000

    def _expand_submissions(self, p: _Pass) -> None:
        data = self.view.data
        taken = 0
        for batch_id, job_ids in list(data.batches.items()):
            if taken >= self.MAX_EXPANDED_PER_PASS:
                self._wake.set()  # more next pass
                break
            taken += len(job_ids)
            for job_id in job_ids:
                entry = data.jobs.get(job_id)
                if entry is not None and entry.batch_id == batch_id:
                    p.jobs[job_id] = entry.job
                    if J.is_array_parent(entry.job):
                        self._expand_array(p, entry.job)
            p.batch_deletes.append(self.keys.submission(batch_id))
        if self._first_pass:
            # A leader may have died half-way through writing an array's children.
            for entry in list(data.jobs.values()):
                if J.is_array_parent(entry.job) and not entry.batch_id and entry.job.status not in J.FINAL:
                    self._expand_array(p, entry.job)

    def _expand_array(self, p: _Pass, parent: types_pb2.Job) -> None:
        """Write the children of an array job (those not written yet), in this pass's batches."""
        for child in J.array_children(parent):
            if self._job(p, child.job_id) is None:
                p.jobs[child.job_id] = child

    def _children(self, p: _Pass, parent: types_pb2.Job) -> list[types_pb2.Job]:
        """The array children of `parent` that exist (all of them once it was expanded)."""
        pid = parent.job_id
        return [
            c for i in range(parent.array_properties.size) if (c := self._job(p, f"{pid}:{i}")) is not None
        ]

    def _update_parents(self, p: _Pass, now: int) -> None:
        """Array parents follow their children: status and per-status counts."""
        parents = {J.parent_id(jid) for jid in p.jobs} - {""}
        parents |= {jid for jid, job in p.jobs.items() if J.is_array_parent(job)}
        for pid in parents:
            parent = self._job(p, pid)
            if parent is None or not J.is_array_parent(parent):
                continue
            children = self._children(p, parent)
            new = J.summarize_array(parent, children, now)
            if new is not parent or (pid in p.jobs and parent.status == J.SUBMITTED):
                self._set(p, new)

    # ---- agent events ------------------------------------------------------------------

    def _apply_event(self, p: _Pass, event: S.AgentEvent, now: int, mono: float) -> None:
        session = event.session
        node_id = session.node_id
        if isinstance(event, S.Disconnected):
            if self.sessions.get(node_id) is session:
                del self.sessions[node_id]
                self._disconnected_at[node_id] = mono
                self._requeue_after[node_id] = S.requeue_delay(
                    session.register, handover=self._handovers.pop(node_id, 0.0),
                    reconnect_grace=self.config.reconnect_grace, fence_margin=self.config.fence_margin,
                )
            return
        if isinstance(event, S.Registered):
            self._register(p, session, now)
            return
        if self.sessions.get(node_id) is not session:
            return  # a late message from a replaced stream
        if isinstance(event, S.Started):
            job = self._job(p, event.msg.token.job_id)
            if job is not None and J.is_current(job, event.msg.token) and job.node_id == node_id:
                running = J.mark_running(job, event.msg.started_at or now)
                self._set(p, running)
                if M.is_child(running):
                    self.gangs.node_running(p, running)
        elif isinstance(event, S.Finished):
            self._finish(p, node_id, event.msg, now)
        elif isinstance(event, S.HandedOver):
            self._handovers[node_id] = event.seconds
            logger.info("agent.handing_over", node_id=node_id, seconds=event.seconds)
        elif isinstance(event, S.Interrupted):
            session.accepting = False
            # The agent is alive and stopping its attempts (SIGTERM, grace, SIGKILL): requeue
            # now, but hold each job back from a new node until its old attempt has stopped.
            self._lose_node(
                p,
                node_id,
                event.reason or REASON_INTERRUPTED,
                now,
                status=types_pb2.NODE_STATUS_LOST,
                hold=mono,
            )

    def _finish(self, p: _Pass, node_id: str, msg: agent_pb2.AttemptFinished, now: int) -> None:
        held = self._stopping.get(msg.token.job_id)
        if held is not None and held[0] == msg.token.attempt:
            del self._stopping[msg.token.job_id]  # the interrupted attempt has really stopped
        job = self._job(p, msg.token.job_id)
        if job is None or not J.is_current(job, msg.token) or job.node_id != node_id:
            return  # not the current attempt: a late or stale report, harmless by design
        self._end_attempt(p, job, msg, now)

    def _end_attempt(
        self, p: _Pass, job: types_pb2.Job, result: agent_pb2.AttemptFinished, now: int, *, interrupted: bool = False
    ) -> None:
        """The current attempt of `job` ended; a node of a multi-node job ends as its gang rules say."""
        if M.is_child(job):
            self.gangs.node_ended(p, job, result, now, interrupted=interrupted)
        else:
            self._set(p, J.finish_attempt(job, result, now_ms=now, interrupted=interrupted))

    def _register(self, p: _Pass, session: S.AgentSession, now: int) -> None:
        reg = session.register
        node_id = reg.node_id
        old = self.sessions.get(node_id)
        if old is not None and old is not session:
            old.close()
        self.sessions[node_id] = session
        self._disconnected_at.pop(node_id, None)
        self._requeue_after.pop(node_id, None)
        self._handovers.pop(node_id, None)

        stale: list[types_pb2.AttemptToken] = []
        held: set[tuple[str, int]] = set()
        for attempt in reg.attempts:
            token = attempt.token
            job = self._job(p, token.job_id)
            if job is None or not J.is_current(job, token) or job.node_id != node_id:
                stale.append(token)
                continue
            held.add((token.job_id, token.attempt))
            if attempt.HasField("finished"):
                self._finish(p, node_id, attempt.finished, now)
            elif job.status == J.STARTING:
                running = J.mark_running(job, attempt.started_at or now)
                self._set(p, running)
                if M.is_child(running):
                    self.gangs.node_running(p, running)
        self._sent_starts |= held
        # Attempts we believe run there but the agent does not hold: a RUNNING one is gone
        # (the agent restarted without it); a STARTING one never arrived and is re-sent.
        for job in self._active_on(p, node_id):
            key = (job.job_id, job.current.attempt)
            if key in held:
                continue
            if job.status == J.RUNNING:
                lost = agent_pb2.AttemptFinished(
                    token=job.current, status_reason=REASON_AGENT_RESTARTED, reason="HostLost"
                )
                self._end_attempt(p, job, lost, now, interrupted=True)
            else:
                self._sent_starts.discard(key)

        node = types_pb2.Node(
            node_id=node_id,
            hostname=reg.hostname,
            status=types_pb2.NODE_STATUS_READY,
            compute_environment=reg.compute_environment,
            vcpus=reg.vcpus,
            memory_mib=reg.memory_mib,
            gpus=reg.gpus,
            gpu_ids=list(reg.gpu_ids),
            runtimes=list(reg.runtimes),
            agent_version=reg.agent_version,
            last_seen_at=now,
            address=reg.advertise_address,
        )
        node.labels.update(reg.labels)
        previous = p.nodes.get(node_id) or self.view.data.nodes.get(node_id)
        node.registered_at = (
            previous.registered_at if previous is not None and previous.registered_at else now
        )
        if previous is not None and previous.status in (
            types_pb2.NODE_STATUS_DRAINING,
            types_pb2.NODE_STATUS_DRAINED,
        ):
            # An operator's drain outlives agent restarts (that is what rolling restarts rely on).
            node.status = previous.status
            node.status_reason = previous.status_reason
            node.drain_deadline_at = previous.drain_deadline_at
        p.nodes[node_id] = node
        registered = agent_pb2.ControllerMessage(
            registered=agent_pb2.Registered(
                node_id=node_id,
                epoch=self.epoch,
                heartbeat_interval_ms=int(self.config.heartbeat_interval * 1000),
                stale=stale,
                batches=True,
            )
        )

        def activate() -> None:
            session.send(registered)
            session.registered = True

        p.after_commit.append(activate)
        logger.info("agent.registered", node_id=node_id, peer=session.peer, held=len(held), stale=len(stale))

    def _active_by_node(self, p: _Pass) -> dict[str, list[types_pb2.Job]]:
        """Every STARTING/RUNNING job per node, as this pass has it so far (one scan)."""
        result: dict[str, list[types_pb2.Job]] = {}
        data = self.view.data
        for node_id, ids in data.by_node.items():
            for jid in ids:
                if jid in p.jobs:
                    continue
                entry = data.jobs.get(jid)
                if entry is not None and entry.job.status in J.ACTIVE:
                    result.setdefault(node_id, []).append(entry.job)
        for job in p.jobs.values():
            if job.status in J.ACTIVE and job.node_id:
                result.setdefault(job.node_id, []).append(job)
        return result

    def _active_on(self, p: _Pass, node_id: str) -> list[types_pb2.Job]:
        ids = set(self.view.data.by_node.get(node_id, ()))
        ids |= {jid for jid, job in p.jobs.items() if job.node_id == node_id}
        result = []
        for jid in ids:
            job = self._job(p, jid)
            if job is not None and job.status in J.ACTIVE and job.node_id == node_id:
                result.append(job)
        return result

    # ---- node loss ---------------------------------------------------------------------

    def _check_timeouts(self, p: _Pass, now: int, mono: float) -> None:
        cfg = self.config
        for node_id, since in list(self._disconnected_at.items()):
            if mono - since >= self._requeue_after.get(node_id, cfg.reconnect_grace):
                del self._disconnected_at[node_id]
                self._requeue_after.pop(node_id, None)
                self._lose_node(p, node_id, REASON_AGENT_DISCONNECTED, now)
        for node_id, session in list(self.sessions.items()):
            silent = mono - session.last_seen
            if silent >= cfg.agent_lost_timeout:
                del self.sessions[node_id]
                session.close()
                self._lose_node(p, node_id, f"Host lost: no heartbeat for {cfg.agent_lost_timeout:g}s", now)
        # After a failover every agent gets a full lost-timeout to find the new leader.
        if mono - self._term_started >= cfg.agent_lost_timeout:
            for node_id, node in self.view.data.nodes.items():
                if node_id in self.sessions or node_id in self._disconnected_at or node_id in p.nodes:
                    continue
                if node.status != types_pb2.NODE_STATUS_LOST or (
                    self.view.data.by_node.get(node_id) and self._active_on(p, node_id)
                ):
                    self._lose_node(p, node_id, "Host lost: agent did not reconnect to the new leader", now)

    # ---- explanations (`shoal why`) ----------------------------------------------------

    def explain(self, job: types_pb2.Job) -> list[str]:
        """Every reason `job` is not running, in words a user can act on."""
        data = self.view.data
        status = J.status_name(job.status)
        if job.status in J.FINAL:
            tail = f": {job.status_reason}" if job.status_reason else ""
            return [f"Job {status}{tail}; it will not run again"]
        if job.status in J.ACTIVE and M.is_parent(job):
            return [self.gangs.explain_active(job)]
        if job.status in J.ACTIVE:
            return [
                f"Job is {status} on node {job.node_id} (attempt {job.current.attempt}); it is not waiting"
            ]
        if job.status == J.SUBMITTED:
            return ["Submitted; the leader has not admitted it yet (it does so within one scheduling pass)"]
        reasons = []
        if job.array_properties.size:
            counts = ", ".join(f"{n} {k}" for k, n in sorted(job.array_status_summary.items()))
            reasons.append(
                f"Array job with {job.array_properties.size} children ({counts or 'none created yet'}); see its children for their reasons"
            )
        for dep in job.depends_on:
            dep_job = self.view.job(dep.job_id)
            dep_status = J.status_name(dep_job.status) if dep_job is not None else "unknown"
            if dep_job is None or dep_job.status not in J.FINAL:
                reasons.append(f"Waiting on job {dep.job_id} ({dep_status})")
        if job.status == J.RUNNABLE:
            queue = data.queues.get(job.job_queue)
            if queue is not None and queue.state == types_pb2.ENTITY_STATE_DISABLED:
                reasons.append(f"Queue {job.job_queue} is DISABLED: its jobs wait until it is enabled")
            why = self.waiting.get(job.job_id)
            if why:
                reasons.append(why)
            reasons += F.explain_share(data, job, self._wall_ms())
            if queue is not None:
                for order in sorted(queue.compute_environment_order, key=lambda o: o.order):
                    scaling = self.scaling_status(order.compute_environment)
                    if scaling:
                        reasons.append(scaling[0].upper() + scaling[1:])
        return reasons or [f"Job is {status}; the next scheduling pass will consider it"]

    def _hold_until_stopped(self, job: types_pb2.Job, mono: float) -> None:
        """Keep a requeued job off every node until its old attempt reports that it stopped
        (or the kill grace has certainly passed), so no two attempts of a job run at once."""
        self._stopping[job.job_id] = (job.current.attempt, mono + self.config.kill_grace + 2.0)

    def _lose_node(
        self,
        p: _Pass,
        node_id: str,
        reason: str,
        now: int,
        *,
        status: int = types_pb2.NODE_STATUS_LOST,
        hold: float | None = None,
    ) -> None:
        for job in self._active_on(p, node_id):
            if hold is not None:
                self._hold_until_stopped(job, hold)
            lost = agent_pb2.AttemptFinished(token=job.current, status_reason=reason, reason="HostLost")
            self._end_attempt(p, job, lost, now, interrupted=True)
        previous = p.nodes.get(node_id) or self.view.data.nodes.get(node_id)
        if previous is not None and previous.status != status:
            node = types_pb2.Node()
            node.CopyFrom(previous)
            node.status = status
            node.status_reason = reason
            node.last_seen_at = now
            p.nodes[node_id] = node
        self.stats.nodes_lost += 1
        logger.warning("agent.lost", node_id=node_id, reason=reason)

    # ---- drain ------------------------------------------------------------------------

    def _node(self, p: _Pass, node_id: str) -> types_pb2.Node | None:
        return p.nodes.get(node_id) or self.view.data.nodes.get(node_id)

    def _put_node(self, p: _Pass, node: types_pb2.Node, **changes: object) -> types_pb2.Node:
        new = types_pb2.Node()
        new.CopyFrom(node)
        for name, value in changes.items():
            setattr(new, name, value)
        p.nodes[new.node_id] = new
        return new

    def _apply_node_request(self, p: _Pass, request: _DrainRequest | _UndrainRequest, now: int) -> None:
        node = self._node(p, request.node_id)
        result = node
        if node is None:
            pass
        elif isinstance(request, _UndrainRequest):
            if node.status in (types_pb2.NODE_STATUS_DRAINING, types_pb2.NODE_STATUS_DRAINED):
                result = self._put_node(
                    p, node, status=types_pb2.NODE_STATUS_READY, status_reason="", drain_deadline_at=0
                )
        elif node.status != types_pb2.NODE_STATUS_LOST:
            reason = request.reason or "Drained by operator"
            deadline = now + request.deadline_seconds * 1000 if request.deadline_seconds else 0
            status = types_pb2.NODE_STATUS_DRAINING
            result = self._put_node(p, node, status=status, status_reason=reason, drain_deadline_at=deadline)
            if request.interrupt:
                self._interrupt_node(p, request.node_id, now)
        if request.done is not None:
            fut = request.done
            if result is None:
                p.after_commit.append(
                    lambda: (
                        fut.done()
                        or fut.set_exception(errors.NotFound(f"node '{request.node_id}' does not exist"))
                    )
                )
            else:
                p.after_commit.append(
                    lambda: fut.done() or fut.set_result(p.nodes.get(request.node_id, result))
                )

    def _interrupt_node(self, p: _Pass, node_id: str, now: int) -> None:
        """Requeue a node's attempts now and tell the agent to stop them (termination notice)."""
        grace_ms = int(self.config.kill_grace * 1000)
        mono = self._mono()
        for job in self._active_on(p, node_id):
            self._hold_until_stopped(job, mono)
            lost = agent_pb2.AttemptFinished(
                token=job.current, status_reason=REASON_INTERRUPTED, reason="HostInterrupted"
            )
            self._end_attempt(p, job, lost, now, interrupted=True)
            kill = agent_pb2.KillAttempt(
                token=job.current, reason=REASON_INTERRUPTED, grace_period_ms=grace_ms
            )
            p.commands.append((node_id, agent_pb2.ControllerMessage(kill_attempt=kill)))

    def _progress_drains(self, p: _Pass, now: int) -> None:
        """DRAINING -> DRAINED once idle; interrupt what is left at the drain deadline."""
        for node_id in list(self.view.data.nodes) + [n for n in p.nodes if n not in self.view.data.nodes]:
            node = self._node(p, node_id)
            if node is None or node.status != types_pb2.NODE_STATUS_DRAINING:
                continue
            if node.drain_deadline_at and now >= node.drain_deadline_at:
                self._interrupt_node(p, node_id, now)
            if not self._active_on(p, node_id):
                self._put_node(p, node, status=types_pb2.NODE_STATUS_DRAINED, drain_deadline_at=0)

    # ---- cancel / terminate ------------------------------------------------------------

    def _apply_controls(self, p: _Pass, now: int) -> None:
        grace_ms = int(self.config.kill_grace * 1000)
        for job_id, control in list(self.view.data.controls.items()):
            p.deletes.append(self.keys.control(job_id))
            # A node of a multi-node job is cancelled/terminated with its whole job.
            job = self._job(p, M.parent_of(job_id) or job_id)
            if job is None or job.status in J.FINAL:
                continue
            targets = [job]
            if J.is_array_parent(job):
                # Cancelling/terminating an array job does so to each of its children.
                targets = self._children(p, job)
            for target in targets:
                self._control_one(p, target, control, now, grace_ms)

    def _control_one(
        self, p: _Pass, job: types_pb2.Job, control: state_pb2.JobControl, now: int, grace_ms: int
    ) -> None:
        if job.status in J.WAITING:
            self._set(p, J.fail(job, control.reason, now))
        elif (
            job.status in J.ACTIVE
            and control.action == state_pb2.JOB_CONTROL_ACTION_TERMINATE
            and not job.terminate_reason
        ):
            if M.is_parent(job):
                self.gangs.terminate(p, job, control.reason)
                return
            new = types_pb2.Job()
            new.CopyFrom(job)
            new.terminate_reason = control.reason
            self._set(p, new)
            kill = agent_pb2.KillAttempt(token=job.current, reason=control.reason, grace_period_ms=grace_ms)
            p.commands.append((job.node_id, agent_pb2.ControllerMessage(kill_attempt=kill)))

    # ---- dependencies ------------------------------------------------------------------

    def _admit(self, p: _Pass, now: int) -> None:
        data = self.view.data
        # Jobs are admitted in the pass that expands them (so in p.jobs). Stored SUBMITTED
        # job records exist only when a term ended between the two (a leader died, a chunked
        # write failed half-way): the first pass of a term picks those up, with every PENDING
        # job. Jobs still inside a submission batch wait for their batch's expansion (bounded
        # per pass), never admitted around it.
        candidates = [jid for jid, job in p.jobs.items() if job.status == J.SUBMITTED]
        if self._first_pass:
            jobs = data.jobs
            candidates += [
                jid for jid in data.by_status.get(J.SUBMITTED, ())
                if jid not in p.jobs and jid in jobs and not jobs[jid].batch_id
            ]  # fmt: skip
            candidates += list(data.by_status.get(J.PENDING, ()))
        for jid in p.finished:
            candidates += data.dependents.get(jid, ())
        seen: set[str] = set()
        while candidates:
            jid = candidates.pop()
            if jid in seen:
                continue
            seen.add(jid)
            job = self._job(p, jid)
            if job is None or job.status not in (J.SUBMITTED, J.PENDING) or J.is_array_parent(job):
                continue
            statuses = {}
            for dep in job.depends_on:
                dep_job = self._job(p, dep.job_id)
                if dep_job is not None:
                    statuses[dep.job_id] = dep_job.status
                elif dep.job_id in self._archived_status:
                    statuses[dep.job_id] = self._archived_status[dep.job_id]
            new = J.admit(job, statuses, now)
            if new is not job:
                self._set(p, new)
                if new.status == J.FAILED:
                    candidates += data.dependents.get(jid, ())
            elif job.status == J.SUBMITTED:
                self._set(p, new)

    # ---- placement ---------------------------------------------------------------------

    def _schedule(self, p: _Pass) -> None:
        """Place what fits. Works from the view's RUNNABLE index (per queue, in FIFO order)
        plus this pass's own changes, so a pass costs what it places, not what waits."""
        data = self.view.data
        index = data.runnable
        # This pass's changes on top of the index: jobs that stopped being RUNNABLE are
        # skipped, jobs that became RUNNABLE are merged in.
        skip: set[str] = set()
        extra: dict[str, list[JobView]] = {}
        for jid, job in p.jobs.items():
            if job.status != J.RUNNABLE:
                if jid in index:
                    skip.add(jid)
                continue
            view = index.get(jid)
            if view is None:
                entry = data.jobs.get(jid)
                order = entry.order if entry is not None else (1 << 62, job.batch_index)
                view = job_view(job, order)
                if view is not None:
                    extra.setdefault(view.queue, []).append(view)
                    index.hint(view)
        held: dict[str, str] = {}
        if self._stopping:
            extra_ids = {v.job_id for views in extra.values() for v in views}
            mono = self._mono()
            for stopping, (attempt, deadline) in list(self._stopping.items()):
                # A stopping node of a multi-node job holds back its whole job.
                jid = self.gangs.stopping_parent(stopping) or stopping
                if mono >= deadline:
                    del self._stopping[stopping]
                elif jid not in skip and (jid in index or jid in extra_ids):
                    skip.add(jid)
                    held[jid] = (
                        f"Waiting for attempt {attempt} to stop on its interrupted node before starting again"
                    )
        throttled = self._array_throttle(p, extra)
        skip.update(throttled)
        lanes = index.lanes()
        for queue_name, views in extra.items():
            lane = lanes.get(queue_name)
            views.sort(key=lambda v: v.order)
            if lane is None:
                lanes[queue_name] = Lane(views, frozenset(shape_of(v) for v in views))
                continue
            jobs = list(lane.jobs) + views
            if lane.jobs and views[0].order < lane.jobs[-1].order:
                jobs.sort(key=lambda v: v.order)
            lanes[queue_name] = Lane(jobs, lane.shapes | {shape_of(v) for v in views})
        if skip:
            frozen = frozenset(skip)
            lanes = {name: Lane(lane.jobs, lane.shapes, frozen) for name, lane in lanes.items()}
        if not lanes:
            self.waiting = collections.ChainMap(held, throttled)
            return
        nodes = []
        active = self._active_by_node(p)
        for node_id, session in self.sessions.items():
            if not (session.registered and session.accepting):
                continue
            node = p.nodes.get(node_id) or data.nodes.get(node_id)
            if node is None or node.status != types_pb2.NODE_STATUS_READY:
                continue
            capacity = Resources.from_vcpus(node.vcpus, node.memory_mib, node.gpus)
            used_milli = used_mem = used_gpus = 0
            for job in active.get(node_id, ()):
                r = job.container.resources
                used_milli += round(r.vcpus * 1000)
                used_mem += r.memory_mib
                used_gpus += r.gpus
            nodes.append(
                NodeView(
                    node_id=node_id,
                    compute_environment=node.compute_environment,
                    capacity=capacity,
                    free=Resources(
                        capacity.milli_vcpus - used_milli,
                        capacity.memory_mib - used_mem,
                        capacity.gpus - used_gpus,
                    ),  # fmt: skip
                    schedulable=True,
                    runtimes=frozenset(node.runtimes) or frozenset({"process"}),
                    gpu_ids=F.free_gpu_ids(node, active.get(node_id, ())) if node.gpus else None,
                )
            )
        fair = F.fair_shares(data, (job for jobs in active.values() for job in jobs), self._wall_ms())
        queues = {
            name: QueueView(
                name=name,
                priority=q.priority,
                enabled=q.state != types_pb2.ENTITY_STATE_DISABLED,
                compute_environments=tuple(
                    o.compute_environment for o in sorted(q.compute_environment_order, key=lambda o: o.order)
                ),
                fairshare=fair.get(name),
            )
            for name, q in data.queues.items()
        }
        envs = {
            name: EnvView(name=name, enabled=e.state != types_pb2.ENTITY_STATE_DISABLED)
            for name, e in data.envs.items()
        }
        plan = place(
            Snapshot(
                queues=queues,
                envs=envs,
                nodes=nodes,
                lanes=lanes,
                gang_passes=self.gangs.passes,
                gang_reserve_after=self.config.gang_reserve_after,
            )
        )
        # `plan.waiting` resolves the reasons of a queue's unexamined tail only when asked.
        self.waiting = collections.ChainMap(held, throttled, plan.waiting)
        self.stats.placements += len(plan.placements)
        for placement in plan.placements:
            job = self._job(p, placement.job_id)
            assert job is not None
            started = J.start_attempt(
                job,
                node_id=placement.node_id,
                compute_environment=placement.compute_environment,
                epoch=self.epoch,
                gpu_ids=placement.gpu_ids,
            )
            self._set(p, started)
        for gang in plan.gangs:
            self.gangs.start(p, gang)
        self.gangs.count_passes(plan)

    def _array_throttle(self, p: _Pass, extra: dict[str, list[JobView]]) -> dict[str, str]:
        """Children held back by their array's parallelism limit (lowest indexes go first)."""
        data = self.view.data
        index = data.runnable
        parents = set(index.children)
        for views in extra.values():
            for view in views:
                pid = J.parent_id(view.job_id)
                if pid:
                    parents.add(pid)
        limits: dict[str, int] = {}
        for pid in parents:
            parent = self._job(p, pid)
            limit = parent.array_properties.parallelism if parent is not None else 0
            if limit:
                limits[pid] = limit
        if not limits:
            return {}
        active: dict[str, int] = {}
        active_ids = set(data.by_status.get(J.STARTING, ())) | set(data.by_status.get(J.RUNNING, ()))
        active_ids = {j for j in active_ids if j not in p.jobs} | {
            j for j, job in p.jobs.items() if job.status in J.ACTIVE
        }
        for jid in active_ids:
            pid = J.parent_id(jid)
            if pid in limits:
                active[pid] = active.get(pid, 0) + 1
        held: dict[str, str] = {}
        for pid, limit in limits.items():
            children = set(index.children.get(pid, ()))
            for jid, job in p.jobs.items():
                if J.parent_id(jid) == pid:
                    if job.status == J.RUNNABLE:
                        children.add(jid)
                    else:
                        children.discard(jid)
            room = max(0, limit - active.get(pid, 0))
            ordered = sorted(children, key=lambda jid: int(jid.rsplit(":", 1)[1]))
            for jid in ordered[room:]:
                held[jid] = f"Array parallelism limit: at most {limit} children of {pid} run at once"
        return held

    def _resend_starts(self, p: _Pass) -> None:
        """StartAttempt for every STARTING job on a connected agent not yet told in this term."""
        data = self.view.data
        starting = {jid for jid in data.by_status.get(J.STARTING, ()) if jid not in p.jobs}
        starting |= {jid for jid, job in p.jobs.items() if job.status == J.STARTING}
        for jid in starting:
            job = self._job(p, jid)
            if job is None or job.status != J.STARTING:
                continue
            key = (jid, job.current.attempt)
            session = self.sessions.get(job.node_id)
            if key in self._sent_starts or session is None:
                continue
            child = M.is_child(job)
            if child and not self.gangs.may_start(p, job):
                continue  # a node other than the main one waits for the main node to run
            node = p.nodes.get(job.node_id) or data.nodes.get(job.node_id)
            container = types_pb2.ContainerProperties()
            container.CopyFrom(job.container)
            del container.environment[:]
            container.environment.extend(
                J.attempt_environment(
                    job,
                    node_hostname=(node.address or node.hostname) if node else "",
                    node=M.node_environment(job) if child else None,
                )
            )
            start = agent_pb2.StartAttempt(
                token=job.current, container=container, timeout=job.timeout, gpu_ids=job.gpu_ids
            )
            p.commands.append((job.node_id, agent_pb2.ControllerMessage(start_attempt=start)))
            self._sent_starts.add(key)
