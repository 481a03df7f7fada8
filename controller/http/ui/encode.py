"""API messages -> the JSON the dashboard's pages read (snake_case, numbers as numbers, status
names without their enum prefix). Written out field by field: the pages get what they show and
nothing else (a job's environment, for one, never leaves the controller through here)."""

from __future__ import annotations

from typing import Any

from shoal.v1 import batch_pb2, types_pb2

STATUSES = [name.removeprefix("JOB_STATUS_") for name, v in types_pb2.JobStatus.items() if v]


def status_name(value: int) -> str:
    return types_pb2.JobStatus.Name(value).removeprefix("JOB_STATUS_") if value else ""


def node_status_name(value: int) -> str:
    return types_pb2.NodeStatus.Name(value).removeprefix("NODE_STATUS_") if value else ""


def state_name(value: int) -> str:
    return types_pb2.EntityState.Name(value).removeprefix("ENTITY_STATE_") if value else "ENABLED"


def summary(s: batch_pb2.JobSummary) -> dict[str, Any]:
    return {
        "job_id": s.job_id,
        "job_name": s.job_name,
        "job_queue": s.job_queue,
        "status": status_name(s.status),
        "status_reason": s.status_reason,
        "created_at": s.created_at,
        "started_at": s.started_at,
        "stopped_at": s.stopped_at,
        "exit_code": s.exit_code if s.HasField("exit_code") else None,
        "node_id": s.node_id,
        "attempts": s.attempts,
    }


def job_summary(job: types_pb2.Job) -> dict[str, Any]:
    """The list line of a full job record (what WatchJobs sends), as `summary` gives it."""
    last = job.attempts[-1] if job.attempts else None
    return {
        "job_id": job.job_id,
        "job_name": job.job_name,
        "job_queue": job.job_queue,
        "status": status_name(job.status),
        "status_reason": job.status_reason,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "stopped_at": job.stopped_at,
        "exit_code": last.exit_code if last is not None and last.HasField("exit_code") else None,
        "node_id": job.node_id or (last.node_id if last is not None else ""),
        "attempts": len(job.attempts),
    }


def job(j: types_pb2.Job) -> dict[str, Any]:
    c = j.container
    out = job_summary(j)
    out.update(
        {
            "job_definition": j.job_definition,
            "compute_environment": j.compute_environment,
            "command": list(c.command),
            "image": c.image,
            "runtime": c.runtime,
            "vcpus": c.resources.vcpus,
            "memory_mib": c.resources.memory_mib,
            "gpus": c.resources.gpus,
            "retry_attempts": j.retry_strategy.attempts or 1,
            "timeout_seconds": j.timeout.attempt_duration_seconds,
            "current_attempt": j.current.attempt if j.node_id else 0,
            "attempt_list": [
                {
                    "attempt": a.attempt,
                    "node_id": a.node_id,
                    "exit_code": a.exit_code if a.HasField("exit_code") else None,
                    "status_reason": a.status_reason,
                    "reason": a.reason,
                    "started_at": a.started_at,
                    "stopped_at": a.stopped_at,
                    "interrupted": a.interrupted,
                }
                for a in j.attempts
            ],
            "depends_on": [
                {"job_id": d.job_id, "type": types_pb2.DependencyType.Name(d.type).removeprefix("DEPENDENCY_TYPE_")}
                for d in j.depends_on
            ],
            "array_size": j.array_properties.size,
            "array_index": j.array_properties.index if ":" in j.job_id else None,
            "array_parallelism": j.array_properties.parallelism,
            "array_status_summary": dict(j.array_status_summary),
            "terminate_reason": j.terminate_reason,
            "tags": {k: v for k, v in j.tags.items() if not k.startswith("shoal:secret")},
        }
    )
    return out


def node(n: types_pb2.Node) -> dict[str, Any]:
    return {
        "node_id": n.node_id,
        "hostname": n.hostname,
        "status": node_status_name(n.status),
        "status_reason": n.status_reason,
        "compute_environment": n.compute_environment,
        "vcpus": n.vcpus,
        "memory_mib": n.memory_mib,
        "gpus": n.gpus,
        "used_vcpus": n.used.vcpus,
        "used_memory_mib": n.used.memory_mib,
        "used_gpus": n.used.gpus,
        "running_job_ids": list(n.running_job_ids),
        "heartbeat_age_ms": n.heartbeat_age_ms if n.HasField("heartbeat_age_ms") else None,
        "last_seen_at": n.last_seen_at,
        "registered_at": n.registered_at,
        "runtimes": list(n.runtimes),
        "agent_version": n.agent_version,
        "labels": dict(n.labels),
        "drain_deadline_at": n.drain_deadline_at,
    }


def queue(q: types_pb2.JobQueue) -> dict[str, Any]:
    return {
        "job_queue_name": q.job_queue_name,
        "state": state_name(q.state),
        "priority": q.priority,
        "compute_environments": [o.compute_environment for o in sorted(q.compute_environment_order, key=lambda o: o.order)],
        "created_at": q.created_at,
    }


def environment(e: types_pb2.ComputeEnvironment) -> dict[str, Any]:
    return {
        "compute_environment_name": e.compute_environment_name,
        "type": types_pb2.ComputeEnvironmentType.Name(e.type).removeprefix("COMPUTE_ENVIRONMENT_TYPE_")
        if e.type
        else "UNMANAGED",
        "state": state_name(e.state),
        "min_vcpus": e.min_vcpus,
        "desired_vcpus": e.desired_vcpus,
        "max_vcpus": e.max_vcpus,
        "provisioner": e.provisioner.kind,
        "node_vcpus": e.provisioner.node_vcpus,
        "node_memory_mib": e.provisioner.node_memory_mib,
        "created_at": e.created_at,
    }
