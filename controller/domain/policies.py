"""Checks of scheduling policies and of the fair-share fields of jobs (pure, no I/O).

Limits are AWS Batch's: up to 500 shareDistribution entries, weightFactor 0.0001-999.9999,
shareDecaySeconds 0-604800 (a week), computeReservation 0-99, schedulingPriority 0-9999,
share identifiers of up to 255 characters, a trailing `*` only in a policy.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from controller.domain.validation import validate_name
from shoal.errors import InvalidArgument
from shoal.v1 import batch_pb2, types_pb2

MAX_SHARES = 500
MIN_WEIGHT = 0.0001
MAX_WEIGHT = 999.9999
MAX_DECAY_SECONDS = 604_800
MAX_COMPUTE_RESERVATION = 99
MAX_SCHEDULING_PRIORITY = 9999
MAX_POLICY_TAGS = 50

_SHARE = re.compile(r"[A-Za-z0-9_-]{1,255}")


def validate_share_identifier(value: str, field: str) -> None:
    """A job's share identifier: 1-255 letters, digits, '-', '_'."""
    if not _SHARE.fullmatch(value):
        raise InvalidArgument(
            f"{field}: must be 1-255 letters, digits, '-' or '_' (got {value[:80]!r})"
            + (" (a '*' wildcard is for policies, not jobs)" if "*" in value else "")
        )


def validate_scheduling_priority(value: int, field: str) -> None:
    if not 0 <= value <= MAX_SCHEDULING_PRIORITY:
        raise InvalidArgument(f"{field}: must be 0..{MAX_SCHEDULING_PRIORITY} (got {value})")


def validate_fairshare_policy(policy: types_pb2.FairsharePolicy, field: str) -> None:
    if policy.share_decay_seconds > MAX_DECAY_SECONDS:
        raise InvalidArgument(
            f"{field}.share_decay_seconds: must be 0..{MAX_DECAY_SECONDS} (got {policy.share_decay_seconds})"
        )
    if policy.compute_reservation > MAX_COMPUTE_RESERVATION:
        raise InvalidArgument(
            f"{field}.compute_reservation: must be 0..{MAX_COMPUTE_RESERVATION} (got {policy.compute_reservation})"
        )
    shares = policy.share_distribution
    if len(shares) > MAX_SHARES:
        raise InvalidArgument(f"{field}.share_distribution: at most {MAX_SHARES} entries (got {len(shares)})")
    exact: dict[str, int] = {}
    prefixes: dict[str, int] = {}
    for i, entry in enumerate(shares):
        path = f"{field}.share_distribution[{i}]"
        ident = entry.share_identifier
        wildcard = ident.endswith("*")
        stem = ident[:-1] if wildcard else ident
        if not (_SHARE.fullmatch(stem) or (wildcard and stem == "")):
            raise InvalidArgument(
                f"{path}.share_identifier: must be 1-255 letters, digits, '-' or '_', optionally "
                f"followed by one '*' (got {ident[:80]!r})"
            )
        weight = entry.weight_factor
        if not math.isfinite(weight) or not MIN_WEIGHT <= weight <= MAX_WEIGHT:
            raise InvalidArgument(f"{path}.weight_factor: must be {MIN_WEIGHT}..{MAX_WEIGHT} (got {weight:g})")
        (prefixes if wildcard else exact).setdefault(stem, i)
        if (wildcard and prefixes[stem] != i) or (not wildcard and exact[stem] != i):
            raise InvalidArgument(f"{path}.share_identifier: {ident} is listed twice")
    # AWS: entries may not overlap (`UserA*` with `UserA-1`, or `User*` with `UserA*`).
    for stem, i in prefixes.items():
        for other, j in list(prefixes.items()) + list(exact.items()):
            if j != i and other.startswith(stem):
                other_text = shares[j].share_identifier
                raise InvalidArgument(
                    f"{field}.share_distribution[{j}].share_identifier: {other_text} overlaps "
                    f"{stem}* (entry {i}); share identifiers may not overlap"
                )


def _validate_tags(tags: Mapping[str, str], field: str) -> None:
    if len(tags) > MAX_POLICY_TAGS:
        raise InvalidArgument(f"{field}: at most {MAX_POLICY_TAGS} tags (got {len(tags)})")
    for key, value in tags.items():
        if not 1 <= len(key) <= 128 or len(value) > 256:
            raise InvalidArgument(f"{field}: keys are 1-128 characters and values up to 256 (key {key[:40]!r})")


def validate_create_scheduling_policy(req: batch_pb2.CreateSchedulingPolicyRequest) -> None:
    validate_name(req.name, "name")
    if not req.HasField("fairshare_policy"):
        raise InvalidArgument("fairshare_policy: is required (share_distribution, share_decay_seconds, compute_reservation)")
    validate_fairshare_policy(req.fairshare_policy, "fairshare_policy")
    _validate_tags(req.tags, "tags")


def validate_update_scheduling_policy(req: batch_pb2.UpdateSchedulingPolicyRequest) -> None:
    validate_name(req.name, "name")
    if not req.HasField("fairshare_policy"):
        raise InvalidArgument("fairshare_policy: is required (it replaces the policy's)")
    validate_fairshare_policy(req.fairshare_policy, "fairshare_policy")


def validate_submit_fairshare(req: batch_pb2.SubmitJobRequest, field_prefix: str = "") -> None:
    """The request's own fair-share fields (whether its queue wants them is checked at submit)."""
    prefix = f"{field_prefix}." if field_prefix else ""
    if req.share_identifier:
        validate_share_identifier(req.share_identifier, f"{prefix}share_identifier")
    if req.HasField("scheduling_priority_override"):
        validate_scheduling_priority(req.scheduling_priority_override, f"{prefix}scheduling_priority_override")


def resolve_fairshare(
    req: batch_pb2.SubmitJobRequest,
    queue: types_pb2.JobQueue,
    definition: types_pb2.JobDefinition | None,
    field_prefix: str = "",
) -> tuple[str, int]:
    """(share identifier, scheduling priority) of a job `req` submits to `queue`.

    A fair-share queue requires a share identifier; a FIFO queue has no shares, so one given
    there is refused rather than silently ignored. The priority is the override, else the
    definition's, else 0 (it only orders jobs of a fair-share queue).
    """
    validate_submit_fairshare(req, field_prefix)
    prefix = f"{field_prefix}." if field_prefix else ""
    name = queue.job_queue_name
    if queue.scheduling_policy:
        if not req.share_identifier:
            raise InvalidArgument(
                f"{prefix}share_identifier: is required on job queue '{name}', which uses fair-share "
                f"scheduling policy '{queue.scheduling_policy}'"
            )
    else:
        if req.share_identifier:
            raise InvalidArgument(
                f"{prefix}share_identifier: job queue '{name}' has no scheduling policy (FIFO); "
                "share identifiers are for fair-share queues"
            )
        if req.HasField("scheduling_priority_override"):
            raise InvalidArgument(
                f"{prefix}scheduling_priority_override: job queue '{name}' has no scheduling policy (FIFO); "
                "scheduling priorities order jobs within a share of a fair-share queue"
            )
    if req.HasField("scheduling_priority_override"):
        priority = req.scheduling_priority_override
    else:
        priority = definition.scheduling_priority if definition is not None else 0
    return req.share_identifier, priority
