"""`shoal policies ...`, the fair-share and GPU flags of `shoal submit` / `queues`, and the
job definition file's schedulingPriority, against a fake Batch server."""

from __future__ import annotations

import json

import pytest

from shoal.jobdef import JobDefinitionFileError, parse_text
from shoal.v1 import batch_pb2, types_pb2
from tests.unit.cli.fake_batch import FakeBatch

pytestmark = pytest.mark.unit


def echo_policy(request, context) -> types_pb2.SchedulingPolicy:  # noqa: ANN001
    return types_pb2.SchedulingPolicy(name=request.name, fairshare_policy=request.fairshare_policy)


def test_policies_create_sends_shares_decay_and_reservation(fake: FakeBatch, shoal) -> None:
    fake.on("CreateSchedulingPolicy", echo_policy)
    result = shoal(
        "policies", "create", "teams", "--share", "research=1", "--share", "etl*=2.5", "--share", "ops",
        "--decay-seconds", "3600", "--compute-reservation", "20", "--addr", fake.address, "--output", "json",
    )  # fmt: skip
    assert result.code == 0, result
    (sent,) = fake.calls("CreateSchedulingPolicy")
    fp = sent.fairshare_policy
    assert [(s.share_identifier, s.weight_factor) for s in fp.share_distribution] == [
        ("research", 1.0), ("etl*", 2.5), ("ops", 1.0)
    ]  # fmt: skip
    assert (fp.share_decay_seconds, fp.compute_reservation) == (3600, 20)
    (shown,) = json.loads(result.out)["schedulingPolicies"]
    assert shown["fairsharePolicy"]["shareDistribution"][1] == {"shareIdentifier": "etl*", "weightFactor": 2.5}


def test_policies_bad_share_is_a_usage_error(fake: FakeBatch, shoal) -> None:
    result = shoal("policies", "create", "p", "--share", "a=heavy", "--addr", fake.address)
    assert result.code == 2 and "expected ID=WEIGHT with a number" in result.err
    assert fake.calls("CreateSchedulingPolicy") == []


def test_policies_list_describe_delete(fake: FakeBatch, shoal) -> None:
    policy = types_pb2.SchedulingPolicy(
        name="teams",
        fairshare_policy=types_pb2.FairsharePolicy(
            share_decay_seconds=60, share_distribution=[types_pb2.ShareAttributes(share_identifier="a", weight_factor=3)]
        ),
    )
    fake.on("DescribeSchedulingPolicies", batch_pb2.DescribeSchedulingPoliciesResponse(scheduling_policies=[policy]))
    fake.on("DeleteSchedulingPolicy", batch_pb2.DeleteSchedulingPolicyResponse())
    listed = shoal("policies", "list", "--addr", fake.address).out.splitlines()
    assert listed[0].split() == ["NAME", "DECAY", "RESERVATION", "SHARES", "AGE"]
    assert listed[1].split()[:4] == ["teams", "60s", "0%", "a=3"]
    described = shoal("policies", "describe", "teams", "--addr", fake.address).out
    assert "Share decay:          60s" in described and "lower weight gets more" in described
    missing = shoal("policies", "describe", "teams", "other", "--addr", fake.address)
    assert missing.code == 3 and "scheduling policy 'other' does not exist" in missing.err
    assert shoal("policies", "delete", "teams", "--addr", fake.address).code == 0
    assert [c.name for c in fake.calls("DeleteSchedulingPolicy")] == ["teams"]


def test_submit_carries_share_priority_and_gpus(fake: FakeBatch, shoal) -> None:
    fake.on("SubmitJob", batch_pb2.SubmitJobResponse(job_id="id-1", job_name="x"))
    result = shoal(
        "submit", "--addr", fake.address, "--queue", "fair", "--share-identifier", "teamA",
        "--scheduling-priority", "10", "--gpus", "2", "--", "python", "train.py",
    )  # fmt: skip
    assert result.code == 0, result
    (sent,) = fake.calls("SubmitJob")
    assert (sent.share_identifier, sent.scheduling_priority_override, sent.container_overrides.gpus) == ("teamA", 10, 2)
    shoal("submit", "--addr", fake.address, "--", "true")
    plain = fake.calls("SubmitJob")[1]
    assert not plain.HasField("scheduling_priority_override") and not plain.container_overrides.HasField("gpus")


def test_queues_create_and_update_name_a_policy(fake: FakeBatch, shoal) -> None:
    fake.on("CreateJobQueue", lambda request, context: types_pb2.JobQueue(
        job_queue_name=request.job_queue_name, scheduling_policy=request.scheduling_policy))  # fmt: skip
    fake.on("UpdateJobQueue", lambda request, context: types_pb2.JobQueue(job_queue_name=request.job_queue_name))
    result = shoal("queues", "create", "shared", "--compute-env", "a", "--scheduling-policy", "teams", "--addr", fake.address)
    assert result.code == 0 and "teams" in result.out.splitlines()[1]
    assert fake.calls("CreateJobQueue")[0].scheduling_policy == "teams"
    assert shoal("queues", "update", "shared", "--scheduling-policy", "other", "--addr", fake.address).code == 0
    assert fake.calls("UpdateJobQueue")[0].scheduling_policy == "other"


def test_definition_file_scheduling_priority_and_gpus() -> None:
    request = parse_text(
        "jobDefinitionName: train\nschedulingPriority: 50\ncontainerProperties:\n  command: [x]\n"
        "  resourceRequirements: [{type: GPU, value: '2'}]\n"
    )
    assert (request.scheduling_priority, request.container_properties.resources.gpus) == (50, 2)
    with pytest.raises(JobDefinitionFileError, match="schedulingPriority"):
        parse_text("jobDefinitionName: t\nschedulingPriority: 10000\ncontainerProperties: {command: [x]}\n")


def test_describe_shows_share_and_gpu_devices() -> None:
    from shoal.cli import jobview

    job = jobview.from_message(
        types_pb2.Job(job_id="j", share_identifier="teamA", scheduling_priority=5, node_id="n1", gpu_ids=["0", "1"])
    )
    text = jobview.job_detail(job, now_ms=0)
    assert "teamA (scheduling priority 5)" in text and "0,1" in text
    shown = jobview.job_json(job)
    assert (shown["shareIdentifier"], shown["schedulingPriority"], shown["gpuIds"]) == ("teamA", 5, ["0", "1"])
