"""Limits against abuse that are not a property of one request: request rate and queue depth.

Size limits of single requests live where the request is understood (gRPC's maximum message
size in controller/main.py, jobs per SubmitJobs and array sizes in controller/domain/validation).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from shoal import errors

DEFAULT_RATE = 1000.0
DEFAULT_BURST = 2000.0
DEFAULT_MAX_QUEUED_PER_QUEUE = 100_000
# Buckets kept before idle, full ones are dropped (a scan of many peer addresses must not grow
# the table without bound).
MAX_BUCKETS = 10_000



@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per client key: `rate` requests/s on average, bursts up to `burst`.

    `rate` <= 0 turns the limiter off. The clock is injectable so tests need no sleeping.
    """

    def __init__(self, rate: float = DEFAULT_RATE, burst: float = DEFAULT_BURST,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def check(self, key: str) -> None:
        """Take one token for `key`, or raise ResourceExhausted saying when to retry."""
        if self.rate <= 0:
            return
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._sweep(now)
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens < 1.0:
            wait = (1.0 - bucket.tokens) / self.rate
            raise errors.ResourceExhausted(
                f"rate limit of {self.rate:g} requests/s exceeded; retry after {wait:.3f}s"
            )
        bucket.tokens -= 1.0

    def _sweep(self, now: float) -> None:
        full = [k for k, b in self._buckets.items() if b.tokens + (now - b.updated) * self.rate >= self.burst]
        for k in full:
            del self._buckets[k]
        if len(self._buckets) >= MAX_BUCKETS:  # all busy: forget the oldest half
            for k, _ in sorted(self._buckets.items(), key=lambda kv: kv[1].updated)[: MAX_BUCKETS // 2]:
                del self._buckets[k]


def queued_jobs(data: object, queue: str) -> int:
    """Jobs of `queue` not started yet (SUBMITTED, PENDING, RUNNABLE) in a replica's view data."""
    # Kept up to date by the view as jobs change state: O(1), not a scan of the queue.
    return int(data.waiting_by_queue.get(queue, 0))  # type: ignore[attr-defined]


def check_queue_depth(data: object, adding: dict[str, int], limit: int) -> None:
    """Refuse a submission that would take a queue over `limit` queued jobs (0 = no limit)."""
    if limit <= 0:
        return
    for queue, n in sorted(adding.items()):
        queued = queued_jobs(data, queue)
        if queued + n > limit:
            raise errors.ResourceExhausted(
                f"job queue '{queue}' has {queued} queued jobs; adding {n} would exceed the limit of "
                f"{limit} queued jobs per queue (--max-queued-jobs-per-queue); wait for some to start"
            )
