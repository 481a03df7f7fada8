"""The invariant checker every chaos scenario ends with.

    report = check_invariants(client, jobs, journal, freezes=[...], notices=[...])

It waits until every job is final, then compares three things: what each job was told to do
(its `JobSpec`), what the controller recorded (`DescribeJobs`), and what really ran (the
journal `jobscript.py` appends to). It fails, listing every violation, unless:

1. **No job is lost**: every submitted job exists and is SUCCEEDED or FAILED.
2. **The final state is the one the retry strategy implies** for the attempts recorded: every
   attempt but the last was one the strategy retries, the last one either succeeded or was one
   it does not retry. The retry rules are re-implemented here (AWS Batch's, plus shoal's
   interruption budget), independently of controller/domain/retry.py.
3. **Each result is committed once**: attempts are numbered 1..n without gaps; an attempt
   started at most once (one `start` line); every attempt the journal saw is in the record and
   ran on the node the record names; a recorded exit code is the one the process exited with;
   only the last attempt may be a success; an attempt lost with its host (`interrupted`) never
   carries a result (no exit code), and its reason starts with "Host".
4. **No two attempts of a job ran at the same time**: an attempt's life is the span of its
   journal lines (start .. last beat/stop), a lower bound of when it really ran, so an overlap
   seen here is a real one. Two exceptions, both only for an attempt whose result did not count
   (recorded as interrupted):
   - a **frozen host** (`Freeze`): the stale attempt was stopped while its successor started,
     and it died within `wake_kill_within` seconds of waking up;
   - a **termination notice** (`Notice`): the controller requeues at once, as designed, while
     the old attempt gets the agent's kill grace; it must be dead `notice_grace` seconds after
     the notice.

The pure part (`parse_journal`, `find_violations`) is unit-tested in
tests/unit/test_chaos_checker.py.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from shoal import Client
from shoal.v1 import types_pb2

from .workload import EXIT, JobSpec

S = types_pb2.JobStatus
FINAL = (S.JOB_STATUS_SUCCEEDED, S.JOB_STATUS_FAILED)
# Beats come every 0.1 s (jobscript.BEAT); a longer silence inside a run means it was frozen.
FROZEN_GAP = 0.6


# ---- the journal ------------------------------------------------------------------------------


@dataclass
class Run:
    """One attempt process, as its journal lines show it."""

    job_id: str
    attempt: int
    node: str
    pid: int
    start: float
    """Monotonic time of the `start` line."""
    times: list[float] = field(default_factory=list)
    """Monotonic time of every line (start, beats, term, stop), in order."""
    terms: list[float] = field(default_factory=list)
    exit_code: int | None = None
    """From the `stop` line; None when the process died without one (SIGKILL)."""

    @property
    def last(self) -> float:
        """The last moment it is known to have been alive."""
        return self.times[-1]

    def lines_between(self, t0: float, t1: float) -> list[float]:
        return [t for t in self.times if t0 < t < t1]

    def gaps(self, longer_than: float = FROZEN_GAP) -> list[tuple[float, float]]:
        return [(a, b) for a, b in zip(self.times, self.times[1:], strict=False) if b - a > longer_than]


@dataclass
class Journal:
    runs: dict[tuple[str, int], list[Run]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def of(self, job_id: str) -> list[Run]:
        """Every run of a job, oldest start first."""
        found = [r for (jid, _), runs in self.runs.items() if jid == job_id for r in runs]
        return sorted(found, key=lambda r: r.start)

    def run(self, job_id: str, attempt: int) -> Run | None:
        runs = self.runs.get((job_id, attempt), [])
        return runs[0] if runs else None


def parse_journal(text: str) -> Journal:
    """Group journal lines into runs, keyed by (job id, attempt), one Run per process."""
    journal = Journal()
    by_pid: dict[tuple[str, int, int], Run] = {}
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            event, job_id, attempt, node, mono, _wall, pid = fields[:7]
            key = (job_id, int(attempt), int(pid))
            t = float(mono)
        except ValueError:
            journal.problems.append(f"journal line {number} is malformed: {line!r}")
            continue
        run = by_pid.get(key)
        if event == "start":
            if run is not None:
                journal.problems.append(f"journal line {number}: second start of pid {pid}")
                continue
            run = Run(job_id=job_id, attempt=int(attempt), node=node, pid=int(pid), start=t)
            by_pid[key] = run
            journal.runs.setdefault((job_id, int(attempt)), []).append(run)
        elif run is None:
            journal.problems.append(f"journal line {number}: {event} before start: {line!r}")
            continue
        if event == "term":
            run.terms.append(t)
        elif event == "stop":
            run.exit_code = int(fields[7]) if len(fields) > 7 else None
        elif event not in ("start", "beat"):
            journal.problems.append(f"journal line {number}: unknown event {event!r}")
        run.times.append(t)
    return journal


def read_journal(path: Path) -> Journal:
    try:
        return parse_journal(path.read_text())
    except FileNotFoundError:
        return Journal()


# ---- disturbances the checker must know about -------------------------------------------------


@dataclass(frozen=True)
class Freeze:
    """A node's agent and jobs were SIGSTOPped at `stopped` and SIGCONTed at `resumed` (monotonic)."""

    node: str
    stopped: float
    resumed: float


@dataclass(frozen=True)
class Notice:
    """A node's agent got SIGTERM (a termination notice) at `at` (monotonic)."""

    node: str
    at: float


# ---- the retry model (independent of the controller's) --------------------------------------


def glob(pattern: str, value: str) -> bool:
    """AWS Batch's glob: '*' any run (also empty), '?' one character, the rest literal, whole value."""
    reach = {0}  # positions in `value` the pattern read so far can end at
    for ch in pattern:
        if ch == "*":
            reach = set(range(min(reach), len(value) + 1)) if reach else set()
        else:
            reach = {i + 1 for i in reach if i < len(value) and ch in ("?", value[i])}
    return len(value) in reach


def retries(
    spec: JobSpec, detail: types_pb2.AttemptDetail, attempts_made: int, interruptions_used: int
) -> tuple[bool, bool]:
    """(retry?, charged to the interruption budget?) after `detail`, the attempts_made-th attempt."""
    exit_code = str(detail.exit_code) if detail.HasField("exit_code") else None
    for rule in spec.rules:
        if rule.on_exit_code and (exit_code is None or not glob(rule.on_exit_code, exit_code)):
            continue
        if rule.on_reason and not glob(rule.on_reason, detail.reason):
            continue
        if rule.on_status_reason and not glob(rule.on_status_reason, detail.status_reason):
            continue
        if rule.action == EXIT:
            return False, False
        break  # RETRY: while attempts remain, as when no rule matches
    if detail.interrupted and interruptions_used < spec.interruption_attempts:
        return True, True
    return attempts_made - interruptions_used < max(spec.attempts, 1), False


# ---- the checks -------------------------------------------------------------------------------


def _name(job_id: str, spec: JobSpec) -> str:
    return f"job {spec.name} ({job_id})"


def _check_record(job_id: str, spec: JobSpec, job: types_pb2.Job, journal: Journal) -> list[str]:
    out: list[str] = []
    who = _name(job_id, spec)
    status = types_pb2.JobStatus.Name(job.status)
    if job.status not in FINAL:
        return [f"{who} is not final: {status}"]
    details = list(job.attempts)
    numbers = [d.attempt for d in details]
    if numbers != list(range(1, len(details) + 1)):
        out.append(f"{who}: attempts are not numbered 1..n: {numbers}")
    if not details:
        return out + [f"{who} is {status} without any attempt"]
    for (jid, attempt), runs in sorted(journal.runs.items()):
        if jid != job_id:
            continue
        if len(runs) > 1:
            nodes = ", ".join(f"{r.node} pid {r.pid}" for r in runs)
            out.append(f"{who}: attempt {attempt} was started {len(runs)} times ({nodes})")
        if attempt not in numbers:
            out.append(f"{who}: attempt {attempt} ran on {runs[0].node} but is not in the record {numbers}")
    interruptions_used = 0
    for i, detail in enumerate(details, 1):
        run = journal.run(job_id, detail.attempt)
        label = f"{who} attempt {detail.attempt}"
        if run is not None and run.node != detail.node_id:
            out.append(f"{label}: recorded on {detail.node_id} but ran on {run.node}")
        if (
            run is not None
            and run.exit_code is not None
            and not run.terms
            and run.exit_code != spec.exit_code(detail.attempt)
        ):
            out.append(
                f"{label}: the job exited {run.exit_code}, its spec says {spec.exit_code(detail.attempt)}"
            )
        if detail.interrupted:
            if detail.HasField("exit_code"):
                out.append(f"{label}: lost with its host, yet its exit code {detail.exit_code} was recorded")
            if not detail.status_reason.startswith("Host"):
                out.append(f"{label}: interrupted with reason {detail.status_reason!r} (want 'Host ...')")
        else:
            if run is None:
                out.append(
                    f"{label}: a result was recorded ({detail.status_reason or 'exit 0'}) but it never ran"
                )
            elif detail.HasField("exit_code"):
                if run.exit_code is not None and run.exit_code != detail.exit_code:
                    out.append(
                        f"{label}: recorded exit code {detail.exit_code}, the process exited {run.exit_code}"
                    )
                if run.exit_code is None and detail.exit_code < 128:
                    out.append(f"{label}: recorded exit code {detail.exit_code}, the process was killed")
        success = not detail.interrupted and detail.HasField("exit_code") and detail.exit_code == 0
        last = i == len(details)
        if success:
            if not last:
                out.append(f"{label} succeeded, yet the job ran again: a result was committed twice")
            elif job.status != S.JOB_STATUS_SUCCEEDED:
                out.append(f"{who}: its last attempt succeeded, yet it is {status}")
            continue
        if not detail.status_reason:
            out.append(f"{label} failed without a status reason")
        again, charged = retries(spec, detail, i, interruptions_used)
        interruptions_used += charged
        if again and last:
            out.append(
                f"{who} is {status} after attempt {i} ({detail.status_reason!r}), its retry strategy retries it"
            )
        elif not again and not last:
            out.append(
                f"{who} ran again after attempt {i} ({detail.status_reason!r}), its retry strategy does not retry it"
            )
        elif last and job.status != S.JOB_STATUS_FAILED:
            out.append(f"{who} is {status}, but its last attempt failed ({detail.status_reason!r})")
    if job.status == S.JOB_STATUS_FAILED and not job.status_reason:
        out.append(f"{who} FAILED without a status reason")
    return out


def _check_overlaps(
    job_id: str,
    spec: JobSpec,
    job: types_pb2.Job | None,
    journal: Journal,
    freezes: Sequence[Freeze],
    notices: Sequence[Notice],
    wake_kill_within: float,
    notice_grace: float,
) -> list[str]:
    out: list[str] = []
    interrupted = {d.attempt for d in job.attempts if d.interrupted} if job is not None else set()
    runs = journal.of(job_id)
    for i, a in enumerate(runs):
        for b in runs[i + 1 :]:
            if a.last <= b.start:
                continue
            if a.attempt in interrupted and _excused(a, b, freezes, notices, wake_kill_within, notice_grace):
                continue
            out.append(
                f"{_name(job_id, spec)}: attempts {a.attempt} (on {a.node}, alive until {a.last:.3f}) and "
                f"{b.attempt} (on {b.node}, from {b.start:.3f}) ran at the same time for {a.last - b.start:.3f}s"
            )
    return out


def _excused(
    a: Run,
    b: Run,
    freezes: Sequence[Freeze],
    notices: Sequence[Notice],
    wake_kill_within: float,
    notice_grace: float,
) -> bool:
    for f in freezes:
        if (
            f.node == a.node
            and a.start < f.stopped <= b.start
            and not a.lines_between(f.stopped + FROZEN_GAP, f.resumed - FROZEN_GAP)
            and a.last <= f.resumed + wake_kill_within
        ):
            return True
    for n in notices:
        if n.node == a.node and a.start < n.at <= b.start and a.last <= n.at + notice_grace:
            return True
    return False


def find_violations(
    jobs: Mapping[str, JobSpec],
    records: Mapping[str, types_pb2.Job],
    journal: Journal,
    *,
    freezes: Sequence[Freeze] = (),
    notices: Sequence[Notice] = (),
    wake_kill_within: float = 3.0,
    notice_grace: float = 3.0,
) -> list[str]:
    """Every broken invariant, one line each (empty when all hold). Pure: no I/O, no clock."""
    out = list(journal.problems)
    for job_id, spec in jobs.items():
        job = records.get(job_id)
        if job is None:
            out.append(f"{_name(job_id, spec)} is lost: the controller does not know it")
        else:
            out += _check_record(job_id, spec, job, journal)
        out += _check_overlaps(job_id, spec, job, journal, freezes, notices, wake_kill_within, notice_grace)
    return out


def summarize(jobs: Mapping[str, JobSpec], records: Mapping[str, types_pb2.Job], journal: Journal) -> str:
    """One line per job: final status, then each attempt as node/exit or reason, and its runs."""
    lines = []
    for job_id, spec in jobs.items():
        job = records.get(job_id)
        if job is None:
            lines.append(f"{spec.name:14} LOST")
            continue
        parts = []
        for d in job.attempts:
            outcome = f"exit {d.exit_code}" if d.HasField("exit_code") else d.status_reason
            run = journal.run(job_id, d.attempt)
            ran = f" ran {run.start:.2f}..{run.last:.2f}" if run else " never ran"
            parts.append(
                f"#{d.attempt} {d.node_id}: {outcome}{' (interrupted)' if d.interrupted else ''}{ran}"
            )
        status = types_pb2.JobStatus.Name(job.status).removeprefix("JOB_STATUS_")
        lines.append(f"{spec.name:14} {status:9} " + "; ".join(parts))
    return "\n".join(lines)


@dataclass
class Report:
    records: dict[str, types_pb2.Job]
    journal: Journal

    def attempts(self, job_id: str) -> list[types_pb2.AttemptDetail]:
        return list(self.records[job_id].attempts)

    def interrupted(self) -> dict[str, list[types_pb2.AttemptDetail]]:
        """{job id: its interrupted attempts}, for the jobs that have any."""
        found = {jid: [d for d in job.attempts if d.interrupted] for jid, job in self.records.items()}
        return {jid: ds for jid, ds in found.items() if ds}


def check_invariants(
    client: Client,
    jobs: Mapping[str, JobSpec],
    journal: Path,
    *,
    timeout: float = 120.0,
    freezes: Iterable[Freeze] = (),
    notices: Iterable[Notice] = (),
    wake_kill_within: float = 3.0,
    notice_grace: float = 3.0,
) -> Report:
    """Wait for every job to be final, then assert the invariants above; returns what it saw."""
    ids = list(jobs)
    deadline = time.monotonic() + timeout
    while True:
        # Polled rather than watched: a lost job must show up as lost, not as an error here.
        records = {job.job_id: job for job in client.describe_jobs(ids)}
        if all(job.status in FINAL for job in records.values()) or time.monotonic() > deadline:
            break  # what is not final (or missing) is reported below with everything else
        time.sleep(0.25)
    seen = read_journal(journal)
    violations = find_violations(
        jobs, records, seen, freezes=list(freezes), notices=list(notices),
        wake_kill_within=wake_kill_within, notice_grace=notice_grace,
    )  # fmt: skip
    print(summarize(jobs, records, seen))  # shown when the test fails (or with -s)
    if violations:
        summary = "\n".join(f"  - {v}" for v in violations)
        raise AssertionError(f"{len(violations)} invariant violation(s):\n{summary}")
    return Report(records=records, journal=seen)


def group_by_node(report: Report) -> dict[str, list[Run]]:
    by_node: dict[str, list[Run]] = defaultdict(list)
    for runs in report.journal.runs.values():
        for run in runs:
            by_node[run.node].append(run)
    return dict(by_node)
