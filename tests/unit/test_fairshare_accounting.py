"""The leader's fair-share bookkeeping over plain view data: charging ended attempts (one
record per queue, decayed then added), what a pass feeds place(), free GPU ids, `why`."""

from __future__ import annotations

import math

import pytest

from controller.domain import jobs as J
from controller.services.fairshare import charge_usage, explain_share, fair_shares, free_gpu_ids
from controller.services.view import JobEntry, ViewData
from shoal.v1 import state_pb2, types_pb2

pytestmark = pytest.mark.unit

NOW = 1_700_000_000_000


def view(decay: int = 60) -> ViewData:
    data = ViewData()
    data.policies["p"] = types_pb2.SchedulingPolicy(
        name="p",
        fairshare_policy=types_pb2.FairsharePolicy(
            share_decay_seconds=decay,
            share_distribution=[types_pb2.ShareAttributes(share_identifier="a", weight_factor=1.0),
                                types_pb2.ShareAttributes(share_identifier="b*", weight_factor=3.0)],
        ),
    )  # fmt: skip
    data.queues["fair"] = types_pb2.JobQueue(job_queue_name="fair", scheduling_policy="p")
    data.queues["fifo"] = types_pb2.JobQueue(job_queue_name="fifo")
    return data


def job(job_id: str, queue: str, share: str, vcpus: float, *spans: tuple[int, int], status: int = J.RUNNABLE) -> types_pb2.Job:
    record = types_pb2.Job(job_id=job_id, job_queue=queue, share_identifier=share, status=status)
    record.container.resources.vcpus = vcpus
    for i, (start, stop) in enumerate(spans):
        record.attempts.add(attempt=i + 1, started_at=start, stopped_at=stop)
    return record


def test_ended_attempts_are_charged_once_per_queue_and_fifo_queues_are_not() -> None:
    data = view()
    data.jobs["old"] = JobEntry(job("old", "fair", "a", 2, (NOW - 10_000, NOW - 5_000)), (1, 0), 1)
    changed = {
        # One earlier attempt (already charged) and a new one of 3 s at 2 vCPUs.
        "old": job("old", "fair", "a", 2, (NOW - 10_000, NOW - 5_000), (NOW - 3_000, NOW)),
        "new": job("new", "fair", "b-1", 0.5, (NOW - 4_000, NOW)),
        "never-ran": job("never-ran", "fair", "a", 1, (0, NOW)),
        "fifo": job("fifo", "fifo", "", 4, (NOW - 9_000, NOW)),
    }
    usage = charge_usage(data, changed, NOW)
    assert set(usage) == {"fair"}
    shares = usage["fair"].shares
    assert shares["a"].vcpu_seconds == pytest.approx(6.0) and shares["a"].as_of == NOW
    assert shares["b-1"].vcpu_seconds == pytest.approx(2.0)
    assert charge_usage(data, {"fifo": changed["fifo"]}, NOW) == {}


def test_charging_decays_the_stored_usage_first() -> None:
    data = view(decay=60)
    stored = state_pb2.FairshareUsage()
    stored.shares["a"].vcpu_seconds = 100.0
    stored.shares["a"].as_of = NOW - 60_000  # one decay window ago: e^-1 left
    stored.shares["gone"].vcpu_seconds = 1e-6
    stored.shares["gone"].as_of = NOW - 600_000
    data.usage["fair"] = stored
    usage = charge_usage(data, {"j": job("j", "fair", "a", 1, (NOW - 1_000, NOW))}, NOW)["fair"]
    assert usage.shares["a"].vcpu_seconds == pytest.approx(100 * math.exp(-1) + 1.0)
    assert "gone" not in usage.shares  # decayed to nothing: dropped from the record


def test_a_pass_sees_decayed_usage_running_vcpus_and_weights() -> None:
    data = view(decay=60)
    stored = state_pb2.FairshareUsage()
    stored.shares["a"].vcpu_seconds = 120.0
    stored.shares["a"].as_of = NOW
    data.usage["fair"] = stored
    active = [job("r1", "fair", "a", 1.5), job("r2", "fair", "b-9", 1), job("r3", "fifo", "", 8)]
    fair = fair_shares(data, active, NOW + 60_000)
    assert set(fair) == {"fair"}
    share = fair["fair"]
    assert share.usage["a"] == pytest.approx(120 * math.exp(-1))
    assert dict(share.running) == {"a": 1500, "b-9": 1000}
    assert share.weights == {"a": 1.0, "b*": 3.0} and share.decay_seconds == 60 and share.policy == "p"


def test_free_gpu_ids_leave_out_the_devices_of_active_attempts() -> None:
    node = types_pb2.Node(node_id="n", gpus=4, gpu_ids=["0", "1", "2", "3"])
    holding = [types_pb2.Job(gpu_ids=["1"]), types_pb2.Job(gpu_ids=["3", "0"])]
    assert free_gpu_ids(node, holding) == ("2",)
    assert free_gpu_ids(types_pb2.Node(gpus=2), holding) is None  # no ids reported: counts only


def test_why_names_share_weight_usage_and_place_in_line() -> None:
    data = view(decay=60)
    stored = state_pb2.FairshareUsage()
    stored.shares["a"].vcpu_seconds = 600.0
    stored.shares["a"].as_of = NOW
    data.usage["fair"] = stored
    running = job("r", "fair", "b-1", 1, status=J.RUNNING)
    data.jobs["r"] = JobEntry(running, (1, 0), 1)
    data.by_status[J.RUNNING].add("r")
    waiting = job("w", "fair", "a", 1)
    waiting.scheduling_priority = 5
    (line,) = explain_share(data, waiting, NOW)
    assert line.startswith("Share a of fair-share queue fair (policy p): weight 1 (lower gets more), usage 600.0 vCPU-seconds")
    # a: 1 x 600/60 = 10; b-1: 3 x 1 = 3: a is second in line.
    assert "load 10.00, 2 of 2 shares in line" in line and "scheduling priority 5" in line
    assert explain_share(data, job("f", "fifo", "", 1), NOW) == []


def test_metrics_show_each_shares_decayed_usage() -> None:
    import time

    from controller.metrics import _fairshare_usage

    data = view(decay=600)
    stored = state_pb2.FairshareUsage()
    stored.shares["a"].vcpu_seconds = 50.0
    stored.shares["a"].as_of = int(time.time() * 1000)
    data.usage["fair"] = stored
    data.usage["orphan"] = stored  # a queue that is gone: not shown
    (sample,) = _fairshare_usage(data).samples
    assert sample.labels == {"queue": "fair", "share": "a"} and sample.value == pytest.approx(50.0, rel=0.01)


def test_a_lost_attempt_never_recharges_the_previous_attempts_time() -> None:
    data = view()
    before = job("j", "fair", "a", 1, (NOW - 10_000, NOW - 6_000))
    data.jobs["j"] = JobEntry(before, (1, 0), 1)
    # The second attempt was lost while STARTING: its detail carries the first one's start.
    after = job("j", "fair", "a", 1, (NOW - 10_000, NOW - 6_000), (NOW - 10_000, NOW))
    assert charge_usage(data, {"j": after}, NOW)["fair"].shares["a"].vcpu_seconds == pytest.approx(6.0)
