"""The leader's side of fair share and GPUs: what a pass feeds `place()`, and usage accounting.

Usage accounting. When an attempt of a job on a fair-share queue ends, its share is charged
vCPUs x (stopped - started) seconds. Each queue's usage is one `FairshareUsage` value under
`<prefix>usage/<queue>`, written in the pass's own fenced transactions (one value per queue
that changed, never one per job): a pass that ends 500 attempts of a queue writes it once, and
the charge commits with the job records that end those attempts, so a failover neither loses
nor double-counts it. A new leader reads it from its view and carries on. Decay is applied
lazily: a value is stored with the time it was computed at (`as_of`) and decayed on read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from controller.domain import jobs as J
from controller.scheduler.fairshare import FairShare, charge, decayed, load, weight_of
from controller.services.view import ViewData
from shoal.v1 import state_pb2, types_pb2


def policy_of(data: ViewData, queue: types_pb2.JobQueue) -> types_pb2.SchedulingPolicy | None:
    return data.policies.get(queue.scheduling_policy) if queue.scheduling_policy else None


def running_by_share(active: Iterable[types_pb2.Job], queues: Mapping[str, object]) -> dict[str, dict[str, int]]:
    """queue -> share -> milli-vCPUs of its STARTING/RUNNING jobs (only the queues given)."""
    out: dict[str, dict[str, int]] = {}
    for job in active:
        if job.job_queue in queues:
            shares = out.setdefault(job.job_queue, {})
            milli = round(job.container.resources.vcpus * 1000)
            shares[job.share_identifier] = shares.get(job.share_identifier, 0) + milli
    return out


def fair_shares(data: ViewData, active: Iterable[types_pb2.Job], now_ms: int) -> dict[str, FairShare]:
    """The FairShare of every fair-share queue whose policy exists, as of `now_ms`."""
    policies = {}
    for name, queue in data.queues.items():
        policy = policy_of(data, queue)
        if policy is not None:
            policies[name] = policy
    if not policies:
        return {}
    running = running_by_share(active, policies)
    out = {}
    for name, policy in policies.items():
        fp = policy.fairshare_policy
        stored = data.usage.get(name)
        usage = {}
        if stored is not None and fp.share_decay_seconds:
            usage = {
                share: decayed(u.vcpu_seconds, u.as_of, now_ms, fp.share_decay_seconds)
                for share, u in stored.shares.items()
            }
        out[name] = FairShare(
            weights={s.share_identifier: s.weight_factor for s in fp.share_distribution},
            decay_seconds=fp.share_decay_seconds,
            compute_reservation=fp.compute_reservation,
            usage=usage,
            running=running.get(name, {}),
            policy=policy.name,
        )
    return out


# Shares whose decayed usage fell below this many vCPU-seconds are dropped from the record.
_FORGET_BELOW = 1e-3


def charge_usage(
    data: ViewData, changed: Mapping[str, types_pb2.Job], now_ms: int
) -> dict[str, state_pb2.FairshareUsage]:
    """The usage records to write for the attempts that `changed` (this pass's job records)
    ended: queue -> its whole new record. Empty when nothing on a fair-share queue ended."""
    added: dict[str, dict[str, float]] = {}
    decay_of: dict[str, int] = {}
    for job_id, job in changed.items():
        queue_name = job.job_queue
        decay = decay_of.get(queue_name)
        if decay is None:
            queue = data.queues.get(queue_name)
            policy = policy_of(data, queue) if queue is not None else None
            decay = decay_of[queue_name] = policy.fairshare_policy.share_decay_seconds if policy else 0
        if not decay or not job.attempts:
            continue
        entry = data.jobs.get(job_id)
        before = len(entry.job.attempts) if entry is not None else 0
        vcpus = job.container.resources.vcpus
        attempts = job.attempts
        for k in range(before, len(attempts)):
            detail = attempts[k]
            # An attempt lost before it reported its start carries the job's previous start:
            # never charge time before the previous attempt stopped twice.
            start = max(detail.started_at, attempts[k - 1].stopped_at if k else 0)
            if detail.started_at and detail.stopped_at > start:
                seconds = (detail.stopped_at - start) / 1000
                shares = added.setdefault(queue_name, {})
                shares[job.share_identifier] = shares.get(job.share_identifier, 0.0) + vcpus * seconds
    out = {}
    for queue_name, shares in added.items():
        decay = decay_of[queue_name]
        record = state_pb2.FairshareUsage()
        old = data.usage.get(queue_name)
        if old is not None:
            for share, u in old.shares.items():
                value = charge(u.vcpu_seconds, u.as_of, now_ms, decay, shares.pop(share, 0.0))
                if value >= _FORGET_BELOW:
                    record.shares[share].vcpu_seconds = value
                    record.shares[share].as_of = now_ms
        for share, seconds in shares.items():
            record.shares[share].vcpu_seconds = seconds
            record.shares[share].as_of = now_ms
        out[queue_name] = record
    return out


def free_gpu_ids(node: types_pb2.Node, active: Sequence[types_pb2.Job]) -> tuple[str, ...] | None:
    """The node's device ids not held by an active attempt (None: the agent sent no ids)."""
    if not node.gpu_ids:
        return None
    used = {gpu for job in active for gpu in job.gpu_ids}
    return tuple(g for g in node.gpu_ids if g not in used)


def explain_share(data: ViewData, job: types_pb2.Job, now_ms: int) -> list[str]:
    """`shoal why` lines about a job's share on a fair-share queue (none on a FIFO queue)."""
    queue = data.queues.get(job.job_queue)
    if queue is None or not queue.scheduling_policy:
        return []
    policy = policy_of(data, queue)
    if policy is None:
        return [f"Scheduling policy {queue.scheduling_policy} of queue {queue.job_queue_name} does not exist"]
    active = [
        entry.job
        for status in (J.STARTING, J.RUNNING)
        for jid in data.by_status.get(status, ())
        if (entry := data.jobs.get(jid)) is not None and entry.job.job_queue == queue.job_queue_name
    ]
    fair = fair_shares(data, active, now_ms).get(queue.job_queue_name)
    if fair is None:
        return []
    share = job.share_identifier
    weight = weight_of(share, fair.weights)
    running = fair.running.get(share, 0)
    usage = fair.usage.get(share, 0.0)
    loads = {s: load(fair, s, fair.running.get(s, 0)) for s in set(fair.running) | set(fair.usage) | {share}}
    rank = sorted(loads, key=lambda s: (loads[s], s)).index(share) + 1
    window = (
        f"decayed over {fair.decay_seconds}s" if fair.decay_seconds else "share_decay_seconds 0: only current usage counts"
    )
    return [
        f"Share {share} of fair-share queue {queue.job_queue_name} (policy {policy.name}): weight {weight:g} "
        f"(lower gets more), usage {usage:.1f} vCPU-seconds ({window}), {running / 1000:g} vCPUs running; "
        f"load {loads[share]:.2f}, {rank} of {len(loads)} shares in line (lowest load goes first), "
        f"scheduling priority {job.scheduling_priority}"
    ]
