"""Array jobs, typed dependencies and parameters, through a real cluster."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from shoal import Client, InvalidArgument
from shoal.v1 import batch_pb2, types_pb2

from .conftest import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

S = types_pb2.JobStatus
D = types_pb2.DependencyType


def stamp(path: Path) -> str:
    """Shell that records '<index> start <ns>' ... '<index> stop <ns>' in `path` (one O_APPEND line each)."""
    return (
        f'echo "$AWS_BATCH_JOB_ARRAY_INDEX start $(date +%s%N)" >> {path}; '
        f'sleep 0.2; echo "$SHOAL_JOB_ARRAY_INDEX stop $(date +%s%N)" >> {path}'
    )


def read_stamps(path: Path) -> dict[int, tuple[int, int]]:
    seen: dict[int, dict[str, int]] = {}
    for line in path.read_text().splitlines():
        index, what, ns = line.split()
        assert what not in seen.setdefault(int(index), {}), f"index {index} {what} twice"
        seen[int(index)][what] = int(ns)
    return {i: (v["start"], v["stop"]) for i, v in seen.items()}


def test_array_of_1000_runs_every_index_exactly_once(client: Client, tmp_path: Path) -> None:
    out = tmp_path / "indexes"
    parent = client.submit_job(
        "wide", command=["sh", "-c", f'echo "$AWS_BATCH_JOB_ARRAY_INDEX $SHOAL_JOB_ID" >> {out}'],
        array_size=1000, vcpus=0.125, memory_mib=16,
    ).job_id  # fmt: skip
    final = client.wait([parent], timeout=200)[parent]
    assert final.status == S.JOB_STATUS_SUCCEEDED, final.status_reason
    assert dict(final.array_status_summary) == {"SUCCEEDED": 1000}
    lines = [line.split() for line in out.read_text().splitlines()]
    assert Counter(int(i) for i, _ in lines) == Counter(range(1000))
    assert {job_id for _, job_id in lines} == {f"{parent}:{i}" for i in range(1000)}
    children = list(client.list_jobs(array_job_id=parent, page_size=1000))
    assert sorted(c.job_id for c in children) == sorted(f"{parent}:{i}" for i in range(1000))


def test_n_to_n_and_sequential_order_from_the_jobs_own_timestamps(client: Client, tmp_path: Path) -> None:
    a_log, b_log, c_log = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    a = client.submit_job("a", command=["sh", "-c", stamp(a_log)], array_size=4, vcpus=0.25).job_id
    b = client.submit_job(
        "b", command=["sh", "-c", stamp(b_log)], array_size=4, vcpus=0.25,
        depends_on=[types_pb2.JobDependency(job_id=a, type=D.DEPENDENCY_TYPE_N_TO_N)],
    ).job_id  # fmt: skip
    c = client.submit_job(
        "c", command=["sh", "-c", stamp(c_log)], array_size=4, vcpus=0.25,
        depends_on=[types_pb2.JobDependency(type=D.DEPENDENCY_TYPE_SEQUENTIAL)],
    ).job_id  # fmt: skip
    final = client.wait([a, b, c], timeout=120)
    assert {j.status for j in final.values()} == {S.JOB_STATUS_SUCCEEDED}
    a_t, b_t, c_t = read_stamps(a_log), read_stamps(b_log), read_stamps(c_log)
    assert sorted(a_t) == sorted(b_t) == sorted(c_t) == [0, 1, 2, 3]
    for i in range(4):
        assert b_t[i][0] >= a_t[i][1], f"b:{i} started before a:{i} stopped"
    for i in range(1, 4):
        assert c_t[i][0] >= c_t[i - 1][1], f"c:{i} started before c:{i - 1} stopped"


def test_n_to_n_needs_an_array_of_the_same_size(client: Client) -> None:
    a = client.submit_job("a", command=["true"], array_size=3).job_id
    with pytest.raises(InvalidArgument, match="same size"):
        client.submit_job("b", command=["true"], array_size=4,
                          depends_on=[types_pb2.JobDependency(job_id=a, type=D.DEPENDENCY_TYPE_N_TO_N)])  # fmt: skip


def test_failed_dependency_fails_plain_dependents_while_after_any_runs(client: Client) -> None:
    bad = client.submit_job("bad", command=["false"]).job_id
    plain = client.submit_job("plain", command=["true"], depends_on=[bad]).job_id
    anyway = client.submit_job(
        "cleanup", command=["true"], depends_on=[types_pb2.JobDependency(job_id=bad, type=D.DEPENDENCY_TYPE_AFTER_ANY)]
    ).job_id
    on_fail = client.submit_job(
        "alert", command=["true"], depends_on=[types_pb2.JobDependency(job_id=bad, type=D.DEPENDENCY_TYPE_AFTER_NOT_OK)]
    ).job_id
    good = client.submit_job("good", command=["true"]).job_id
    not_needed = client.submit_job(
        "not-needed", command=["true"], depends_on=[types_pb2.JobDependency(job_id=good, type=D.DEPENDENCY_TYPE_AFTER_NOT_OK)]
    ).job_id
    final = client.wait([bad, plain, anyway, on_fail, good, not_needed], timeout=60)
    assert (final[plain].status, final[plain].status_reason) == (S.JOB_STATUS_FAILED, "Dependent job failed")
    assert not final[plain].attempts
    assert final[anyway].status == S.JOB_STATUS_SUCCEEDED
    assert final[on_fail].status == S.JOB_STATUS_SUCCEEDED
    assert final[not_needed].status == S.JOB_STATUS_FAILED and not final[not_needed].attempts


def test_array_child_failure_fails_the_parent_and_its_dependents(client: Client) -> None:
    parent = client.submit_job(
        "some-fail", command=["sh", "-c", 'test "$AWS_BATCH_JOB_ARRAY_INDEX" != 2'], array_size=4
    ).job_id
    after = client.submit_job("after", command=["true"], depends_on=[parent]).job_id
    final = client.wait([parent, after], timeout=60)
    assert final[parent].status == S.JOB_STATUS_FAILED
    assert dict(final[parent].array_status_summary) == {"SUCCEEDED": 3, "FAILED": 1}
    assert "1 of 4" in final[parent].status_reason
    assert final[after].status_reason == "Dependent job failed"


def test_array_parallelism_limits_concurrency(client: Client, tmp_path: Path) -> None:
    log = tmp_path / "p"
    parent = client.submit_job("throttled", command=["sh", "-c", stamp(log)], array_size=6,
                               array_parallelism=2, vcpus=0.25).job_id  # fmt: skip
    assert client.wait([parent], timeout=120)[parent].status == S.JOB_STATUS_SUCCEEDED
    events = sorted(
        (t, 1 if what == "start" else -1) for i, (start, stop) in read_stamps(log).items() for what, t in (("start", start), ("stop", stop))
    )
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    assert peak <= 2


def test_cancel_an_array_cancels_its_waiting_children(client: Client, tmp_path: Path) -> None:
    gate = tmp_path / "go"
    parent = client.submit_job("seq", command=["sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.05; done"],
                               array_size=5, depends_on=[types_pb2.JobDependency(type=D.DEPENDENCY_TYPE_SEQUENTIAL)]).job_id  # fmt: skip
    # The leader writes the children in its next pass: until then they are not there at all.
    eventually(lambda: [j.status for j in client.describe_jobs([f"{parent}:0"])] == [S.JOB_STATUS_RUNNING],
               what="child 0 RUNNING")  # fmt: skip
    client.cancel_job(parent, "Cancelled by user")
    eventually(lambda: client.describe_job(f"{parent}:4").status == S.JOB_STATUS_FAILED, what="children cancelled")
    gate.touch()
    final = client.wait([parent], timeout=60)[parent]
    assert final.status == S.JOB_STATUS_FAILED
    assert dict(final.array_status_summary) == {"SUCCEEDED": 1, "FAILED": 4}


def test_parameters_fill_ref_placeholders(client: Client, tmp_path: Path) -> None:
    out = tmp_path / "param"
    client.register_job_definition(
        "greet",
        command=["sh", "-c", f"echo Ref::greeting Ref::name > {out}"],
        parameters={"greeting": "hello", "name": "world"},
    )
    job = client.submit_job(batch_pb2.SubmitJobRequest(job_name="g", job_definition="greet", parameters={"name": "shoal"})).job_id
    assert client.wait([job], timeout=60)[job].status == S.JOB_STATUS_SUCCEEDED
    assert out.read_text().strip() == "hello shoal"
