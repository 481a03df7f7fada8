"""Fair-share order within one queue (AWS Batch's fairsharePolicy), and its arithmetic.

A fair-share queue does not run its jobs first in, first out. Each job belongs to a share (its
shareIdentifier); each share has a weight (weightFactor, from the policy's shareDistribution:
an exact identifier, else the longest `prefix*` that matches, else 1). A share's *load* is

    weight x (decayed usage / share_decay_seconds + vCPUs it runs now)

where decayed usage is the vCPU-seconds of its finished attempts, each counted with weight
exp(-age / share_decay_seconds) (with share_decay_seconds = 0 only what runs now counts, as AWS
documents). Both terms are in vCPUs: the first is the share's average allocation over the decay
window, the second its allocation at this moment. The share with the lowest load goes next,
so lower weights get more — weights 1 and 3 settle where the first runs 3x the vCPUs of the
second, and a share that just arrived (no usage, nothing running) goes first. Within a share:
higher schedulingPriority first, then submission order.

Placing a job during the pass adds its vCPUs to its share's "runs now" at once, so one pass
with many free slots already splits them by weight.

computeReservation (0-99): with n share identifiers active (having jobs running or runnable in
the queue), (computeReservation/100)^n of the queue's vCPUs is kept free for identifiers that
are not active yet; the active ones together use at most the rest.

All of it is pure: usage comes in the snapshot (`FairShare.usage`, already decayed to the
pass's time by the leader), and the clock is an argument of the helpers below.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter

from controller.scheduler.snapshot import JobView

__all__ = ["FairOrder", "FairShare", "charge", "decayed", "reserved_fraction", "weight_of"]


@dataclass(frozen=True)
class FairShare:
    """A fair-share queue's policy and its shares' usage, as one pass sees them."""

    weights: Mapping[str, float] = field(default_factory=dict)
    """shareIdentifier (or `prefix*`) -> weightFactor; unlisted identifiers weigh 1."""
    decay_seconds: int = 0
    compute_reservation: int = 0
    """Percent, 0-99."""
    usage: Mapping[str, float] = field(default_factory=dict)
    """share -> decayed vCPU-seconds of its finished attempts, as of the pass."""
    running: Mapping[str, int] = field(default_factory=dict)
    """share -> milli-vCPUs of its STARTING/RUNNING jobs in this queue."""
    policy: str = ""
    """Name of the policy (for the reasons shown to users)."""


def weight_of(share: str, weights: Mapping[str, float]) -> float:
    """The weight of `share`: an exact entry, else the longest matching `prefix*`, else 1."""
    exact = weights.get(share)
    if exact is not None:
        return exact
    best = ""
    weight = 1.0
    for key, value in weights.items():
        if key.endswith("*") and share.startswith(key[:-1]) and len(key) > len(best):
            best, weight = key, value
    return weight


def decayed(vcpu_seconds: float, as_of_ms: int, now_ms: int, decay_seconds: int) -> float:
    """`vcpu_seconds` measured at `as_of_ms`, decayed to `now_ms`."""
    if decay_seconds <= 0:
        return 0.0
    age = max(0, now_ms - as_of_ms) / 1000
    return vcpu_seconds * math.exp(-age / decay_seconds)


def charge(vcpu_seconds: float, as_of_ms: int, now_ms: int, decay_seconds: int, added: float) -> float:
    """The usage as of `now_ms` after adding `added` vCPU-seconds (decay first, then add)."""
    if decay_seconds <= 0:
        return 0.0
    return decayed(vcpu_seconds, as_of_ms, now_ms, decay_seconds) + added


def reserved_fraction(compute_reservation: int, active_shares: int) -> float:
    """Fraction of the queue's vCPUs kept for share identifiers not active yet."""
    if compute_reservation <= 0:
        return 0.0
    return (compute_reservation / 100) ** max(1, active_shares)


def load(fair: FairShare, share: str, running_milli: int, weight: float | None = None) -> float:
    """The share's weighted load in vCPUs (lower goes first)."""
    past = fair.usage.get(share, 0.0) / fair.decay_seconds if fair.decay_seconds > 0 else 0.0
    if weight is None:
        weight = weight_of(share, fair.weights)
    return weight * (past + running_milli / 1000)


_ORDER = attrgetter("order")


def _by_priority(job: JobView) -> int:
    return -job.priority


class FairOrder:
    """Iterates a fair-share queue's jobs in fair-share order, adapting as jobs are placed.

    `jobs` is the queue's lane (submission order). The pass calls `placed(job)` after placing
    the job it was just given, which raises that share's load before the next job is chosen.
    Jobs it did not place leave the load alone (they wait; their share keeps its turn, so the
    next of its jobs — a smaller one, say — is tried next: backfill within the share).
    """

    __slots__ = ("fair", "_lists", "_pos", "_running", "_weights", "_heap", "_last", "limit", "used", "active")

    def __init__(self, jobs: Sequence[JobView], fair: FairShare, capacity_milli: int = 0) -> None:
        self.fair = fair
        lists: dict[str, list[JobView]] = {}
        for job in jobs:
            share = lists.get(job.share)
            if share is None:
                lists[job.share] = [job]
            else:
                share.append(job)
        for share_jobs in lists.values():
            if any(j.priority for j in share_jobs):
                share_jobs.sort(key=_by_priority)  # stable: submission order within a priority
        self._lists = lists
        self._pos = dict.fromkeys(lists, 0)
        self._running = dict(fair.running)
        # Resolved once per share (a wildcard entry is a scan of the distribution).
        self._weights = {s: weight_of(s, fair.weights) for s in lists}
        self._heap = [
            (load(fair, s, self._running.get(s, 0), self._weights[s]), js[0].order, s) for s, js in lists.items()
        ]
        heapq.heapify(self._heap)
        self._last: JobView | None = None  # the job yielded last
        self.active = len(set(lists) | {s for s, milli in fair.running.items() if milli > 0})
        self.used = sum(fair.running.values())
        reserved = reserved_fraction(fair.compute_reservation, self.active)
        # The active shares together may use this much of the queue's vCPUs (None: no limit).
        self.limit: int | None = (
            math.floor(capacity_milli * (1 - reserved)) if reserved and capacity_milli else None
        )

    def __iter__(self) -> Iterator[JobView]:
        heap, lists, pos = self._heap, self._lists, self._pos
        while heap:
            _load, _order, share = heap[0]
            share_jobs = lists[share]
            i = pos[share]
            if i >= len(share_jobs):
                heapq.heappop(heap)
                continue
            pos[share] = i + 1
            job = self._last = share_jobs[i]
            yield job

    def placed(self, job: JobView) -> None:
        """The job just yielded was placed: charge its vCPUs to its share and re-rank it."""
        share = job.share
        milli = job.request.milli_vcpus
        self.used += milli
        running = self._running.get(share, 0) + milli
        self._running[share] = running
        heap = self._heap
        # The share is at the top of the heap (it was just yielded from there).
        i = self._pos[share]
        share_jobs = self._lists[share]
        if i >= len(share_jobs):
            heapq.heappop(heap)
        else:
            heapq.heapreplace(heap, (load(self.fair, share, running, self._weights[share]), share_jobs[i].order, share))

    def allows(self, milli: int) -> bool:
        """Whether the compute reservation leaves room for `milli` more vCPUs."""
        return self.limit is None or self.used + milli <= self.limit

    def reservation_text(self) -> str:
        limit = self.limit or 0
        return (
            f"Fair-share compute reservation: the {self.active} active share identifier(s) of policy "
            f"{self.fair.policy} may use {limit / 1000:g} vCPUs, and use {self.used / 1000:g}; the rest is "
            "kept for share identifiers not active yet"
        )

    def rest(self) -> list[JobView]:
        """The job yielded last and those not yielded yet, in the order they would come
        (loads no longer change once nothing more is placed)."""
        out: list[JobView] = [self._last] if self._last is not None else []
        for _load, _order, share in sorted(self._heap):
            out.extend(self._lists[share][self._pos[share] :])
        return out
