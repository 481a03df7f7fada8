"""Job submission, cancel/terminate requests and job reads: served by any replica.

Submissions are written as one SubmissionBatch value per call (atomic, one etcd round trip);
cancel and terminate are written as control requests that the leader applies, so that job
records keep a single writer. Every write is followed by a wait for the local view to contain
it, so the caller can read its own writes from this replica at once.
"""

from __future__ import annotations

import collections
import heapq
import operator
import os
import re
import time
import uuid
from collections.abc import Iterable, Sequence

from controller.api import limits
from controller.domain import jobs as J
from controller.domain import multinode
from controller.domain import policies as P
from controller.domain import validation as V
from controller.services.history import HistoryStore
from controller.services.view import ClusterView, JobEntry
from controller.store.etcd import EtcdClient
from controller.store.keys import Keys
from shoal import errors
from shoal.v1 import batch_pb2, state_pb2, types_pb2

# etcd refuses requests over 1.5 MiB; keep a margin for the request envelope.
MAX_BATCH_BYTES = 1_400_000
DEFAULT_QUEUE = "default"


def _now_ms() -> int:
    return int(time.time() * 1000)


class JobService:
    def __init__(self, client: EtcdClient, keys: Keys, view: ClusterView) -> None:
        self.client = client
        self.keys = keys
        self.view = view
        self.history = HistoryStore(client, keys)
        # --max-queued-jobs-per-queue (0 = no limit); set by controller/main.py.
        self.max_queued_per_queue = limits.DEFAULT_MAX_QUEUED_PER_QUEUE
        # --max-array-size; set by controller/main.py.
        self.max_array_size = V.MAX_ARRAY_SIZE

    # ---- submit ------------------------------------------------------------------------

    async def submit(
        self, requests: Sequence[batch_pb2.SubmitJobRequest], *, batch: bool, owner: str = ""
    ) -> batch_pb2.SubmitJobsResponse:
        """Store the jobs as one submission; `owner` (the caller's token name) is recorded in
        the reserved tag shoal:owner so that a submitter can later stop only its own jobs."""
        templates = [V.submission_template(r) for r in requests] if batch else [b""]
        if batch:
            V.validate_submit_batch(requests, templates, max_array_size=self.max_array_size)
        else:
            V.validate_submit(requests[0], max_array_size=self.max_array_size)
        synced = False
        now = _now_ms()
        # Dependencies are part of the template: look at one request per template.
        distinct = list({t: r for t, r in zip(templates, requests, strict=True)}.values()) if batch else requests
        archived = await self._archived_dependencies(distinct)
        batch_id = uuid.uuid4().hex
        record = state_pb2.SubmissionBatch(batch_id=batch_id)
        records = record.jobs
        # Requests equal apart from the name are resolved once (definition, overrides,
        # parameters, dependencies) and copied: the common "1,000 copies of a job" batch.
        resolved: dict[bytes, types_pb2.Job] = {}
        ids = _job_ids(len(requests))
        for index, req in enumerate(requests):
            field = f"jobs[{index}]." if batch else ""
            template = templates[index]
            proto = resolved.get(template)
            for attempt in range(2):
                if proto is not None:
                    break
                try:
                    proto = self._build(req, field, now, archived)
                    if owner:
                        proto.tags[V.OWNER_TAG] = owner
                    resolved[template] = proto
                except errors.NotFound:
                    # The view may lag another replica's write by a few ms: catch up once.
                    if attempt or synced:
                        raise
                    await self.view.sync()
                    synced = True
            job = records.add()
            job.CopyFrom(proto)
            job.job_id = ids[index]
            job.job_name = req.job_name
            job.batch_index = index
        adding: dict[str, int] = {}
        for template, count in collections.Counter(templates).items():
            proto = resolved[template]
            adding[proto.job_queue] = adding.get(proto.job_queue, 0) + count * max(
                1, proto.array_properties.size
            )
        limits.check_queue_depth(self.view.data, adding, self.max_queued_per_queue)
        size = record.ByteSize()
        if size > MAX_BATCH_BYTES:
            raise errors.InvalidArgument(
                f"jobs: {len(records)} jobs serialize to {size} bytes, over the {MAX_BATCH_BYTES}-byte "
                "limit of one submission; send fewer jobs per call"
            )
        revision = await self.client.put(self.keys.submission(batch_id), record.SerializeToString())
        await self.view.wait_for(revision)
        response = batch_pb2.SubmitJobsResponse()
        add = response.jobs.add
        for job_id, req in zip(ids, requests, strict=True):
            add(job_id=job_id, job_name=req.job_name)
        return response

    async def _archived_dependencies(
        self, requests: Sequence[batch_pb2.SubmitJobRequest]
    ) -> dict[str, types_pb2.Job]:
        """Dependencies that are not in the hot view may have ended long ago: look in history."""
        ids = {
            d.job_id
            for r in requests
            for d in r.depends_on
            if d.job_id and d.job_id not in self.view.data.jobs
        }
        if not ids:
            return {}
        await self.view.sync()
        ids = {i for i in ids if i not in self.view.data.jobs}
        return await self.history.lookup(sorted(ids)) if ids else {}

    def _build(
        self,
        req: batch_pb2.SubmitJobRequest,
        field: str,
        now: int,
        archived: dict[str, types_pb2.Job] | None = None,
    ) -> types_pb2.Job:
        """The job record `req` asks for, without its id, name and batch index."""
        data = self.view.data
        queue = req.job_queue or DEFAULT_QUEUE
        if queue not in data.queues:
            raise errors.NotFound(f"{field}job_queue: job queue '{queue}' does not exist")
        if data.queues[queue].state == types_pb2.ENTITY_STATE_DISABLED:
            raise errors.FailedPrecondition(
                f"{field}job_queue: job queue '{queue}' is DISABLED and accepts no new jobs (its queued jobs wait)"
            )
        definition = None
        if req.job_definition:
            name, revision = V.parse_definition_ref(req.job_definition, f"{field}job_definition")
            if revision is None:
                definition = self.view.latest_definition(name)
                if definition is None:
                    raise errors.NotFound(
                        f"{field}job_definition: no ACTIVE revision of job definition '{name}'"
                    )
            else:
                definition = data.definitions.get((name, revision))
                if definition is None:
                    raise errors.NotFound(
                        f"{field}job_definition: job definition '{name}:{revision}' does not exist"
                    )
                if definition.status != "ACTIVE":
                    raise errors.FailedPrecondition(
                        f"{field}job_definition: '{name}:{revision}' is deregistered"
                    )
        for i, dep in enumerate(req.depends_on):
            if dep.type == types_pb2.DEPENDENCY_TYPE_SEQUENTIAL and not dep.job_id:
                continue
            entry = data.jobs.get(dep.job_id)
            target = entry.job if entry is not None else (archived or {}).get(dep.job_id)
            if target is None:
                raise errors.NotFound(f"{field}depends_on[{i}].job_id: job '{dep.job_id}' does not exist")
            if (
                dep.type == types_pb2.DEPENDENCY_TYPE_N_TO_N
                and target.array_properties.size != req.array_properties.size
            ):
                raise errors.InvalidArgument(
                    f"{field}depends_on[{i}]: N_TO_N needs an array job of the same size "
                    f"(job '{dep.job_id}' has {target.array_properties.size} children, this one {req.array_properties.size})"
                )
        share, priority = P.resolve_fairshare(req, data.queues[queue], definition, field.rstrip("."))
        container, retry, timeout, definition_ref = V.resolve_submission(req, definition)
        parameters = dict(definition.parameters) if definition is not None else {}
        parameters.update(req.parameters)
        if parameters:
            substituted = [substitute_parameters(arg, parameters) for arg in container.command]
            del container.command[:]
            container.command.extend(substituted)
        job = types_pb2.Job(
            job_queue=queue,
            status=J.SUBMITTED,
            created_at=now,
            depends_on=req.depends_on,
            job_definition=definition_ref,
            container=container,
            retry_strategy=retry,
            timeout=timeout,
            array_properties=req.array_properties,
            share_identifier=share,
            scheduling_priority=priority,
        )
        job.tags.update(req.tags)
        secret = _secret_names(definition.tags if definition is not None else {}) | _secret_names(req.tags)
        if secret:  # values hidden from describe calls and logs (controller/api/auth.py)
            job.tags[V.SECRET_ENV_TAG] = ",".join(sorted(secret))
        job.parameters.update(parameters)
        nodes = V.resolve_node_properties(req, definition, field.rstrip("."))
        if nodes is not None:
            for rng in nodes.node_range_properties:
                if parameters:
                    substituted = [substitute_parameters(arg, parameters) for arg in rng.container.command]
                    del rng.container.command[:]
                    rng.container.command.extend(substituted)
            job.node_properties.CopyFrom(nodes)
            # The parent shows (and is sized by) its main node's container.
            job.container.CopyFrom(multinode.node_containers(nodes)[nodes.main_node])
        return job

    # ---- cancel / terminate ------------------------------------------------------------

    async def control(self, job_id: str, reason: str, action: int, *, owner: str | None = None) -> None:
        """Request cancel/terminate; with `owner`, only of a job that principal submitted.
        A node `<id>#N` of a multi-node job is cancelled or terminated with its whole job."""
        job_id = multinode.parent_of(job_id) or job_id
        job = await self._find(job_id)
        if owner is not None and job.tags.get(V.OWNER_TAG, "") != owner:
            raise errors.PermissionDenied(
                f"job_id: job '{job_id}' was not submitted by '{owner}'; a submitter may stop only its own jobs"
            )
        if job.status in J.FINAL:
            return  # idempotent: nothing left to stop
        if (
            action == state_pb2.JOB_CONTROL_ACTION_CANCEL
            and job.status in J.ACTIVE
            and not J.is_array_parent(job)
        ):
            return  # CancelJob leaves STARTING/RUNNING jobs alone (AWS semantics)
        record = state_pb2.JobControl(job_id=job_id, action=action, reason=reason, requested_at=_now_ms())
        revision = await self.client.put(self.keys.control(job_id), record.SerializeToString())
        await self.view.wait_for(revision)

    # ---- reads -------------------------------------------------------------------------

    async def _find(self, job_id: str) -> types_pb2.Job:
        found = await self.describe([job_id])
        if not found:
            raise errors.NotFound(f"job_id: job '{job_id}' does not exist")
        return found[0]

    async def describe(self, job_ids: Sequence[str]) -> list[types_pb2.Job]:
        """The jobs that exist among `job_ids` (catching up with etcd once if any is unknown)."""
        found = [self.view.job(j) for j in job_ids]
        if any(j is None for j in found):
            await self.view.sync()
            found = [self.view.job(j) for j in job_ids]
            missing = [j for j, job in zip(job_ids, found, strict=True) if job is None]
            if missing:
                archived = await self.history.lookup(missing)
                found = [
                    job if job is not None else archived.get(j) for j, job in zip(job_ids, found, strict=True)
                ]
        return [j for j in found if j is not None]

    async def list(self, req: batch_pb2.ListJobsRequest) -> batch_pb2.ListJobsResponse:
        """Oldest first: archived jobs (by creation time), then the hot ones (by submission order);
        with newest_first the other way round (hot ones first, newest first, then archived).

        The page token says which of the two it stopped in and where: "h.<created_at>.<job id>"
        or "v.<revision>.<index>".
        """
        page = req.max_results or 100
        if page > 1000:
            raise errors.InvalidArgument(f"max_results: at most 1000 (got {req.max_results})")
        desc = req.newest_first
        phase, after_h, after_v = ("v" if desc else "h"), None, None
        if req.next_token:
            try:
                phase, a, b = req.next_token.split(".", 2)
                if phase == "h":
                    after_h = (int(a), b)
                elif phase == "v":
                    after_v = (int(a), int(b))
                else:
                    raise ValueError(phase)
            except ValueError:
                raise errors.InvalidArgument("next_token: not a token this API returned") from None
        chosen: list[types_pb2.Job] = []
        token = ""
        if phase == "h" and not desc:
            chosen, token = await self._list_history(req, after_h, page, desc)
        if not token and (phase == "v" or not desc):
            jobs, token = self._list_view(req, after_v, page - len(chosen), desc)
            chosen += jobs
        if desc and not token:
            if len(chosen) < page:
                older, token = await self._list_history(req, after_h, page - len(chosen), desc)
                chosen += older
            elif phase == "v":
                token = f"h.{10**13}."  # the page ended with the hot jobs: archived ones may follow
        return batch_pb2.ListJobsResponse(job_summary_list=[summary(j) for j in chosen], next_token=token)

    async def _list_history(
        self, req: batch_pb2.ListJobsRequest, after: tuple[int, str] | None, room: int, desc: bool
    ) -> tuple[list[types_pb2.Job], str]:
        archived = [j for j in await self.history.list(req.created_after, req.created_before) if self._matches(req, j)]
        if desc:
            archived.reverse()
        if after is not None:
            archived = [j for j in archived if ((j.created_at, j.job_id) < after if desc else (j.created_at, j.job_id) > after)]
        chosen = archived[:room]
        token = f"h.{chosen[-1].created_at}.{chosen[-1].job_id}" if len(archived) > room and chosen else ""
        return chosen, token

    def _list_view(
        self, req: batch_pb2.ListJobsRequest, after: tuple[int, int] | None, room: int, desc: bool
    ) -> tuple[list[types_pb2.Job], str]:
        data = self.view.data
        in_status = data.by_status.get(req.job_status, ()) if req.job_status else ()
        if req.job_status and len(in_status) * 8 < len(data.jobs):
            # Few jobs in that status: look only at them.
            jobs = data.jobs
            entries: Iterable[JobEntry] = (e for e in map(jobs.get, in_status) if e is not None)
        elif req.job_status:
            # Many: walk the jobs in their (rough) order instead; scattered lookups of a large
            # set cost several times more than a sequential walk.
            status = req.job_status
            ordered = reversed(data.jobs.values()) if desc else data.jobs.values()
            entries = (e for e in ordered if e.job.status == status)
        else:
            # Roughly in submission order already: from the newest end for newest_first, so
            # the heap below mostly rejects (a heap fed ascending keys would replace every time).
            entries = reversed(data.jobs.values()) if desc else data.jobs.values()
        if after is not None:
            entries = (e for e in entries if (e.order < after if desc else e.order > after))
        # The status filter is the index's; the rest is looked at only when asked for.
        if (
            req.job_queue or req.job_name_prefix or req.array_job_id or req.top_level_only
            or req.created_after or req.created_before
        ):
            matching: Iterable[JobEntry] = (e for e in entries if self._matches(req, e.job))
        else:
            matching = entries
        # One page (and one more, to know whether there is a next): a heap of room + 1, not a
        # sort of every matching job.
        pick = heapq.nlargest if desc else heapq.nsmallest
        top = pick(room + 1, matching, key=_order)
        if len(top) <= room:
            return [e.job for e in top], ""
        if not room:
            return [], "v.0.0" if not desc else f"v.{top[0].order[0] + 1}.0"
        last = top[room - 1].order
        return [e.job for e in top[:room]], f"v.{last[0]}.{last[1]}"

    @staticmethod
    def _matches(req: batch_pb2.ListJobsRequest, job: types_pb2.Job) -> bool:
        return (
            (not req.job_queue or job.job_queue == req.job_queue)
            and (not req.job_status or job.status == req.job_status)
            and (not req.job_name_prefix or job.job_name.startswith(req.job_name_prefix))
            and (not req.array_job_id or job.job_id.startswith(f"{req.array_job_id}:"))
            and (not req.top_level_only or not ("#" in job.job_id or ":" in job.job_id))
            and (not req.created_after or job.created_at >= req.created_after)
            and (not req.created_before or job.created_at < req.created_before)
        )


_order = operator.attrgetter("order")  # a JobEntry's FIFO position (C-level: called per job)
_REF = re.compile(r"Ref::([A-Za-z0-9_-]+)")


def substitute_parameters(arg: str, parameters: dict[str, str]) -> str:
    """Replace `Ref::name` placeholders (AWS Batch parameters); unknown names stay as they are."""
    return _REF.sub(lambda m: parameters.get(m.group(1), m.group(0)), arg)


_VARIANT = "89ab89ab89ab89ab"  # hex digit -> the RFC 4122 variant digit keeping its low 2 bits


def _job_ids(n: int) -> list[str]:
    """`n` random version-4 UUIDs in canonical text, from one read of the system's random
    source (what `str(uuid.uuid4())` gives, without building a UUID object per job)."""
    h = os.urandom(16 * n).hex()
    return [
        f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-4{h[i + 13 : i + 16]}-{_VARIANT[int(h[i + 16], 16)]}{h[i + 17 : i + 20]}-{h[i + 20 : i + 32]}"
        for i in range(0, 32 * n, 32)
    ]


def _secret_names(tags: object) -> set[str]:
    raw = tags.get(V.SECRET_ENV_TAG, "")  # type: ignore[attr-defined]
    return {n.strip() for n in raw.split(",") if n.strip()}


def summary(job: types_pb2.Job) -> batch_pb2.JobSummary:
    s = batch_pb2.JobSummary(
        job_id=job.job_id,
        job_name=job.job_name,
        job_queue=job.job_queue,
        status=job.status,
        status_reason=job.status_reason,
        created_at=job.created_at,
        started_at=job.started_at,
        stopped_at=job.stopped_at,
        node_id=job.node_id or (job.attempts[-1].node_id if job.attempts else ""),
        attempts=len(job.attempts),
    )
    if job.attempts and job.attempts[-1].HasField("exit_code"):
        s.exit_code = job.attempts[-1].exit_code
    if job.node_properties.num_nodes:
        s.num_nodes = job.node_properties.num_nodes
    if job.HasField("node_details"):
        s.node_index = job.node_details.node_index
    return s
