"""Scheduling policies and the fair-share fields of submissions: refused with the field named."""

from __future__ import annotations

import pytest

from controller.domain import policies as P
from shoal.errors import InvalidArgument
from shoal.v1 import batch_pb2, types_pb2

pytestmark = pytest.mark.unit


def policy(*shares: tuple[str, float], decay: int = 0, reservation: int = 0) -> batch_pb2.CreateSchedulingPolicyRequest:
    return batch_pb2.CreateSchedulingPolicyRequest(
        name="p",
        fairshare_policy=types_pb2.FairsharePolicy(
            share_decay_seconds=decay,
            compute_reservation=reservation,
            share_distribution=[types_pb2.ShareAttributes(share_identifier=s, weight_factor=w) for s, w in shares],
        ),
    )


def test_a_good_policy_passes() -> None:
    P.validate_create_scheduling_policy(policy(("a", 1), ("b*", 0.0001), ("c-d_e", 999.9999), decay=604_800, reservation=99))


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (policy(("a", 0)), r"share_distribution\[0\].weight_factor: must be 0.0001..999.9999 \(got 0\)"),
        (policy(("a", 1000)), r"weight_factor: must be 0.0001..999.9999"),
        (policy(("a", float("nan"))), r"weight_factor"),
        (policy(("a b", 1)), r"share_distribution\[0\].share_identifier: must be 1-255 letters"),
        (policy(("a**", 1)), r"share_identifier"),
        (policy(("", 1)), r"share_identifier"),
        (policy(("a", 1), ("a", 2)), r"share_distribution\[1\].share_identifier: a is listed twice"),
        (policy(("ab*", 1), ("ab-1", 2)), r"share_distribution\[1\].share_identifier: ab-1 overlaps ab\* \(entry 0\)"),
        (policy(("a*", 1), ("ab*", 2)), r"ab\* overlaps a\*"),
        (policy(("a", 1), decay=604_801), r"fairshare_policy.share_decay_seconds: must be 0..604800"),
        (policy(("a", 1), reservation=100), r"fairshare_policy.compute_reservation: must be 0..99"),
        (batch_pb2.CreateSchedulingPolicyRequest(name="p"), r"fairshare_policy: is required"),
        (batch_pb2.CreateSchedulingPolicyRequest(name="bad name", fairshare_policy=types_pb2.FairsharePolicy()), r"^name"),
    ],
)
def test_bad_policies_name_the_field(request_: batch_pb2.CreateSchedulingPolicyRequest, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        P.validate_create_scheduling_policy(request_)


def test_too_many_shares() -> None:
    with pytest.raises(InvalidArgument, match="at most 500 entries"):
        P.validate_create_scheduling_policy(policy(*[(f"s{i}", 1.0) for i in range(501)]))


FAIR = types_pb2.JobQueue(job_queue_name="fair", scheduling_policy="p")
FIFO = types_pb2.JobQueue(job_queue_name="fifo")


def test_share_and_priority_resolution() -> None:
    definition = types_pb2.JobDefinition(scheduling_priority=7)
    req = batch_pb2.SubmitJobRequest(share_identifier="a")
    assert P.resolve_fairshare(req, FAIR, definition) == ("a", 7)
    req.scheduling_priority_override = 0
    assert P.resolve_fairshare(req, FAIR, definition) == ("a", 0)  # an explicit 0 overrides too
    assert P.resolve_fairshare(batch_pb2.SubmitJobRequest(), FIFO, definition) == ("", 7)


@pytest.mark.parametrize(
    ("req", "queue", "message"),
    [
        (batch_pb2.SubmitJobRequest(), FAIR, r"^jobs\[2\].share_identifier: is required on job queue 'fair'"),
        (batch_pb2.SubmitJobRequest(share_identifier="a"), FIFO, r"share_identifier: job queue 'fifo' has no scheduling policy"),
        (batch_pb2.SubmitJobRequest(scheduling_priority_override=3), FIFO, r"scheduling_priority_override: job queue 'fifo'"),
        (batch_pb2.SubmitJobRequest(share_identifier="a*"), FAIR, r"wildcard is for policies"),
        (batch_pb2.SubmitJobRequest(share_identifier="a", scheduling_priority_override=10_000), FAIR, r"must be 0..9999"),
        (batch_pb2.SubmitJobRequest(share_identifier="x" * 256), FAIR, r"share_identifier: must be 1-255"),
    ],
)
def test_bad_fair_share_submissions(req: batch_pb2.SubmitJobRequest, queue: types_pb2.JobQueue, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        P.resolve_fairshare(req, queue, None, "jobs[2]")
