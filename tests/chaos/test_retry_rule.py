"""Issue #4: `attempts: 3` with {onStatusReason: "Host*", action: RETRY}, {onExitCode: "*",
action: EXIT} is retried when its host goes away, and not when the job itself fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoal.v1 import types_pb2

from .conftest import eventually
from .harness import crash_host, wait_journalled
from .invariants import check_invariants
from .workload import HOST_RETRY_ONLY, JobSpec, submit

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(120)]

S = types_pb2.JobStatus


def test_host_star_retry_rule_retries_interruption_not_own_failure(
    chaos_cluster, client_for, journal: Path
) -> None:  # noqa: ANN001
    cluster = chaos_cluster(agents=2)
    client = client_for(cluster)
    interrupted = submit(client, [JobSpec("host-lost", 3.0, attempts=3, rules=HOST_RETRY_ONLY)], journal)
    (job_id,) = interrupted
    job = eventually(
        lambda: next((j for j in client.describe_jobs([job_id]) if j.status == S.JOB_STATUS_RUNNING), None),
        what="host-lost RUNNING",
    )
    victim = job.node_id
    wait_journalled(client, [job_id], victim, journal)
    crash_host(next(p for p in cluster.agent_procs if p.name == victim))
    failing = submit(
        client, [JobSpec("own-failure", 0.2, exit_codes=(3, 0), attempts=3, rules=HOST_RETRY_ONLY)], journal
    )

    report = check_invariants(client, {**interrupted, **failing}, journal)

    lost = report.records[job_id]
    assert lost.status == S.JOB_STATUS_SUCCEEDED
    first, second = lost.attempts
    assert (first.interrupted, first.status_reason, first.node_id) == (
        True,
        "Host lost: agent disconnected",
        victim,
    )
    assert second.exit_code == 0 and second.node_id != victim

    (failed_id,) = failing
    failed = report.records[failed_id]
    # It would succeed on a second attempt, but its own failure is not retried.
    assert failed.status == S.JOB_STATUS_FAILED
    assert [(a.exit_code, a.interrupted) for a in failed.attempts] == [(3, False)]
