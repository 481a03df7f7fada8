"""`shoal submit / describe / jobs list / wait / logs / cancel` against a fake Batch server."""

from __future__ import annotations

import json
import time

import grpc
import pytest

from shoal.cli.jobs import derive_job_name, parse_dependency
from shoal.cli.options import UsageError
from shoal.devcluster import free_port
from shoal.v1 import batch_pb2, types_pb2
from tests.unit.cli.builders import T0, describe, event, job
from tests.unit.cli.fake_batch import FakeBatch

pytestmark = pytest.mark.unit

SUCCEEDED, FAILED, RUNNING = (
    types_pb2.JOB_STATUS_SUCCEEDED,
    types_pb2.JOB_STATUS_FAILED,
    types_pb2.JOB_STATUS_RUNNING,
)


# --- submit ----------------------------------------------------------------------------------------


def test_submit_builds_the_request_and_prints_the_id(fake: FakeBatch, shoal) -> None:
    fake.on("SubmitJob", batch_pb2.SubmitJobResponse(job_id="6f1c-id", job_name="train"))
    result = shoal(
        "submit", "--addr", fake.address,
        "--queue", "gpu", "--name", "train", "--vcpus", "0.5", "--memory", "256",
        "--env", "A=1", "--env", "B=x=y",
        "--depends-on", "j-0", "--depends-on", "6f1c-parent:3",
        "--retry-attempts", "3", "--timeout", "60",
        "--", "sh", "-c", "echo --queue $A",
    )  # fmt: skip
    assert (result.code, result.out, result.err) == (0, "6f1c-id\n", "")
    (sent,) = fake.calls("SubmitJob")
    assert sent.job_name == "train" and sent.job_queue == "gpu" and sent.job_definition == ""
    overrides = sent.container_overrides
    assert list(overrides.command) == ["sh", "-c", "echo --queue $A"]
    assert [(kv.name, kv.value) for kv in overrides.environment] == [("A", "1"), ("B", "x=y")]
    assert overrides.HasField("vcpus") and overrides.vcpus == 0.5
    assert overrides.HasField("memory_mib") and overrides.memory_mib == 256
    assert [(d.job_id, d.type) for d in sent.depends_on] == [("j-0", 0), ("6f1c-parent:3", 0)]
    assert sent.retry_strategy.attempts == 3
    assert sent.timeout.attempt_duration_seconds == 60
    assert not sent.HasField("array_properties")


def test_submit_defaults(fake: FakeBatch, shoal, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOAL_ADDR", fake.address)
    fake.on("SubmitJob", batch_pb2.SubmitJobResponse(job_id="id-1", job_name="sleep"))
    assert shoal("submit", "--", "/usr/bin/sleep", "5").code == 0
    (sent,) = fake.calls("SubmitJob")
    assert sent.job_name == "sleep" and sent.job_queue == ""
    assert not sent.container_overrides.HasField("vcpus") and not sent.container_overrides.HasField(
        "memory_mib"
    )
    assert not sent.HasField("retry_strategy") and not sent.HasField("timeout")


def test_submit_from_a_definition_needs_no_command(fake: FakeBatch, shoal) -> None:
    assert shoal("submit", "--addr", fake.address, "--definition", "hello:2", "--env", "NAME=you").code == 0
    (sent,) = fake.calls("SubmitJob")
    assert (sent.job_definition, sent.job_name, list(sent.container_overrides.command)) == (
        "hello:2",
        "hello",
        [],
    )


def test_submit_json_output(fake: FakeBatch, shoal) -> None:
    fake.on("SubmitJob", batch_pb2.SubmitJobResponse(job_id="id-1", job_name="sleep"))
    result = shoal("submit", "--addr", fake.address, "--output", "json", "--", "sleep", "1")
    assert json.loads(result.out) == {"jobId": "id-1", "jobName": "sleep"}


@pytest.mark.parametrize(
    ("command", "name"),
    [
        (["sleep", "1"], "sleep"),
        (["/usr/bin/python3.11", "x.py"], "python3-11"),
        (["./run me.sh"], "run-me-sh"),
        (["...", "x"], "job"),
        (["x" * 200], "x" * 128),
    ],
)
def test_derived_job_names_follow_the_name_rules(command: list[str], name: str) -> None:
    assert derive_job_name(command) == name


@pytest.mark.parametrize(
    ("text", "job_id", "dep_type"),
    [
        ("abc", "abc", types_pb2.DEPENDENCY_TYPE_UNSPECIFIED),
        ("abc:3", "abc:3", types_pb2.DEPENDENCY_TYPE_UNSPECIFIED),
        ("abc:N_TO_N", "abc", types_pb2.DEPENDENCY_TYPE_N_TO_N),
        ("abc:3:sequential", "abc:3", types_pb2.DEPENDENCY_TYPE_SEQUENTIAL),
    ],
)
def test_parse_dependency(text: str, job_id: str, dep_type: int) -> None:
    dep = parse_dependency(text)
    assert (dep.job_id, dep.type) == (job_id, dep_type)


def test_array_and_typed_dependencies_are_sent(fake: FakeBatch, shoal) -> None:
    result = shoal(
        "submit", "--addr", fake.address, "--array-size", "4", "--array-parallelism", "2",
        "--depends-on", "abc:N_TO_N", "--depends-on", "SEQUENTIAL", "--depends-on", "xyz:after_any",
        "-p", "in=a.txt", "--", "cat", "Ref::in",
    )  # fmt: skip
    assert result.code == 0, result.err
    (request,) = [r for name, r in fake.requests if name == "SubmitJob"]
    assert (request.array_properties.size, request.array_properties.parallelism) == (4, 2)
    assert [(d.job_id, d.type) for d in request.depends_on] == [
        ("abc", types_pb2.DEPENDENCY_TYPE_N_TO_N),
        ("", types_pb2.DEPENDENCY_TYPE_SEQUENTIAL),
        ("xyz", types_pb2.DEPENDENCY_TYPE_AFTER_ANY),
    ]
    assert dict(request.parameters) == {"in": "a.txt"}


def test_parse_dependency_without_id() -> None:
    with pytest.raises(UsageError, match="missing job id"):
        parse_dependency(":N_TO_N")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--array-size", "1"], "shoal: --array-size must be at least 2, got 1\n"),
        (["--array-parallelism", "2"], "shoal: --array-parallelism needs --array-size\n"),
    ],
)
def test_unsupported_flags_are_refused_and_nothing_is_sent(
    fake: FakeBatch, shoal, flags: list[str], message: str
) -> None:
    result = shoal("submit", "--addr", fake.address, *flags, "--", "true")
    assert (result.code, result.out, result.err) == (2, "", message)
    assert fake.requests == []


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--retry-attempts", "11", "--", "true"], "--retry-attempts must be between 1 and 10, got 11"),
        (["--vcpus", "two", "--", "true"], "argument --vcpus: expected a number, got 'two'"),
        (["--memory", "0", "--", "true"], "argument --memory: expected a number > 0, got 0"),
        (["--env", "NOVALUE", "--", "true"], "argument -e/--env: expected NAME=VALUE, got 'NOVALUE'"),
        ([], "nothing to run"),
        (["sleep", "-x"], "unrecognized arguments: -x; put the command after --"),
    ],
)
def test_submit_usage_errors(fake: FakeBatch, shoal, flags: list[str], fragment: str) -> None:
    result = shoal("submit", "--addr", fake.address, *flags)
    assert result.code == 2
    assert result.err.startswith("shoal: ") and fragment in result.err and result.err.count("\n") == 1
    assert fake.requests == []


def test_submit_wait_exit_status_follows_the_job(fake: FakeBatch, shoal) -> None:
    fake.on("SubmitJob", batch_pb2.SubmitJobResponse(job_id="j-1", job_name="false"))
    fake.on("DescribeJobs", describe(job("j-1")))
    failed = job("j-1", FAILED, reason="Essential container in task exited", exit_code=1)
    fake.on("WatchJobs", [event(job("j-1", RUNNING)), event(failed)])
    result = shoal("submit", "--addr", fake.address, "--wait", "--", "false")
    assert result.code == 1
    assert result.out == "j-1\n"
    assert result.err == "j-1 FAILED (exit 1): Essential container in task exited\n"


# --- describe / jobs list ---------------------------------------------------------------------------


def test_describe_json_shape(fake: FakeBatch, shoal) -> None:
    fake.on(
        "DescribeJobs", describe(job("j-1", FAILED, reason="Essential container in task exited", exit_code=3))
    )
    result = shoal("describe", "j-1", "--addr", fake.address, "--output", "json")
    assert result.code == 0, result
    document = json.loads(result.out)
    (record,) = document["jobs"]
    assert {k: record[k] for k in ("jobId", "jobName", "jobQueue", "status", "statusReason")} == {
        "jobId": "j-1",
        "jobName": "sleep",
        "jobQueue": "default",
        "status": "FAILED",
        "statusReason": "Essential container in task exited",
    }
    assert (record["createdAt"], record["startedAt"], record["stoppedAt"]) == (T0, T0 + 1000, T0 + 2000)
    (attempt,) = record["attempts"]
    assert {k: attempt[k] for k in ("exitCode", "statusReason", "nodeId", "startedAt", "stoppedAt")} == {
        "exitCode": 3,
        "statusReason": "Essential container in task exited",
        "nodeId": "n-1",
        "startedAt": T0 + 1000,
        "stoppedAt": T0 + 2000,
    }
    assert record["container"]["command"] == ["sleep", "1"] and record["container"]["vcpus"] == 1


def test_describe_json_unset_times_are_null(fake: FakeBatch, shoal) -> None:
    fake.on("DescribeJobs", describe(job("j-1")))
    record = json.loads(shoal("describe", "j-1", "--addr", fake.address, "-o", "json").out)["jobs"][0]
    assert record["status"] == "RUNNABLE"
    assert (record["startedAt"], record["stoppedAt"], record["attempts"]) == (None, None, [])


def test_describe_table_and_missing_job(fake: FakeBatch, shoal) -> None:
    fake.on("DescribeJobs", describe(job("j-1", SUCCEEDED, exit_code=0)))
    result = shoal("describe", "j-1", "ghost", "--addr", fake.address)
    assert result.code == 3
    assert "Job ID:" in result.out and "SUCCEEDED" in result.out and "Attempts:" in result.out
    assert result.err == "shoal: job ghost not found\n"


def test_jobs_list_json_shape_and_status_filter(fake: FakeBatch, shoal) -> None:
    summary = batch_pb2.JobSummary(
        job_id="j-1",
        job_name="sleep",
        job_queue="default",
        status=types_pb2.JOB_STATUS_RUNNABLE,
        created_at=T0,
    )
    done = batch_pb2.JobSummary(job_id="j-2", status=SUCCEEDED, exit_code=0, created_at=T0, stopped_at=T0 + 5)
    fake.on("ListJobs", batch_pb2.ListJobsResponse(job_summary_list=[summary, done]))
    result = shoal(
        "jobs",
        "list",
        "--status",
        "runnable",
        "--queue",
        "default",
        "--addr",
        fake.address,
        "--output",
        "json",
    )
    assert result.code == 0, result
    rows = json.loads(result.out)["jobSummaryList"]
    assert rows[0] == {
        "jobId": "j-1",
        "jobName": "sleep",
        "jobQueue": "default",
        "status": "RUNNABLE",
        "statusReason": "",
        "createdAt": T0,
        "startedAt": None,
        "stoppedAt": None,
        "exitCode": None,
        "nodeId": "",
        "attempts": 0,
    }
    assert rows[1]["exitCode"] == 0 and rows[1]["status"] == "SUCCEEDED"
    (sent,) = fake.calls("ListJobs")
    assert (sent.job_status, sent.job_queue) == (types_pb2.JOB_STATUS_RUNNABLE, "default")


def test_jobs_list_table(fake: FakeBatch, shoal) -> None:
    now = int(time.time() * 1000)
    fake.on(
        "ListJobs",
        batch_pb2.ListJobsResponse(
            job_summary_list=[
                batch_pb2.JobSummary(
                    job_id="j-1", job_name="sleep", job_queue="default", status=RUNNING, created_at=now - 3000
                ),
                batch_pb2.JobSummary(
                    job_id="j-22",
                    job_name="x",
                    job_queue="q",
                    status=FAILED,
                    exit_code=1,
                    status_reason="boom",
                ),
            ]
        ),
    )
    lines = shoal("jobs", "list", "--addr", fake.address).out.splitlines()
    assert lines[0].split() == ["JOB", "ID", "NAME", "QUEUE", "STATUS", "EXIT", "CREATED", "REASON"]
    assert lines[1].split() == ["j-1", "sleep", "default", "RUNNING", "3s"]
    assert lines[2].split() == ["j-22", "x", "q", "FAILED", "1", "boom"]
    assert lines[0].index("STATUS") == lines[1].index("RUNNING") == lines[2].index("FAILED")


def test_jobs_list_unknown_status_is_a_usage_error(fake: FakeBatch, shoal) -> None:
    result = shoal("jobs", "list", "--status", "done", "--addr", fake.address)
    assert result.code == 2 and "unknown status 'done'" in result.err and fake.requests == []


# --- errors ----------------------------------------------------------------------------------------


def test_server_refusal_is_one_line_and_exit_3(fake: FakeBatch, shoal) -> None:
    fake.fail("CancelJob", grpc.StatusCode.NOT_FOUND, "job x not found")
    result = shoal("cancel", "x", "--reason", "no longer needed", "--addr", fake.address)
    assert (result.code, result.out, result.err) == (3, "", "shoal: job x not found\n")
    assert fake.calls("CancelJob")[0].reason == "no longer needed"


def test_unreachable_controller_is_exit_4(shoal) -> None:
    address = f"127.0.0.1:{free_port()}"
    result = shoal("jobs", "list", "--addr", address)
    assert result.code == 4
    assert result.err == f"shoal: cannot reach a controller at {address} (connection refused)\n"


def test_leader_redirect_is_followed_by_the_cli(fake: FakeBatch, fake2: FakeBatch, shoal) -> None:
    fake.fail("TerminateJob", grpc.StatusCode.UNAVAILABLE, "not the leader", leader=fake2.address)
    result = shoal("terminate", "j-1", "--reason", "stop", "--addr", fake.address)
    assert result.code == 0, result
    assert fake2.calls("TerminateJob")[0].job_id == "j-1"


def test_interrupt_exits_130_quietly(fake: FakeBatch, shoal, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr("shoal.cli.jobs.run_list", interrupted)
    result = shoal("jobs", "list", "--addr", fake.address)
    assert (result.code, result.err) == (130, "")


# --- wait ------------------------------------------------------------------------------------------


def test_wait_all_succeeded_exits_0(fake: FakeBatch, shoal) -> None:
    fake.on("DescribeJobs", describe(job("a"), job("b")))
    fake.on("WatchJobs", [event(job("a", SUCCEEDED, exit_code=0)), event(job("b", SUCCEEDED, exit_code=0))])
    result = shoal("wait", "a", "b", "--addr", fake.address)
    assert result.code == 0, result
    assert result.out.splitlines() == ["a SUCCEEDED (exit 0)", "b SUCCEEDED (exit 0)"]


def test_wait_any_failed_exits_1(fake: FakeBatch, shoal) -> None:
    fake.on("DescribeJobs", describe(job("a"), job("b")))
    fake.on("WatchJobs", [event(job("a", SUCCEEDED)), event(job("b", FAILED, reason="Dependent job failed"))])
    result = shoal("wait", "a", "b", "--addr", fake.address, "--output", "json")
    assert result.code == 1
    assert [j["status"] for j in json.loads(result.out)["jobs"]] == ["SUCCEEDED", "FAILED"]


def test_wait_timeout_exits_2(fake: FakeBatch, shoal) -> None:
    fake.on("DescribeJobs", describe(job("a", RUNNING)))

    def watch(request: batch_pb2.WatchJobsRequest, context: grpc.ServicerContext):
        yield event(job("a", RUNNING))
        while context.is_active():
            time.sleep(0.02)

    fake.on("WatchJobs", watch)
    result = shoal("wait", "a", "--timeout", "0.3", "--addr", fake.address)
    assert result.code == 2
    assert result.err == "shoal: timed out after 0.3s waiting for 1 of 1 job(s): a RUNNING\n"


def test_wait_unknown_job_exits_3(fake: FakeBatch, shoal) -> None:
    result = shoal("wait", "ghost", "--addr", fake.address)
    assert (result.code, result.err) == (3, "shoal: job ghost not found\n")


# --- logs ------------------------------------------------------------------------------------------


def test_logs_writes_raw_bytes(fake: FakeBatch, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    from shoal.cli.main import main

    fake.on("GetJobLogs", [batch_pb2.LogChunk(data=b"line 1\n"), batch_pb2.LogChunk(data=b"\xff\x00 raw\n")])
    code = main(["logs", "j-1", "--attempt", "2", "--follow", "--addr", fake.address])
    captured = capsysbinary.readouterr()
    assert (code, captured.out, captured.err) == (0, b"line 1\n\xff\x00 raw\n", b"")
    (sent,) = fake.calls("GetJobLogs")
    assert (sent.job_id, sent.attempt, sent.follow) == ("j-1", 2, True)
