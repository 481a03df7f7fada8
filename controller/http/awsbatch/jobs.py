"""SubmitJob, DescribeJobs, ListJobs, CancelJob(s), TerminateJob(s): AWS JSON <-> shoal.v1."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from controller.domain import multinode
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


@dataclass(frozen=True)
class NodeOverrides:
    """SubmitJob's nodeOverrides, read; they need the job definition to be applied."""

    num_nodes: int | None
    target: tuple[str, str] | None
    """(field path, targetNodes) of the one nodePropertyOverrides entry, if any."""


def _node_overrides(b: Obj, req: batch_pb2.SubmitJobRequest) -> NodeOverrides:
    num_nodes = b.int("numNodes", minimum=1)
    target = None
    for i, entry in enumerate(b.objs("nodePropertyOverrides")):
        if i > 0:
            raise errors.InvalidArgument(f"{entry.path}: {unsupported.reason('SubmitJob', 'nodeOverrides.nodePropertyOverrides')}")
        target = (f"{entry.path}.targetNodes", entry.str("targetNodes", required=True))
        overrides = entry.obj("containerOverrides")
        if overrides is not None:
            if req.HasField("container_overrides"):
                raise errors.InvalidArgument(
                    f"{overrides.path}: containerOverrides is given too; give the overrides once (they apply to every node)"
                )
            req.container_overrides.CopyFrom(_overrides(overrides))
        entry.done()
    b.done()
    return NodeOverrides(num_nodes, target)


def read_submit(b: Obj, arns: A.Arns) -> tuple[batch_pb2.SubmitJobRequest, NodeOverrides | None]:
    req = batch_pb2.SubmitJobRequest(
        job_name=b.str("jobName", required=True),
        job_queue=arns.name(b.str("jobQueue", required=True), A.JOB_QUEUE, "jobQueue"),
        job_definition=definition_ref(b.str("jobDefinition", required=True), arns, "jobDefinition"),
        parameters=b.str_map("parameters"),
        tags=b.str_map("tags"),
        share_identifier=b.str("shareIdentifier"),
    )
    priority = b.int("schedulingPriorityOverride")
    if priority is not None:
        req.scheduling_priority_override = priority
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
    node_obj = b.obj("nodeOverrides")
    nodes = _node_overrides(node_obj, req) if node_obj is not None else None
    b.done()
    return req, nodes


def submit_request(b: Obj, arns: A.Arns) -> batch_pb2.SubmitJobRequest:
    """The request without nodeOverrides applied (those need the definition: `submit_job`)."""
    return read_submit(b, arns)[0]


async def _definition(c: Call, ref: str) -> types_pb2.JobDefinition:
    """The definition `ref` ('name' = its latest ACTIVE revision, or 'name:revision') names."""
    name, _, revision = ref.partition(":")
    resp = await c.call(
        "DescribeJobDefinitions",
        batch_pb2.DescribeJobDefinitionsRequest(job_definition_name=name, status="" if revision else "ACTIVE"),
    )
    found = [d for d in resp.job_definitions if not revision or str(d.revision) == revision]
    if not found:
        raise errors.NotFound(f"jobDefinition: job definition '{ref}' does not exist" + ("" if revision else " (no ACTIVE revision)"))
    return max(found, key=lambda d: d.revision)


async def apply_node_overrides(c: Call, req: batch_pb2.SubmitJobRequest, nodes: NodeOverrides) -> None:
    """nodeOverrides onto shoal's SubmitJob: numNodes replaces the definition's (its mainNode
    stays); the one nodePropertyOverrides entry must cover every node (its containerOverrides
    are then the job's). The job is pinned to the revision looked at."""
    definition = await _definition(c, req.job_definition)
    ref = f"{definition.job_definition_name}:{definition.revision}"
    props = definition.node_properties
    if not props.num_nodes:
        raise errors.InvalidArgument(
            f"nodeOverrides: job definition '{ref}' is type container; nodeOverrides are for type multinode"
        )
    num_nodes = nodes.num_nodes or props.num_nodes
    if num_nodes <= props.main_node:
        raise errors.InvalidArgument(
            f"nodeOverrides.numNodes: must be above the mainNode {props.main_node} of job definition '{ref}' (got {num_nodes})"
        )
    if nodes.target is not None:
        path, text = nodes.target
        if multinode.parse_target_nodes(text, num_nodes, path) != (0, num_nodes - 1):
            raise errors.InvalidArgument(
                f"{path}: {text!r} is not every node (0..{num_nodes - 1}): "
                + unsupported.reason("SubmitJob", "nodeOverrides.nodePropertyOverrides")
            )
    if nodes.num_nodes:
        req.node_properties.num_nodes = num_nodes
        req.node_properties.main_node = props.main_node
    req.job_definition = ref


async def submit_job(c: Call) -> dict[str, Any]:
    req, nodes = read_submit(c.body, c.arns)
    if nodes is not None:
        await apply_node_overrides(c, req, nodes)
    try:
        resp = await c.call("SubmitJob", req)
    except errors.ShoalError as err:
        if nodes is not None and err.message.startswith("nodeProperties.numNodes:"):
            err.message = "nodeOverrides.numNodes:" + err.message.removeprefix("nodeProperties.numNodes:")
        raise
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
    multi_node = b.str("multiNodeJobId")
    if multi_node and (queue or array_job):
        raise errors.InvalidArgument("multiNodeJobId: give only one of jobQueue, arrayJobId and multiNodeJobId")
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
    if multi_node:
        return await _list_nodes(c, job_id(multi_node, c.arns, "multiNodeJobId"), req, exact)
    req.top_level_only = not req.array_job_id  # AWS lists array children only under their arrayJobId
    resp = await c.call("ListJobs", req)
    # ... and the nodes `ID#N` of a multi-node job only under its multiNodeJobId. (Filtered here
    # too: shoal.v1 leaves children in when only a status is asked for, and has no node filter.)
    rows = [
        s for s in resp.job_summary_list
        if (not exact or s.job_name == exact)
        and not (req.top_level_only and (s.HasField("node_index") or ":" in s.job_id))
    ]
    out: dict[str, Any] = {"jobSummaryList": [shapes.job_summary(s, c.arns) for s in rows]}
    if resp.next_token:
        out["nextToken"] = resp.next_token
    return out


def _node_matches(req: batch_pb2.ListJobsRequest, job: types_pb2.Job, exact: str) -> bool:
    return (
        (not req.job_status or job.status == req.job_status)
        and (not req.job_name_prefix or job.job_name.startswith(req.job_name_prefix))
        and (not exact or job.job_name == exact)
        and (not req.created_after or job.created_at >= req.created_after)
        and (not req.created_before or job.created_at < req.created_before)
    )


async def _list_nodes(c: Call, parent_id: str, req: batch_pb2.ListJobsRequest, exact: str) -> dict[str, Any]:
    """ListJobs(multiNodeJobId): the nodes `ID#0` .. `ID#N-1`, in node order (they exist from
    the job's first placement on), with the same status and filter rules as any listing."""
    found = (await c.call("DescribeJobs", batch_pb2.DescribeJobsRequest(job_ids=[parent_id]))).jobs
    if not found:
        raise errors.NotFound(f"multiNodeJobId: job '{parent_id}' does not exist")
    num_nodes = found[0].node_properties.num_nodes
    if not num_nodes:
        raise errors.InvalidArgument(f"multiNodeJobId: job '{parent_id}' is not a multi-node parallel job")
    ids = [multinode.child_id(parent_id, i) for i in range(num_nodes)]
    nodes: list[types_pb2.Job] = []
    for i in range(0, len(ids), 100):
        nodes += (await c.call("DescribeJobs", batch_pb2.DescribeJobsRequest(job_ids=ids[i : i + 100]))).jobs
    rows = sorted((j for j in nodes if _node_matches(req, j, exact)), key=lambda j: j.node_details.node_index)
    token = req.next_token
    if token and not token.startswith("node:"):
        raise errors.InvalidArgument("nextToken: not a token this API returned for this multiNodeJobId")
    after = int(token.removeprefix("node:")) if token.removeprefix("node:").isdigit() else -1
    if token and after < 0:
        raise errors.InvalidArgument("nextToken: not a token this API returned")
    rows = [j for j in rows if j.node_details.node_index > after]
    size = req.max_results or 100
    out: dict[str, Any] = {"jobSummaryList": [shapes.node_summary(j, c.arns) for j in rows[:size]]}
    if len(rows) > size:
        out["nextToken"] = f"node:{rows[size - 1].node_details.node_index}"
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
