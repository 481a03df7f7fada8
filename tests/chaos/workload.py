"""Chaos workloads: jobs of several lengths and retry strategies, each running `jobscript.py`.

    specs = mixed_workload()                        # a deterministic mix, see below
    jobs = submit(client, specs, journal)           # {job id: spec}
    check_invariants(client, jobs, journal)         # see invariants.py

A `JobSpec` says what the job does (how long it runs, which exit code each attempt gives,
whether it ignores SIGTERM) and how it may be retried; the checker derives the final state
from exactly that and the attempts the controller recorded.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from shoal import Client
from shoal.v1 import batch_pb2, types_pb2

JOB_SCRIPT = Path(__file__).with_name("jobscript.py")

RETRY, EXIT = types_pb2.RETRY_ACTION_RETRY, types_pb2.RETRY_ACTION_EXIT


@dataclass(frozen=True)
class Rule:
    """One evaluateOnExit rule; empty globs are not checked."""

    action: int
    on_exit_code: str = ""
    on_reason: str = ""
    on_status_reason: str = ""

    def to_proto(self) -> types_pb2.EvaluateOnExit:
        return types_pb2.EvaluateOnExit(
            on_exit_code=self.on_exit_code,
            on_reason=self.on_reason,
            on_status_reason=self.on_status_reason,
            action=self.action,
        )


# Issue #4's rule: retry when the host was lost or interrupted, never on the job's own failure.
HOST_RETRY_ONLY = (Rule(RETRY, on_status_reason="Host*"), Rule(EXIT, on_exit_code="*"))


@dataclass(frozen=True)
class JobSpec:
    name: str
    seconds: float
    """How long each attempt runs (monotonic time, so a frozen attempt that wakes after its
    end exits at once)."""
    exit_codes: tuple[int, ...] = (0,)
    """Exit code of attempt 1, 2, ...; the last one repeats."""
    attempts: int = 1
    rules: tuple[Rule, ...] = ()
    interruption_attempts: int = 0
    stubborn: bool = False
    """Ignore SIGTERM (journalled as `term`): only SIGKILL ends the attempt."""
    vcpus: float = 0.5

    def exit_code(self, attempt: int) -> int:
        return self.exit_codes[min(attempt, len(self.exit_codes)) - 1]

    def command(self, journal: Path) -> list[str]:
        argv = [sys.executable, "-I", "-S", str(JOB_SCRIPT), str(journal), f"{self.seconds:g}",
                ",".join(str(c) for c in self.exit_codes)]  # fmt: skip
        return argv + (["stubborn"] if self.stubborn else [])

    def request(self, journal: Path, queue: str = "") -> batch_pb2.SubmitJobRequest:
        retry = types_pb2.RetryStrategy(
            attempts=self.attempts,
            evaluate_on_exit=[r.to_proto() for r in self.rules],
            interruption_attempts=self.interruption_attempts,
        )
        return batch_pb2.SubmitJobRequest(
            job_name=self.name,
            job_queue=queue,
            container_overrides=batch_pb2.ContainerOverrides(
                command=self.command(journal), vcpus=self.vcpus, memory_mib=64
            ),
            retry_strategy=retry,
        )


def mixed_workload(prefix: str = "w", *, long_seconds: float = 8.0) -> list[JobSpec]:
    """Twelve jobs: short, medium and long; plain retries; Host*/EXIT rules; failures on purpose.

    Long jobs are still running when a scenario strikes; short ones finish around it, so
    scenarios also exercise results reported while the cluster is disturbed.
    """
    long = long_seconds
    return [
        JobSpec(f"{prefix}-long-a", long, attempts=3),
        JobSpec(f"{prefix}-long-b", long, attempts=3, rules=HOST_RETRY_ONLY),
        JobSpec(f"{prefix}-long-c", long, attempts=2, stubborn=True),
        JobSpec(f"{prefix}-long-d", long * 1.25, attempts=3, rules=HOST_RETRY_ONLY),
        JobSpec(f"{prefix}-mid-a", long / 2, attempts=3),
        JobSpec(f"{prefix}-mid-b", long / 2, exit_codes=(4,), attempts=3, rules=HOST_RETRY_ONLY),
        JobSpec(f"{prefix}-mid-c", long / 2, exit_codes=(3, 0), attempts=3),
        JobSpec(f"{prefix}-short-a", 0.5, attempts=2),
        JobSpec(f"{prefix}-short-b", 0.5, exit_codes=(5,), attempts=1),
        JobSpec(f"{prefix}-short-c", 1.0, exit_codes=(7,), attempts=2),
        JobSpec(f"{prefix}-short-d", 1.5, attempts=3, rules=HOST_RETRY_ONLY),
        JobSpec(f"{prefix}-short-e", 0.2, attempts=3),
    ]


def submit(client: Client, specs: Sequence[JobSpec], journal: Path, queue: str = "") -> dict[str, JobSpec]:
    """Submit `specs` in one atomic call; returns {job id: spec} in submission order."""
    responses = client.submit_jobs(spec.request(journal, queue) for spec in specs)
    return {r.job_id: spec for r, spec in zip(responses, specs, strict=True)}


def merge(*groups: Mapping[str, JobSpec]) -> dict[str, JobSpec]:
    merged: dict[str, JobSpec] = {}
    for group in groups:
        merged.update(group)
    return merged


def ids(jobs: Mapping[str, JobSpec], names: Iterable[str]) -> list[str]:
    wanted = set(names)
    return [jid for jid, spec in jobs.items() if spec.name in wanted]
