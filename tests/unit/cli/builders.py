"""Records as the server would send them, with readable defaults."""

from __future__ import annotations

from shoal.v1 import batch_pb2, types_pb2

T0 = 1_700_000_000_000  # epoch ms


def job(
    job_id: str = "j-1",
    status: int = types_pb2.JOB_STATUS_RUNNABLE,
    *,
    name: str = "sleep",
    reason: str = "",
    exit_code: int | None = None,
) -> types_pb2.Job:
    record = types_pb2.Job(
        job_id=job_id,
        job_name=name,
        job_queue="default",
        status=status,
        status_reason=reason,
        created_at=T0,
        container=types_pb2.ContainerProperties(
            command=["sleep", "1"], resources=types_pb2.ResourceRequirements(vcpus=1, memory_mib=256)
        ),
    )
    if status in (types_pb2.JOB_STATUS_RUNNING, types_pb2.JOB_STATUS_SUCCEEDED, types_pb2.JOB_STATUS_FAILED):
        record.started_at = T0 + 1000
    if status in (types_pb2.JOB_STATUS_SUCCEEDED, types_pb2.JOB_STATUS_FAILED):
        record.stopped_at = T0 + 2000
        attempt = record.attempts.add(
            attempt=1, node_id="n-1", status_reason=reason, started_at=T0 + 1000, stopped_at=T0 + 2000
        )
        if exit_code is not None:
            attempt.exit_code = exit_code
    return record


def event(record: types_pb2.Job, revision: int = 1) -> batch_pb2.JobEvent:
    return batch_pb2.JobEvent(job=record, revision=revision)


def describe(*records: types_pb2.Job) -> batch_pb2.DescribeJobsResponse:
    return batch_pb2.DescribeJobsResponse(jobs=list(records))
