"""`shoal submit --from-file`: the line format, one SubmitJobs call per 1,000 lines, and a bad
line refused with its number before anything is sent (against the fake Batch server)."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest

from shoal.v1 import batch_pb2, types_pb2
from tests.unit.cli.fake_batch import FakeBatch, abort

pytestmark = pytest.mark.unit


def _answer_ids(request: batch_pb2.SubmitJobsRequest, context: grpc.ServicerContext) -> batch_pb2.SubmitJobsResponse:
    return batch_pb2.SubmitJobsResponse(
        jobs=[batch_pb2.SubmitJobResponse(job_id=f"id-{j.job_name}", job_name=j.job_name) for j in request.jobs]
    )


def _write(tmp_path: Path, lines: list[str]) -> str:
    path = tmp_path / "jobs.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_valid_lines_go_in_one_submit_jobs_call_in_line_order(fake: FakeBatch, shoal, tmp_path: Path) -> None:
    fake.on("SubmitJobs", _answer_ids)
    path = _write(tmp_path, [
        '{"jobName": "a", "containerOverrides": {"command": ["echo", "a"]}}',
        "# a comment, then a blank line",
        "",
        '{"containerOverrides": {"command": ["/usr/bin/sleep", "1"], "vcpus": 0.5, "memory": 128,'
        ' "environment": [{"name": "K", "value": "v"}]}, "jobQueue": "gpu"}',
        '{"jobName": "c", "jobDefinition": "hello:2", "dependsOn": [{"jobId": "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"}],'
        ' "arrayProperties": {"size": 3}, "retryStrategy": {"attempts": 3, "evaluateOnExit":'
        ' [{"onStatusReason": "Host*", "action": "retry"}]}, "timeout": {"attemptDurationSeconds": 60},'
        ' "parameters": {"in": "a.txt"}, "tags": {"team": "x"}}',
    ])  # fmt: skip
    result = shoal("submit", "--addr", fake.address, "--queue", "default-q", "--from-file", path)
    assert (result.code, result.out, result.err) == (0, "id-a\nid-sleep\nid-c\n", "")
    (call,) = fake.calls("SubmitJobs")
    assert fake.calls("SubmitJob") == []
    a, sleep, c = call.jobs
    assert (a.job_name, list(a.container_overrides.command), a.job_queue) == ("a", ["echo", "a"], "default-q")
    assert (sleep.job_name, sleep.job_queue) == ("sleep", "gpu")
    assert (sleep.container_overrides.vcpus, sleep.container_overrides.memory_mib) == (0.5, 128)
    assert [(kv.name, kv.value) for kv in sleep.container_overrides.environment] == [("K", "v")]
    assert (c.job_definition, c.array_properties.size, c.timeout.attempt_duration_seconds) == ("hello:2", 3, 60)
    assert c.retry_strategy.evaluate_on_exit[0].action == types_pb2.RETRY_ACTION_RETRY
    assert [d.job_id for d in c.depends_on] == ["6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"] and dict(c.tags) == {"team": "x"}


def test_more_than_1000_lines_make_one_call_per_1000(fake: FakeBatch, shoal, tmp_path: Path) -> None:
    fake.on("SubmitJobs", _answer_ids)
    path = _write(tmp_path, [json.dumps({"jobName": f"j{i}", "containerOverrides": {"command": ["true"]}}) for i in range(2500)])
    result = shoal("submit", "--addr", fake.address, "-f", path, "--output", "json")
    assert result.code == 0, result.err
    assert [len(c.jobs) for c in fake.calls("SubmitJobs")] == [1000, 1000, 500]
    assert [j["jobId"] for j in json.loads(result.out)["jobs"]] == [f"id-j{i}" for i in range(2500)]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ('{"jobName": "b c", "containerOverrides": {"command": ["true"]}}', ":3: job_name: must be letters"),
        ('{"jobNme": "b", "containerOverrides": {"command": ["true"]}}', ':3: unknown field "jobNme"'),
        ('{"jobName": "b", "containerOverrides": {"command": ["true"]', ":3: not valid JSON"),
        ('["true"]', ":3: expected a JSON object, got list"),
        ('{"jobName": "b"}', ":3: container_overrides.command: is required"),
        ('{"containerOverrides": {"command": ["x"], "vcpus": "two"}}', ":3: Failed to parse containerOverrides"),
        ('{"containerOverrides": {"command": ["x"]}, "dependsOn": [{"jobId": "a", "type": "N_TO_Q"}]}', ":3: "),
        ('{"containerOverrides": {"command": ["x"]}, "retryStrategy": {"attempts": 11}}', ":3: retry_strategy.attempts"),
    ],
)
def test_a_bad_line_is_refused_with_its_number_and_nothing_is_sent(
    fake: FakeBatch, shoal, tmp_path: Path, bad: str, message: str
) -> None:
    good = '{"containerOverrides": {"command": ["true"]}}'
    path = _write(tmp_path, [good, good, bad, *[good] * 1500])
    result = shoal("submit", "--addr", fake.address, "--from-file", path)
    assert result.code == 2 and result.out == ""
    assert result.err.startswith(f"shoal: {path}{message}") and result.err.endswith("(nothing was submitted)\n"), result.err
    assert result.err.count("\n") == 1
    assert fake.requests == []


def test_a_server_refusal_names_the_line(fake: FakeBatch, shoal, tmp_path: Path) -> None:
    def refuse(request: batch_pb2.SubmitJobsRequest, context: grpc.ServicerContext) -> None:
        abort(context, grpc.StatusCode.INVALID_ARGUMENT, "jobs[1].job_queue: job queue 'nope' does not exist")

    fake.on("SubmitJobs", refuse)
    good, other = '{"containerOverrides": {"command": ["true"]}}', '{"jobQueue": "nope", "containerOverrides": {"command": ["true"]}}'
    path = _write(tmp_path, ["# header", good, other])
    result = shoal("submit", "--addr", fake.address, "--from-file", path)
    assert (result.code, result.out) == (3, "")
    assert result.err == f"shoal: {path}:3: job_queue: job queue 'nope' does not exist\n"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--from-file", "/nonexistent/jobs.jsonl"], "cannot read /nonexistent/jobs.jsonl"),
        (["--from-file", "EMPTY"], "has no jobs"),
        (["--from-file", "EMPTY", "--vcpus", "2"], "--vcpus does not apply"),
        (["--from-file", "EMPTY", "--", "true"], "give no command after --"),
    ],
)
def test_from_file_usage_errors(fake: FakeBatch, shoal, tmp_path: Path, args: list[str], fragment: str) -> None:
    empty = _write(tmp_path, ["# nothing here"])
    result = shoal("submit", "--addr", fake.address, *[empty if a == "EMPTY" else a for a in args])
    assert result.code == 2 and fragment in result.err and result.err.count("\n") == 1, result.err
    assert fake.requests == []


def test_stdin_is_read_for_dash(fake: FakeBatch, shoal, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    fake.on("SubmitJobs", _answer_ids)
    monkeypatch.setattr("sys.stdin", io.StringIO('{"jobName": "x", "containerOverrides": {"command": ["true"]}}\n'))
    result = shoal("submit", "--addr", fake.address, "--from-file", "-")
    assert (result.code, result.out) == (0, "id-x\n")


def test_jobs_list_quiet_prints_ids_one_per_line(fake: FakeBatch, shoal) -> None:
    fake.on("ListJobs", batch_pb2.ListJobsResponse(job_summary_list=[
        batch_pb2.JobSummary(job_id="a", job_name="x"), batch_pb2.JobSummary(job_id="b", job_name="y"),
    ]))  # fmt: skip
    result = shoal("jobs", "list", "--addr", fake.address, "--quiet", "--status", "runnable")
    assert (result.code, result.out, result.err) == (0, "a\nb\n", "")
    (request,) = fake.calls("ListJobs")
    assert request.job_status == types_pb2.JOB_STATUS_RUNNABLE


def test_cancel_takes_several_ids(fake: FakeBatch, shoal) -> None:
    result = shoal("cancel", "--addr", fake.address, "a", "b", "a", "--reason", "not needed")
    assert result.code == 0, result.err
    assert [(r.job_id, r.reason) for r in fake.calls("CancelJob")] == [("a", "not needed"), ("b", "not needed")]
