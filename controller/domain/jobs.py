"""The job state machine: pure transitions on Job records.

Every function takes a Job and returns a NEW Job (the input is never mutated, so the view the
leader reads from stays intact until the transaction that carries the change commits). Times
are passed in (milliseconds since the epoch): nothing here reads a clock.

    SUBMITTED -> PENDING -> RUNNABLE -> STARTING -> RUNNING -> SUCCEEDED
                                ^                     |
                                +------ retry --------+--> FAILED
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from controller.domain import retry
from shoal.v1 import agent_pb2, types_pb2

S = types_pb2.JobStatus
SUBMITTED = S.JOB_STATUS_SUBMITTED
PENDING = S.JOB_STATUS_PENDING
RUNNABLE = S.JOB_STATUS_RUNNABLE
STARTING = S.JOB_STATUS_STARTING
RUNNING = S.JOB_STATUS_RUNNING
SUCCEEDED = S.JOB_STATUS_SUCCEEDED
FAILED = S.JOB_STATUS_FAILED

FINAL = frozenset({SUCCEEDED, FAILED})
WAITING = frozenset({SUBMITTED, PENDING, RUNNABLE})
ACTIVE = frozenset({STARTING, RUNNING})

REASON_DEPENDENCY_FAILED = "Dependent job failed"
REASON_DEPENDENCY_SUCCEEDED = "Dependent job succeeded (the dependency was AFTER_NOT_OK)"
REASON_EXITED = "Essential container in task exited"


def status_name(status: int) -> str:
    """'RUNNABLE' for JOB_STATUS_RUNNABLE."""
    return S.Name(status).removeprefix("JOB_STATUS_")


def _copy(job: types_pb2.Job) -> types_pb2.Job:
    new = types_pb2.Job()
    new.CopyFrom(job)
    return new


def fail(job: types_pb2.Job, reason: str, now_ms: int) -> types_pb2.Job:
    """End a job that is not running (cancel, dependency failed, never-runnable)."""
    new = _copy(job)
    new.status = FAILED
    new.status_reason = reason
    new.stopped_at = now_ms
    new.ClearField("current")
    new.node_id = ""
    new.compute_environment = ""
    return new


def admit(job: types_pb2.Job, dependency_status: Mapping[str, int], now_ms: int) -> types_pb2.Job:
    """SUBMITTED/PENDING -> PENDING, RUNNABLE or FAILED from the states of its dependencies.

    `dependency_status` maps each dependency's job id to its status; a missing id counts as
    not finished yet (it may still be in an unexpanded submission batch). Plain dependencies
    need SUCCEEDED (FAILED fails the job); AFTER_ANY needs either end; AFTER_NOT_OK needs FAILED
    (SUCCEEDED fails the job). N_TO_N and SEQUENTIAL are resolved into plain dependencies of
    the array's children when the array is expanded.
    """
    waiting_on = []
    for dep in job.depends_on:
        status = dependency_status.get(dep.job_id)
        if dep.type == types_pb2.DEPENDENCY_TYPE_AFTER_ANY:
            if status not in FINAL:
                waiting_on.append(dep.job_id)
            continue
        if dep.type == types_pb2.DEPENDENCY_TYPE_AFTER_NOT_OK:
            if status == SUCCEEDED:
                return fail(job, REASON_DEPENDENCY_SUCCEEDED, now_ms)
            if status != FAILED:
                waiting_on.append(dep.job_id)
            continue
        if status == FAILED:
            return fail(job, REASON_DEPENDENCY_FAILED, now_ms)
        if status != SUCCEEDED:
            waiting_on.append(dep.job_id)
    new = _copy(job)
    if waiting_on:
        new.status = PENDING
        new.status_reason = "Waiting on " + ", ".join(waiting_on)
    else:
        new.status = RUNNABLE
        new.status_reason = ""
    return new if new != job else job


def is_array_parent(job: types_pb2.Job) -> bool:
    return job.array_properties.size > 0


def parent_id(job_id: str) -> str:
    """The array parent of a child id ('<parent>:<index>'), or '' for any other job."""
    head, sep, _ = job_id.rpartition(":")
    return head if sep else ""


def array_children(parent: types_pb2.Job) -> list[types_pb2.Job]:
    """The children of an array job, as records in SUBMITTED state (dependencies resolved)."""
    children = []
    for i in range(parent.array_properties.size):
        child = types_pb2.Job(
            job_id=f"{parent.job_id}:{i}",
            job_name=parent.job_name,
            job_queue=parent.job_queue,
            status=SUBMITTED,
            created_at=parent.created_at,
            job_definition=parent.job_definition,
            container=parent.container,
            retry_strategy=parent.retry_strategy,
            timeout=parent.timeout,
            batch_index=i,
            share_identifier=parent.share_identifier,
            scheduling_priority=parent.scheduling_priority,
        )
        child.array_properties.index = i
        child.tags.update(parent.tags)
        child.parameters.update(parent.parameters)
        for dep in parent.depends_on:
            if dep.type == types_pb2.DEPENDENCY_TYPE_N_TO_N:
                child.depends_on.add(job_id=f"{dep.job_id}:{i}")
            elif dep.type == types_pb2.DEPENDENCY_TYPE_SEQUENTIAL:
                if dep.job_id:
                    child.depends_on.add(job_id=dep.job_id)
                if i > 0:
                    child.depends_on.add(job_id=f"{parent.job_id}:{i - 1}")
            else:
                child.depends_on.add(job_id=dep.job_id, type=dep.type)
        children.append(child)
    return children


def summarize_array(parent: types_pb2.Job, children: list[types_pb2.Job], now_ms: int) -> types_pb2.Job:
    """The parent's status and per-status counts, derived from its children (AWS semantics:
    SUCCEEDED only when every child did; FAILED once all ended and any failed)."""
    counts: dict[str, int] = {}
    for child in children:
        name = status_name(child.status)
        counts[name] = counts.get(name, 0) + 1
    size = parent.array_properties.size
    failed = counts.get("FAILED", 0)
    ended = failed + counts.get("SUCCEEDED", 0)
    if len(children) == size and ended == size:
        status = FAILED if failed else SUCCEEDED
        reason = f"{failed} of {size} child jobs failed" if failed else ""
    elif counts.get("STARTING", 0) or counts.get("RUNNING", 0) or ended:
        status, reason = RUNNING, ""
    elif counts.get("RUNNABLE", 0):
        status, reason = RUNNABLE, ""
    else:
        status, reason = PENDING, ""
    if status == parent.status and dict(parent.array_status_summary) == counts and reason == parent.status_reason:
        return parent
    new = _copy(parent)
    new.status = status
    new.status_reason = reason
    new.array_status_summary.clear()
    new.array_status_summary.update(counts)
    if status == RUNNING and not new.started_at:
        starts = [c.started_at for c in children if c.started_at]
        new.started_at = min(starts) if starts else now_ms
    if status in FINAL:
        new.stopped_at = now_ms
    return new


def start_attempt(
    job: types_pb2.Job, *, node_id: str, compute_environment: str, epoch: int, gpu_ids: Sequence[str] = ()
) -> types_pb2.Job:
    """RUNNABLE -> STARTING with a fresh attempt token (and the node's GPU devices it gets)."""
    new = _copy(job)
    new.status = STARTING
    new.status_reason = ""
    new.current.job_id = job.job_id
    new.current.attempt = len(job.attempts) + 1
    new.current.epoch = epoch
    new.node_id = node_id
    new.compute_environment = compute_environment
    del new.gpu_ids[:]
    new.gpu_ids.extend(gpu_ids)
    return new


def is_current(job: types_pb2.Job, token: types_pb2.AttemptToken) -> bool:
    """A report counts only for the job's current attempt (DESIGN: attempt tokens)."""
    return (
        job.status in ACTIVE
        and job.current.job_id == token.job_id
        and job.current.attempt == token.attempt
    )


def mark_running(job: types_pb2.Job, started_at_ms: int) -> types_pb2.Job:
    """STARTING -> RUNNING."""
    if job.status != STARTING:
        return job
    new = _copy(job)
    new.status = RUNNING
    new.started_at = started_at_ms
    return new


def finish_attempt(
    job: types_pb2.Job,
    result: agent_pb2.AttemptFinished,
    *,
    now_ms: int,
    interrupted: bool = False,
) -> types_pb2.Job:
    """STARTING/RUNNING -> SUCCEEDED, FAILED or (retry) RUNNABLE.

    Records the attempt in the history, then lets the retry strategy decide. A job whose
    termination was requested never retries.
    """
    new = _copy(job)
    detail = new.attempts.add()
    detail.attempt = job.current.attempt
    detail.node_id = job.node_id
    if result.HasField("exit_code"):
        detail.exit_code = result.exit_code
    detail.status_reason = result.status_reason
    detail.reason = result.reason
    detail.started_at = result.started_at or job.started_at
    detail.stopped_at = result.stopped_at or now_ms
    detail.interrupted = interrupted
    detail.gpu_ids.extend(job.gpu_ids)
    del new.gpu_ids[:]
    new.ClearField("current")
    new.node_id = ""
    new.compute_environment = ""

    if job.terminate_reason:
        new.status = FAILED
        new.status_reason = job.terminate_reason
        new.stopped_at = now_ms
        return new
    if not interrupted and result.HasField("exit_code") and result.exit_code == 0:
        new.status = SUCCEEDED
        new.status_reason = ""
        new.stopped_at = now_ms
        return new

    status_reason = result.status_reason or REASON_EXITED
    outcome = retry.AttemptOutcome(
        exit_code=result.exit_code if result.HasField("exit_code") else None,
        reason=result.reason,
        status_reason=status_reason,
        interrupted=interrupted,
    )
    decision = retry.decide(
        job.retry_strategy,
        outcome,
        attempts_made=len(new.attempts),
        interruptions_used=job.interruptions_used,
    )
    if decision.retry:
        new.status = RUNNABLE
        new.status_reason = status_reason
        if decision.charged_to_interruptions:
            new.interruptions_used = job.interruptions_used + 1
        return new
    new.status = FAILED
    new.status_reason = status_reason
    new.stopped_at = now_ms
    return new


def attempt_environment(
    job: types_pb2.Job, *, node_hostname: str, node: Mapping[str, str] | None = None
) -> list[types_pb2.KeyValue]:
    """The job's environment plus the SHOAL_* variables and their AWS_BATCH_* twins.

    `node` describes a node of a multi-node job (`multinode.node_environment`); a single-node
    job is node 0 of 1 and its own main node, at `node_hostname`.
    """
    attempt = str(job.current.attempt)
    array_index = str(job.array_properties.index) if job.array_properties.size == 0 and ":" in job.job_id else ""
    if node is None:
        node = {"node_index": "0", "num_nodes": "1", "main_node_index": "0", "main_node_address": node_hostname}
    injected = {
        "SHOAL_JOB_ID": job.job_id,
        "SHOAL_JOB_ATTEMPT": attempt,
        "SHOAL_JOB_QUEUE": job.job_queue,
        "SHOAL_CE_NAME": job.compute_environment,
        "SHOAL_NODE_INDEX": node["node_index"],
        "SHOAL_NUM_NODES": node["num_nodes"],
        "SHOAL_MAIN_NODE_INDEX": node["main_node_index"],
        "SHOAL_MAIN_NODE_ADDR": node["main_node_address"],
        "AWS_BATCH_JOB_ID": job.job_id,
        "AWS_BATCH_JOB_ATTEMPT": attempt,
        "AWS_BATCH_JQ_NAME": job.job_queue,
        "AWS_BATCH_CE_NAME": job.compute_environment,
        "AWS_BATCH_JOB_NODE_INDEX": node["node_index"],
        "AWS_BATCH_JOB_NUM_NODES": node["num_nodes"],
        "AWS_BATCH_JOB_MAIN_NODE_INDEX": node["main_node_index"],
        "AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS": node["main_node_address"],
    }
    if array_index:
        injected["SHOAL_JOB_ARRAY_INDEX"] = array_index
        injected["AWS_BATCH_JOB_ARRAY_INDEX"] = array_index
    env = [kv for kv in job.container.environment if kv.name not in injected]
    env.extend(types_pb2.KeyValue(name=k, value=v) for k, v in injected.items())
    return env
