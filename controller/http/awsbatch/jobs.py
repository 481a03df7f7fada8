"""SubmitJob, DescribeJobs, ListJobs, CancelJob(s), TerminateJob(s): AWS JSON <-> shoal.v1."""

from __future__ import annotations

from typing import Any

from controller.http.awsbatch import arns as A
from controller.http.awsbatch import shapes, unsupported
from controller.http.awsbatch.jsonbody import Obj
from controller.http.awsbatch.protocol import Call, error_of
from shoal import errors
from shoal.v1 import batch_pb2, types_pb2

_DEPENDENCY_TYPES = {"N_TO_N": types_pb2.DEPENDENCY_TYPE_N_TO_N, "SEQUENTIAL": types_pb2.DEPENDENCY_TYPE_SEQUENTIAL}


def definition_ref(value: str, arns: A.Arns, field: str) -> str:
    """'name', 'name:revision' or a job-definition ARN -> 'name[:revision]'."""
    return arns.name(value, A.JOB_DEFINITION, field)


def job_id(value: str, arns: A.Arns, field: str) -> str:
    return arns.name(value, A.JOB, field)


def retry_strategy(b: Obj) -> types_pb2.RetryStrategy:
    s = types_pb2.RetryStrategy(attempts=b.int("attempts") or 0)
    for rule in b.objs("evaluateOnExit"):
        action = rule.str("action", required=True).upper()
        if action not in ("RETRY", "EXIT"):
            raise errors.InvalidArgument(f"{rule.path}.action: must be RETRY or EXIT (got {action!r})")
        s.evaluate_on_exit.add(
            on_exit_code=rule.str("onExitCode"),
            on_reason=rule.str("onReason"),
            on_status_reason=rule.str("onStatusReason"),
            action=types_pb2.RetryAction.Value(f"RETRY_ACTION_{action}"),
        )
        rule.done()
    b.done()
    return s


def timeout(b: Obj) -> types_pb2.JobTimeout:
    t = types_pb2.JobTimeout(attempt_duration_seconds=b.int("attemptDurationSeconds", minimum=1) or 0)
    b.done()
    return t


def environment(b: Obj, key: str) -> list[types_pb2.KeyValue]:
    out = []
    for kv in b.objs(key):
        out.append(types_pb2.KeyValue(name=kv.str("name", required=True), value=kv.str("value")))
        kv.done()
    return out


def _number(text: str, path: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise errors.InvalidArgument(f"{path}: expected a number, got {text!r}") from None


def _overrides(b: Obj) -> batch_pb2.ContainerOverrides:
    o = batch_pb2.ContainerOverrides(command=b.str_list("command"), environment=environment(b, "environment"))
    vcpus, memory = b.int("vcpus"), b.int("memory")
    if vcpus is not None:
        o.vcpus = vcpus
    if memory is not None:
        o.memory_mib = memory
    for r in b.objs("resourceRequirements"):
        kind, value = r.str("type", required=True).upper(), r.str("value", required=True)
        r.done()
        if kind == "VCPU" and vcpus is None:
            o.vcpus = _number(value, f"{r.path}.value")
        elif kind == "MEMORY" and memory is None:
            o.memory_mib = int(_number(value, f"{r.path}.value"))
        elif kind in ("VCPU", "MEMORY"):
            raise errors.InvalidArgument(f"{r.path}: {kind} is given twice (also as containerOverrides.{kind.lower()})")
        elif kind == "GPU":
            raise errors.InvalidArgument(f"{r.path}: GPU overrides are not supported by shoal (set GPUs in the job definition)")
        else:
            raise errors.InvalidArgument(f"{r.path}.type: must be VCPU, MEMORY or GPU (got {kind!r})")
    b.done()
    return o


def submit_request(b: Obj, arns: A.Arns) -> batch_pb2.SubmitJobRequest:
    req = batch_pb2.SubmitJobRequest(
        job_name=b.str("jobName", required=True),
        job_queue=arns.name(b.str("jobQueue", required=True), A.JOB_QUEUE, "jobQueue"),
        job_definition=definition_ref(b.str("jobDefinition", required=True), arns, "jobDefinition"),
        parameters=b.str_map("parameters"),
        tags=b.str_map("tags"),
    )
    array = b.obj("arrayProperties")
    if array is not None:
        req.array_properties.size = array.int("size", minimum=0) or 0
        array.done()
    for d in b.objs("dependsOn"):
        dep = req.depends_on.add(job_id=job_id(d.str("jobId", required=True), arns, f"{d.path}.jobId"))
        kind = d.str("type")
        if kind:
            if kind not in _DEPENDENCY_TYPES:
                raise errors.InvalidArgument(f"{d.path}.type: must be N_TO_N or SEQUENTIAL (got {kind!r})")
            dep.type = _DEPENDENCY_TYPES[kind]
        d.done()
    overrides = b.obj("containerOverrides")
    if overrides is not None:
        req.container_overrides.CopyFrom(_overrides(overrides))
    retry = b.obj("retryStrategy")
    if retry is not None:
        req.retry_strategy.CopyFrom(retry_strategy(retry))
    limit = b.obj("timeout")
    if limit is not None:
        req.timeout.CopyFrom(timeout(limit))
    b.done()
    return req


async def submit_job(c: Call) -> dict[str, Any]:
    resp = await c.call("SubmitJob", submit_request(c.body, c.arns))
    return {"jobArn": c.arns.job(resp.job_id), "jobName": resp.job_name, "jobId": resp.job_id}


async def describe_jobs(c: Call) -> dict[str, Any]:
    ids = [job_id(j, c.arns, f"jobs[{i}]") for i, j in enumerate(c.body.str_list("jobs", required=True))]
    c.body.done()
    resp = await c.call("DescribeJobs", batch_pb2.DescribeJobsRequest(job_ids=ids))
    return {"jobs": [shapes.job_detail(j, c.arns) for j in resp.jobs]}


def _filters(b: Obj, req: batch_pb2.ListJobsRequest) -> tuple[bool, str]:
    """Apply ListJobs filters; (any given, exact job name wanted or '')."""
    exact = ""
    given = False
    for f in b.objs("filters"):
        given = True
        name = f.str("name", required=True)
        values = f.str_list("values", required=True)
        f.done()
        if len(values) != 1:
            raise errors.InvalidArgument(f"{f.path}.values: exactly one value (got {len(values)})")
        value = values[0]
        if name == "JOB_NAME":
            if value.endswith("*"):
                req.job_name_prefix = value[:-1]
            else:
                req.job_name_prefix = exact = value
        elif name in ("BEFORE_CREATED_AT", "AFTER_CREATED_AT"):
            if not value.isdigit():
                raise errors.InvalidArgument(f"{f.path}.values: {name} takes milliseconds since the epoch (got {value!r})")
            if name == "BEFORE_CREATED_AT":
                req.created_before = int(value)
            else:
                req.created_after = int(value) + 1
        elif name == "JOB_DEFINITION":
            raise errors.InvalidArgument(f"{f.path}.name: JOB_DEFINITION filters are not supported by shoal")
        else:
            raise errors.InvalidArgument(
                f"{f.path}.name: must be JOB_NAME, JOB_DEFINITION, BEFORE_CREATED_AT or AFTER_CREATED_AT (got {name!r})"
            )
    return given, exact


async def list_jobs(c: Call) -> dict[str, Any]:
    b = c.body
    req = batch_pb2.ListJobsRequest(next_token=b.str("nextToken"))
    queue = b.str("jobQueue")
    if queue:
        req.job_queue = c.arns.name(queue, A.JOB_QUEUE, "jobQueue")
    array_job = b.str("arrayJobId")
    if array_job:
        req.array_job_id = job_id(array_job, c.arns, "arrayJobId")
    if b.str("multiNodeJobId"):
        raise errors.InvalidArgument(f"multiNodeJobId: {unsupported.YET}")
    max_results = b.int("maxResults", minimum=1)
    if max_results is not None:
        if max_results > 1000:
            raise errors.InvalidArgument(f"maxResults: at most 1000 (got {max_results})")
        req.max_results = max_results
    filtered, exact = _filters(b, req)
    status = b.str("jobStatus")
    if status:
        if "JOB_STATUS_" + status not in types_pb2.JobStatus.keys() or status == "UNSPECIFIED":
            raise errors.InvalidArgument(f"jobStatus: not a job status: {status!r}")
        if not filtered:  # AWS: with filters, jobStatus is ignored and every status listed
            req.job_status = types_pb2.JobStatus.Value("JOB_STATUS_" + status)
    elif not filtered:
        req.job_status = types_pb2.JOB_STATUS_RUNNING  # AWS: no status and no filter = RUNNING jobs
    b.done()
    req.top_level_only = not req.array_job_id  # AWS lists array children only under their arrayJobId
    resp = await c.call("ListJobs", req)
    rows = [s for s in resp.job_summary_list if not exact or s.job_name == exact]
    out: dict[str, Any] = {"jobSummaryList": [shapes.job_summary(s, c.arns) for s in rows]}
    if resp.next_token:
        out["nextToken"] = resp.next_token
    return out


def _control_request(c: Call, method: str) -> Any:
    cls = batch_pb2.CancelJobRequest if method == "CancelJob" else batch_pb2.TerminateJobRequest
    req = cls(job_id=job_id(c.body.str("jobId", required=True), c.arns, "jobId"), reason=c.body.str("reason", required=True))
    c.body.done()
    return req


async def cancel_job(c: Call) -> dict[str, Any]:
    await c.call("CancelJob", _control_request(c, "CancelJob"))
    return {}


async def terminate_job(c: Call) -> dict[str, Any]:
    await c.call("TerminateJob", _control_request(c, "TerminateJob"))
    return {}


async def _control_many(c: Call, method: str) -> dict[str, Any]:
    """CancelJobs/TerminateJobs: each job on its own; failures listed, not raised."""
    ids = c.body.str_list("jobs", required=True)
    reason = c.body.str("reason", required=True)
    c.body.done()
    if len(ids) > 100:
        raise errors.InvalidArgument(f"jobs: at most 100 per call (got {len(ids)})")
    cls = batch_pb2.CancelJobRequest if method == "CancelJob" else batch_pb2.TerminateJobRequest
    successful, failed = [], []
    for i, raw in enumerate(ids):
        try:
            await c.call(method, cls(job_id=job_id(raw, c.arns, f"jobs[{i}]"), reason=reason))
            successful.append(raw)
        except errors.ShoalError as err:
            failed.append({"job": raw, "code": error_of(err)[1], "message": err.message})
    return {"successful": successful, "errors": failed}


async def cancel_jobs(c: Call) -> dict[str, Any]:
    return await _control_many(c, "CancelJob")


async def terminate_jobs(c: Call) -> dict[str, Any]:
    return await _control_many(c, "TerminateJob")
