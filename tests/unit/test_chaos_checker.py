"""The chaos suite's invariant checker, on hand-made journals and records: it must catch what
it claims to catch (and excuse only what it claims to excuse)."""

from __future__ import annotations

import pytest

from shoal.v1 import types_pb2
from tests.chaos.invariants import Freeze, Notice, find_violations, glob, parse_journal
from tests.chaos.workload import HOST_RETRY_ONLY, JobSpec

pytestmark = pytest.mark.unit

S = types_pb2.JobStatus
SUCCEEDED, FAILED, RUNNING = S.JOB_STATUS_SUCCEEDED, S.JOB_STATUS_FAILED, S.JOB_STATUS_RUNNING
HOST_LOST = "Host lost: agent disconnected"
EXITED = "Essential container in task exited"


def run(job: str, attempt: int, node: str, start: float, end: float, *, code: int | None = 0,
        pid: int = 0, frozen: tuple[float, float] | None = None, term: float | None = None) -> str:  # fmt: skip
    """Journal lines of one attempt: start, a beat every 0.1 s (none while frozen), stop."""
    pid = pid or 1000 + attempt * 7 + len(job)
    lines = [f"start {job} {attempt} {node} {start:.3f} 0 {pid}"]
    t = start + 0.1
    while t < end:
        if frozen is None or not (frozen[0] <= t < frozen[1]):
            lines.append(f"beat {job} {attempt} {node} {t:.3f} 0 {pid}")
        t += 0.1
    if term is not None:
        lines.append(f"term {job} {attempt} {node} {term:.3f} 0 {pid}")
    last = f"{end:.3f} 0 {pid}"
    lines.append(
        f"stop {job} {attempt} {node} {last} {code}"
        if code is not None
        else f"beat {job} {attempt} {node} {last}"
    )
    return "\n".join(lines) + "\n"


def detail(
    attempt: int, node: str, *, exit_code: int | None = 0, reason: str = "", interrupted: bool = False
) -> types_pb2.AttemptDetail:
    d = types_pb2.AttemptDetail(attempt=attempt, node_id=node, status_reason=reason, interrupted=interrupted)
    if exit_code is not None:
        d.exit_code = exit_code
    return d


def job(job_id: str, status: int, *attempts: types_pb2.AttemptDetail, reason: str = "") -> types_pb2.Job:
    if not reason and status == FAILED and attempts:
        reason = attempts[-1].status_reason
    return types_pb2.Job(job_id=job_id, status=status, attempts=list(attempts), status_reason=reason)


def check(specs: dict[str, JobSpec], records: list[types_pb2.Job], journal: str, **kw) -> list[str]:  # noqa: ANN003
    return find_violations(specs, {j.job_id: j for j in records}, parse_journal(journal), **kw)


ONE = {"j1": JobSpec("one", 1.0, attempts=3)}


# ---- the journal ------------------------------------------------------------------------------


def test_journal_groups_lines_into_runs() -> None:
    text = run("j1", 1, "agent-1", 10.0, 10.35, code=None) + run(
        "j1", 2, "agent-2", 11.0, 11.2, code=3, term=11.1
    )
    journal = parse_journal(text + "\n")
    first, second = journal.of("j1")
    assert (first.attempt, first.node, first.start, first.exit_code) == (1, "agent-1", 10.0, None)
    assert first.last == pytest.approx(10.35)
    assert (second.exit_code, second.terms) == (3, [pytest.approx(11.1)])
    assert journal.problems == []


def test_journal_reports_malformed_and_orphan_lines() -> None:
    journal = parse_journal("garbage\nbeat j1 1 agent-1 1.0 0 77\nstart j1 1 agent-1 x 0 77\n")
    assert len(journal.problems) == 3


def test_frozen_run_shows_a_gap() -> None:
    journal = parse_journal(run("j1", 1, "a", 0.0, 10.0, frozen=(2.0, 8.0)))
    ((a, b),) = journal.of("j1")[0].gaps()
    assert a == pytest.approx(1.9, abs=0.11) and b == pytest.approx(8.0, abs=0.11)


# ---- lost, final, committed once --------------------------------------------------------------


def test_a_clean_job_passes() -> None:
    assert check(ONE, [job("j1", SUCCEEDED, detail(1, "a"))], run("j1", 1, "a", 0, 1)) == []


def test_a_job_the_controller_does_not_know_is_lost() -> None:
    (violation,) = check(ONE, [], "")
    assert "is lost" in violation


def test_a_job_that_is_not_final() -> None:
    (violation,) = check(ONE, [job("j1", RUNNING)], run("j1", 1, "a", 0, 1))
    assert "not final" in violation


def test_an_attempt_started_twice() -> None:
    journal = run("j1", 1, "a", 0, 1, pid=11) + run("j1", 1, "b", 2, 3, pid=12)
    violations = check(ONE, [job("j1", SUCCEEDED, detail(1, "a"))], journal)
    assert any("started 2 times" in v for v in violations)


def test_a_run_missing_from_the_record() -> None:
    journal = run("j1", 1, "a", 0, 1) + run("j1", 2, "a", 2, 3)
    violations = check(ONE, [job("j1", SUCCEEDED, detail(1, "a"))], journal)
    assert any("attempt 2 ran on a but is not in the record" in v for v in violations)


def test_gaps_in_attempt_numbers() -> None:
    violations = check(ONE, [job("j1", SUCCEEDED, detail(2, "a"))], run("j1", 2, "a", 0, 1))
    assert any("not numbered 1..n" in v for v in violations)


def test_a_success_followed_by_another_attempt_is_a_double_commit() -> None:
    journal = run("j1", 1, "a", 0, 1) + run("j1", 2, "b", 2, 3)
    violations = check(ONE, [job("j1", SUCCEEDED, detail(1, "a"), detail(2, "b"))], journal)
    assert any("committed twice" in v for v in violations)


def test_a_recorded_exit_code_must_be_the_real_one() -> None:
    violations = check(ONE, [job("j1", SUCCEEDED, detail(1, "a"))], run("j1", 1, "a", 0, 1, code=2))
    assert any("the process exited 2" in v for v in violations)


def test_a_result_recorded_for_an_attempt_that_never_ran() -> None:
    violations = check(ONE, [job("j1", SUCCEEDED, detail(1, "a"))], "")
    assert any("never ran" in v for v in violations)


def test_an_interrupted_attempt_never_carries_a_result() -> None:
    records = [
        job("j1", SUCCEEDED, detail(1, "a", exit_code=0, reason=HOST_LOST, interrupted=True), detail(2, "b"))
    ]
    journal = run("j1", 1, "a", 0, 1) + run("j1", 2, "b", 2, 3)
    violations = check(ONE, records, journal)
    assert any("yet its exit code 0 was recorded" in v for v in violations)


def test_an_attempt_recorded_on_another_node() -> None:
    violations = check(ONE, [job("j1", SUCCEEDED, detail(1, "b"))], run("j1", 1, "a", 0, 1))
    assert any("recorded on b but ran on a" in v for v in violations)


# ---- the retry strategy -----------------------------------------------------------------------

RULED = {"j1": JobSpec("ruled", 1.0, attempts=3, rules=HOST_RETRY_ONLY, exit_codes=(3,))}


def test_host_rule_retries_a_lost_host() -> None:
    records = [job("j1", FAILED, detail(1, "a", exit_code=None, reason=HOST_LOST, interrupted=True),
                   detail(2, "b", exit_code=3, reason=EXITED))]  # fmt: skip
    journal = run("j1", 1, "a", 0, 0.5, code=None) + run("j1", 2, "b", 2, 3, code=3)
    assert check(RULED, records, journal) == []


def test_failing_after_a_lost_host_when_the_rule_says_retry() -> None:
    records = [job("j1", FAILED, detail(1, "a", exit_code=None, reason=HOST_LOST, interrupted=True))]
    violations = check(RULED, records, run("j1", 1, "a", 0, 0.5, code=None))
    assert any("its retry strategy retries it" in v for v in violations)


def test_retrying_an_own_failure_when_the_rule_says_exit() -> None:
    records = [
        job(
            "j1",
            FAILED,
            detail(1, "a", exit_code=3, reason=EXITED),
            detail(2, "a", exit_code=3, reason=EXITED),
        )
    ]
    journal = run("j1", 1, "a", 0, 1, code=3) + run("j1", 2, "a", 2, 3, code=3)
    violations = check(RULED, records, journal)
    assert any("does not retry it" in v for v in violations)


def test_attempts_run_out() -> None:
    spec = {"j1": JobSpec("two", 1.0, attempts=2, exit_codes=(1,))}
    records = [
        job(
            "j1",
            FAILED,
            detail(1, "a", exit_code=1, reason=EXITED),
            detail(2, "a", exit_code=1, reason=EXITED),
        )
    ]
    journal = run("j1", 1, "a", 0, 1, code=1) + run("j1", 2, "a", 2, 3, code=1)
    assert check(spec, records, journal) == []
    records[0].attempts.add(attempt=3, node_id="a", exit_code=1, status_reason=EXITED)
    journal += run("j1", 3, "a", 4, 5, code=1)
    assert any("does not retry it" in v for v in check(spec, records, journal))


def test_the_interruption_budget_does_not_spend_attempts() -> None:
    spec = {"j1": JobSpec("budget", 1.0, attempts=1, interruption_attempts=1)}
    records = [
        job(
            "j1",
            SUCCEEDED,
            detail(1, "a", exit_code=None, reason=HOST_LOST, interrupted=True),
            detail(2, "b"),
        )
    ]
    journal = run("j1", 1, "a", 0, 0.5, code=None) + run("j1", 2, "b", 2, 3)
    assert check(spec, records, journal) == []
    without_budget = {"j1": JobSpec("budget", 1.0, attempts=1)}
    assert any("does not retry it" in v for v in check(without_budget, records, journal))


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [("Host*", "Host lost: agent disconnected", True), ("Host*", "Agent fenced", False), ("*", "", True),
     ("*", "137", True), ("1?7", "137", True), ("1?7", "17", False), ("a*b*c", "axxbyyc", True),
     ("a*b*c", "axxbyy", False), ("", "", True), ("3", "30", False)],
)  # fmt: skip
def test_glob(pattern: str, value: str, matches: bool) -> None:
    assert glob(pattern, value) is matches


# ---- overlaps ---------------------------------------------------------------------------------

LOST_1 = detail(1, "a", exit_code=None, reason="Host lost: no heartbeat for 6s", interrupted=True)


def test_two_attempts_alive_at_once_is_a_violation() -> None:
    records = [job("j1", SUCCEEDED, LOST_1, detail(2, "b"))]
    journal = run("j1", 1, "a", 0, 5, code=None) + run("j1", 2, "b", 4, 6)
    (violation,) = check(ONE, records, journal)
    assert "ran at the same time for 1.000s" in violation


def test_back_to_back_attempts_are_fine() -> None:
    records = [job("j1", SUCCEEDED, LOST_1, detail(2, "b"))]
    assert check(ONE, records, run("j1", 1, "a", 0, 3.9, code=None) + run("j1", 2, "b", 4, 6)) == []


def frozen_case(stale_end: float, *, interrupted: bool = True) -> list[str]:
    """Frozen 2..10 on node a, successor started at 9, the stale attempt lived until stale_end."""
    first = LOST_1 if interrupted else detail(1, "a", exit_code=0)
    records = [job("j1", SUCCEEDED, first, detail(2, "b"))]
    journal = run("j1", 1, "a", 0, stale_end, code=None, frozen=(2.0, 10.0)) + run("j1", 2, "b", 9, 12)
    return check(ONE, records, journal, freezes=[Freeze("a", 2.0, 10.0)], wake_kill_within=3.0)


def test_a_frozen_hosts_stale_attempt_is_excused_when_killed_on_wake() -> None:
    assert frozen_case(11.0) == []


def test_a_frozen_hosts_stale_attempt_that_lives_on_is_not() -> None:
    assert any("ran at the same time" in v for v in frozen_case(14.0))


def test_a_frozen_hosts_stale_attempt_whose_result_counted_is_not() -> None:
    assert any("ran at the same time" in v for v in frozen_case(11.0, interrupted=False))


def test_a_freeze_on_another_node_excuses_nothing() -> None:
    records = [job("j1", SUCCEEDED, LOST_1, detail(2, "b"))]
    journal = run("j1", 1, "a", 0, 11, code=None, frozen=(2.0, 10.0)) + run("j1", 2, "b", 9, 12)
    assert check(ONE, records, journal, freezes=[Freeze("c", 2.0, 10.0)])


def test_overlap_within_the_kill_grace_after_a_termination_notice() -> None:
    noticed = detail(1, "a", exit_code=None, reason="Host interrupted: termination notice", interrupted=True)
    records = [job("j1", SUCCEEDED, noticed, detail(2, "b"))]
    within = run("j1", 1, "a", 0, 5.9, code=None, term=5.0) + run("j1", 2, "b", 5.2, 8)
    assert check(ONE, records, within, notices=[Notice("a", 5.0)], notice_grace=2.5) == []
    beyond = run("j1", 1, "a", 0, 8.0, code=None, term=5.0) + run("j1", 2, "b", 5.2, 9)
    assert check(ONE, records, beyond, notices=[Notice("a", 5.0)], notice_grace=2.5)
