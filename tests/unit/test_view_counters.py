"""The view's counters for the dashboard (controller/services/view.py): jobs per (queue, status)
and jobs started / finished per minute, kept in step with every change, without a scan."""

from __future__ import annotations

from collections import Counter

import pytest

from controller.domain import jobs as J
from controller.services.view import ClusterView
from controller.store.etcd import Event, KeyValue
from controller.store.keys import Keys
from shoal.v1 import state_pb2, types_pb2

pytestmark = pytest.mark.unit

KEYS = Keys("/t/")
MINUTE = 60_000
T0 = 1_800_000_000_000 // MINUTE * MINUTE  # the start of some minute


class Feed:
    """Applies etcd events to a view as its watch would, one revision each."""

    def __init__(self) -> None:
        self.view = ClusterView(client=None, keys=KEYS)  # type: ignore[arg-type]  # never reads etcd here
        self.revision = 0
        self.created: dict[bytes, int] = {}

    def put(self, key: bytes, value: bytes) -> None:
        self.revision += 1
        create = self.created.setdefault(key, self.revision)
        self.view._apply_events([Event("put", KeyValue(key, value, create, self.revision, 1, 0))])

    def delete(self, key: bytes) -> None:
        self.revision += 1
        self.view._apply_events([Event("delete", KeyValue(key, b"", 0, self.revision, 0, 0))])
        self.created.pop(key, None)

    def job(self, job_id: str, queue: str, status: int, **fields: int) -> None:
        self.put(KEYS.job(job_id), types_pb2.Job(job_id=job_id, job_queue=queue, status=status, **fields).SerializeToString())


def expected(view: ClusterView) -> dict[str, dict[int, int]]:
    """What a full scan says (the counters must always agree with it)."""
    out: dict[str, Counter[int]] = {}
    for entry in view.data.jobs.values():
        out.setdefault(entry.job.job_queue, Counter())[entry.job.status] += 1
    return {q: dict(c) for q, c in out.items()}


def test_counts_follow_submissions_transitions_and_deletes() -> None:
    feed = Feed()
    batch = state_pb2.SubmissionBatch(batch_id="b1")
    for i in range(5):
        batch.jobs.add(job_id=f"j{i}", job_queue="a" if i < 3 else "b", status=J.SUBMITTED, batch_index=i)
    feed.put(KEYS.submission("b1"), batch.SerializeToString())
    assert feed.view.queue_status_counts() == {"a": {J.SUBMITTED: 3}, "b": {J.SUBMITTED: 2}} == expected(feed.view)

    # The leader expands the batch and moves jobs on; one job is archived (deleted).
    for i in range(5):
        feed.job(f"j{i}", "a" if i < 3 else "b", J.RUNNABLE)
    feed.delete(KEYS.submission("b1"))
    feed.job("j0", "a", J.RUNNING, started_at=T0 + 5)
    feed.job("j1", "a", J.RUNNING, started_at=T0 + 10)
    feed.job("j1", "a", J.SUCCEEDED, started_at=T0 + 10, stopped_at=T0 + MINUTE + 1)
    feed.job("j3", "b", J.FAILED, stopped_at=T0 + MINUTE + 2)
    feed.delete(KEYS.job("j4"))
    counts = feed.view.queue_status_counts()
    assert counts == expected(feed.view) == {"a": {J.RUNNING: 1, J.SUCCEEDED: 1, J.RUNNABLE: 1}, "b": {J.FAILED: 1}}

    rates = feed.view.jobs_per_minute(T0 + MINUTE + 30, minutes=3)
    assert rates == [(T0 - MINUTE, 0, 0), (T0, 2, 0), (T0 + MINUTE, 0, 2)]


def test_a_retried_attempt_counts_as_a_new_start_and_a_queue_without_jobs_is_listed() -> None:
    feed = Feed()
    feed.put(KEYS.queue("idle"), types_pb2.JobQueue(job_queue_name="idle").SerializeToString())
    feed.job("r", "a", J.RUNNING, started_at=T0 + 1)
    feed.job("r", "a", J.RUNNING, started_at=T0 + 1)  # the same attempt written again: not a new start
    feed.job("r", "a", J.RUNNABLE)
    feed.job("r", "a", J.RUNNING, started_at=T0 + 2_000)  # the retry
    assert feed.view.jobs_per_minute(T0 + 1, minutes=1) == [(T0, 2, 0)]
    assert feed.view.queue_status_counts() == {"idle": {}, "a": {J.RUNNING: 1}}
