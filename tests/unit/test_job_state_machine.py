"""The job state machine on plain data (controller/domain/jobs.py)."""

from __future__ import annotations

import pytest

from controller.domain import jobs as J
from shoal.v1 import agent_pb2, types_pb2

pytestmark = pytest.mark.unit

NOW = 1_700_000_000_000


def job(status: int = J.RUNNABLE, *, attempts: int = 1, deps: tuple[str, ...] = (), rules=(), interruption_attempts: int = 0) -> types_pb2.Job:  # noqa: ANN001
    j = types_pb2.Job(job_id="11111111-1111-4111-8111-111111111111", job_name="j", job_queue="q", status=status)
    j.retry_strategy.attempts = attempts
    j.retry_strategy.interruption_attempts = interruption_attempts
    for rule in rules:
        j.retry_strategy.evaluate_on_exit.add(**rule)
    for d in deps:
        j.depends_on.add(job_id=d)
    return j


def started(j: types_pb2.Job, node: str = "n1") -> types_pb2.Job:
    return J.mark_running(J.start_attempt(j, node_id=node, compute_environment="ce", epoch=7), NOW)


def finished(exit_code: int | None, j: types_pb2.Job, status_reason: str = "", reason: str = "") -> agent_pb2.AttemptFinished:
    msg = agent_pb2.AttemptFinished(token=j.current, status_reason=status_reason, reason=reason, stopped_at=NOW + 5)
    if exit_code is not None:
        msg.exit_code = exit_code
    return msg


def test_start_attempt_makes_a_fresh_token() -> None:
    j = J.start_attempt(job(), node_id="n1", compute_environment="ce", epoch=7)
    assert (j.status, j.node_id, j.compute_environment) == (J.STARTING, "n1", "ce")
    assert (j.current.job_id, j.current.attempt, j.current.epoch) == (j.job_id, 1, 7)


def test_transitions_never_mutate_their_input() -> None:
    original = job()
    snapshot = original.SerializeToString()
    s = started(original)
    J.finish_attempt(s, finished(0, s), now_ms=NOW)
    J.fail(original, "x", NOW)
    assert original.SerializeToString() == snapshot


def test_exit_zero_succeeds() -> None:
    j = started(job())
    done = J.finish_attempt(j, finished(0, j), now_ms=NOW + 9)
    assert (done.status, done.status_reason, done.stopped_at) == (J.SUCCEEDED, "", NOW + 9)
    assert [(a.attempt, a.exit_code, a.node_id) for a in done.attempts] == [(1, 0, "n1")]
    assert not done.HasField("current") and done.node_id == ""


def test_nonzero_exit_fails_with_default_reason_and_exact_code() -> None:
    j = started(job())
    done = J.finish_attempt(j, finished(3, j), now_ms=NOW)
    assert done.status == J.FAILED
    assert done.status_reason == J.REASON_EXITED
    assert done.attempts[0].exit_code == 3


def test_retry_while_attempts_remain_then_fail() -> None:
    j = job(attempts=2)
    first = started(j)
    after1 = J.finish_attempt(first, finished(1, first), now_ms=NOW)
    assert after1.status == J.RUNNABLE and after1.status_reason == J.REASON_EXITED
    second = started(after1)
    assert second.current.attempt == 2
    after2 = J.finish_attempt(second, finished(1, second), now_ms=NOW)
    assert after2.status == J.FAILED
    assert [a.attempt for a in after2.attempts] == [1, 2]


def test_interruption_retried_but_own_failure_is_not() -> None:
    rules = [
        {"on_status_reason": "Host*", "action": types_pb2.RETRY_ACTION_RETRY},
        {"on_exit_code": "*", "action": types_pb2.RETRY_ACTION_EXIT},
    ]
    j = started(job(attempts=3, rules=rules))
    lost = J.finish_attempt(j, finished(None, j, "Host lost: agent disconnected", "HostLost"), now_ms=NOW, interrupted=True)
    assert lost.status == J.RUNNABLE and lost.attempts[0].interrupted
    again = started(lost)
    failed = J.finish_attempt(again, finished(1, again), now_ms=NOW)
    assert failed.status == J.FAILED and len(failed.attempts) == 2


def test_terminated_job_is_never_retried() -> None:
    j = started(job(attempts=5))
    j.terminate_reason = "stop it"
    done = J.finish_attempt(j, finished(143, j, "stop it"), now_ms=NOW)
    assert (done.status, done.status_reason) == (J.FAILED, "stop it")


def test_is_current_rejects_other_attempts_and_inactive_jobs() -> None:
    j = started(job(attempts=3))
    assert J.is_current(j, j.current)
    old = types_pb2.AttemptToken(job_id=j.job_id, attempt=0, epoch=7)
    assert not J.is_current(j, old)
    done = J.finish_attempt(j, finished(0, j), now_ms=NOW)
    assert not J.is_current(done, j.current)


@pytest.mark.parametrize(
    ("dep_status", "expected", "reason"),
    [
        ({}, J.PENDING, "Waiting on d1"),
        ({"d1": J.RUNNING}, J.PENDING, "Waiting on d1"),
        ({"d1": J.SUCCEEDED}, J.RUNNABLE, ""),
        ({"d1": J.FAILED}, J.FAILED, "Dependent job failed"),
    ],
)
def test_admit_by_dependency_state(dep_status: dict[str, int], expected: int, reason: str) -> None:
    admitted = J.admit(job(J.SUBMITTED, deps=("d1",)), dep_status, NOW)
    assert (admitted.status, admitted.status_reason) == (expected, reason)


def test_admit_without_dependencies_is_runnable() -> None:
    assert J.admit(job(J.SUBMITTED), {}, NOW).status == J.RUNNABLE


def test_attempt_environment_injects_shoal_and_aws_variables() -> None:
    j = job()
    j.container.environment.add(name="MINE", value="1")
    j.container.environment.add(name="SHOAL_JOB_ID", value="spoofed")
    s = J.start_attempt(j, node_id="n1", compute_environment="ce", epoch=1)
    env = {kv.name: kv.value for kv in J.attempt_environment(s, node_hostname="host1")}
    assert env["MINE"] == "1"
    assert env["SHOAL_JOB_ID"] == env["AWS_BATCH_JOB_ID"] == j.job_id
    assert env["SHOAL_JOB_ATTEMPT"] == "1"
    assert env["AWS_BATCH_JQ_NAME"] == "q" and env["SHOAL_CE_NAME"] == "ce"
    assert env["SHOAL_NUM_NODES"] == "1" and env["SHOAL_MAIN_NODE_ADDR"] == "host1"
