"""Finished jobs, kept out of the hot keyspace but still describable and listable.

The leader moves jobs that ended more than `archive_after` seconds ago into history buckets
beside the hot prefix (see controller/store/keys.py), one etcd transaction per bucket: the
bucket, an index entry per job and the deletion of the hot keys, all or nothing, fenced on the
leader key. Every replica's view (and so the leader's scheduling pass) stays the size of the
live work, not of everything that ever ran. Buckets older than the retention period are
deleted. Any replica reads history on demand: DescribeJobs by id through the index, ListJobs
by creation time through a key-range read.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from controller.domain import jobs as J
from controller.domain import multinode
from controller.store.etcd import Compare, EtcdClient, Op
from controller.store.keys import Keys
from shoal import log
from shoal.v1 import state_pb2, types_pb2

logger = log.get("controller.history")

# bucket put + (index put + hot delete) per job <= etcd's default max-txn-ops of 128
JOBS_PER_BUCKET = 60


class HistoryStore:
    def __init__(self, client: EtcdClient, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    async def lookup(self, job_ids: Sequence[str]) -> dict[str, types_pb2.Job]:
        """The archived jobs among `job_ids`."""
        if not job_ids:
            return {}
        index = await self.client.get_many([self.keys.history_index(j) for j in job_ids])
        bucket_keys = sorted({kv.value for kv in index if kv is not None})
        found: dict[str, types_pb2.Job] = {}
        wanted = set(job_ids)
        for kv in await self.client.get_many(bucket_keys):
            if kv is None:
                continue
            for job in state_pb2.HistoryBucket.FromString(kv.value).jobs:
                if job.job_id in wanted:
                    found[job.job_id] = job
        return found

    async def list(self, created_after: int = 0, created_before: int = 0) -> list[types_pb2.Job]:
        """Archived jobs created in [created_after, created_before) (0 = unbounded), by creation time.

        A bucket is named after its oldest job, so the range starts one archive period early
        and the jobs are filtered exactly here.
        """
        start, end = self.keys.history_buckets_between(0, created_before or 10**13 - 1)
        jobs = []
        for kv in await self.client.get_range(start, end):
            for job in state_pb2.HistoryBucket.FromString(kv.value).jobs:
                if job.created_at >= created_after and (not created_before or job.created_at < created_before):
                    jobs.append(job)
        jobs.sort(key=lambda j: (j.created_at, j.job_id))
        return jobs

    async def archive(self, jobs: Iterable[types_pb2.Job], guard: Sequence[Compare]) -> int:
        """Move `jobs` (all final) into history; returns how many were moved."""
        ordered = sorted(jobs, key=lambda j: (j.created_at, j.job_id))
        moved = 0
        for start in range(0, len(ordered), JOBS_PER_BUCKET):
            chunk = ordered[start : start + JOBS_PER_BUCKET]
            bucket_key = self.keys.history_bucket(chunk[0].created_at, uuid.uuid4().hex[:12])
            ops = [Op.put(bucket_key, state_pb2.HistoryBucket(jobs=chunk).SerializeToString())]
            for job in chunk:
                ops.append(Op.put(self.keys.history_index(job.job_id), bucket_key))
                ops.append(Op.delete(self.keys.job(job.job_id)))
            await self.client.txn_batches(guard, ops)  # one transaction: it fits max-txn-ops
            moved += len(chunk)
        return moved

    async def expire(self, older_than_ms: int, guard: Sequence[Compare]) -> int:
        """Delete buckets (and their index entries) of jobs created before `older_than_ms`."""
        start, end = self.keys.history_buckets_between(0, older_than_ms)
        removed = 0
        for kv in await self.client.get_range(start, end):
            bucket = state_pb2.HistoryBucket.FromString(kv.value)
            if any(job.created_at >= older_than_ms for job in bucket.jobs):
                continue  # straddles the cut: its newest job still has time left
            ops = [Op.delete(kv.key)] + [Op.delete(self.keys.history_index(j.job_id)) for j in bucket.jobs]
            await self.client.txn_batches(guard, ops)
            removed += len(bucket.jobs)
        return removed


def archivable(view_jobs: dict, dependents: dict, now_ms: int, archive_after_ms: int) -> list[types_pb2.Job]:
    """Final jobs that ended long enough ago and that no unfinished job still depends on.

    An array's children, and a multi-node job's nodes (which a retry reuses), go with their
    parent (once the parent ended), never before it.
    """
    chosen = []
    for job_id, entry in view_jobs.items():
        job = entry.job
        if entry.batch_id or job.status not in J.FINAL or not job.stopped_at:
            continue
        if now_ms - job.stopped_at < archive_after_ms:
            continue
        parent = J.parent_id(job_id) or multinode.parent_of(job_id)
        if parent and parent in view_jobs:
            parent_job = view_jobs[parent].job
            if parent_job.status not in J.FINAL or now_ms - parent_job.stopped_at < archive_after_ms:
                continue
        waiting = [d for d in dependents.get(job_id, ()) if d in view_jobs and view_jobs[d].job.status not in J.FINAL]
        if waiting:
            continue
        chosen.append(job)
    return chosen
