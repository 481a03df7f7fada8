"""Job definitions, job queues and compute environments: AWS JSON <-> shoal.v1."""

from __future__ import annotations

import shlex
from typing import Any

from controller.http.awsbatch import arns as A
from controller.http.awsbatch import shapes
from controller.http.awsbatch.jsonbody import Obj
from controller.http.awsbatch.protocol import Call
from shoal import errors, jobdef
from shoal.v1 import batch_pb2, types_pb2

# ---- paging of the describe calls (shoal answers them whole; AWS pages them) -----------------


def _page(b: Obj, items: list[Any], key: str) -> dict[str, Any]:
    size = b.int("maxResults", minimum=1) or 100
    token = b.str("nextToken")
    if token and not token.isdigit():
        raise errors.InvalidArgument("nextToken: not a token this API returned")
    start = int(token or 0)
    out: dict[str, Any] = {key: items[start : start + size]}
    if start + size < len(items):
        out["nextToken"] = str(start + size)
    return out


def _state(value: str, field: str) -> int:
    if not value:
        return types_pb2.ENTITY_STATE_UNSPECIFIED
    if value not in ("ENABLED", "DISABLED"):
        raise errors.InvalidArgument(f"{field}: must be ENABLED or DISABLED (got {value!r})")
    return types_pb2.EntityState.Value("ENTITY_STATE_" + value)


# ---- job definitions -----------------------------------------------------------------------------

_DEF_KEYS = ("jobDefinitionName", "containerProperties", "nodeProperties", "retryStrategy", "timeout", "parameters",
             "tags", "schedulingPriority")
_CONTAINER_KEYS = ("image", "vcpus", "memory", "command", "environment", "mountPoints", "readonlyRootFilesystem",
                   "privileged", "ulimits", "user", "resourceRequirements")


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def _read_container(props: Obj) -> None:
    """Mark the container keys shoal translates as read; refuse the rest (with their reasons)."""
    for key in _CONTAINER_KEYS:
        props.raw(key)
    for volume in props.objs("volumes"):
        volume.raw("name")
        volume.raw("host")
        volume.done()
    linux = props.obj("linuxParameters")
    if linux is not None:
        linux.raw("sharedMemorySize")
        linux.done()
    props.done()


def _read_nodes(nodes: Obj) -> None:
    nodes.raw("numNodes")
    nodes.raw("mainNode")
    for rng in nodes.objs("nodeRangeProperties"):
        rng.raw("targetNodes")
        container = rng.obj("container")
        if container is not None:
            _read_container(container)
        rng.done()
    nodes.done()


def register_request(b: Obj) -> batch_pb2.RegisterJobDefinitionRequest:
    kind = b.str("type", required=True)
    if kind not in ("container", "multinode"):
        raise errors.InvalidArgument(f"type: must be container or multinode (got {kind!r})")
    for key in _DEF_KEYS:
        b.raw(key)
    props, nodes = b.obj("containerProperties"), b.obj("nodeProperties")
    if kind == "container":
        if props is None:
            raise errors.InvalidArgument("containerProperties: is required for type container")
        if nodes is not None:
            raise errors.InvalidArgument("nodeProperties: is for type multinode (this definition is type container)")
        _read_container(props)
    else:
        if nodes is None:
            raise errors.InvalidArgument("nodeProperties: is required for type multinode")
        if props is not None:
            raise errors.InvalidArgument(
                "containerProperties: not for type multinode: each entry of nodeProperties.nodeRangeProperties "
                "has its own container"
            )
        _read_nodes(nodes)
    b.done()
    # What is left is the shape shoal's own definition files use: one parser for both.
    doc = _drop_nulls({k: b.data[k] for k in _DEF_KEYS if k in b.data})
    doc["type"] = kind
    try:
        return jobdef.parse(doc, "request")
    except jobdef.JobDefinitionFileError as err:
        raise errors.InvalidArgument(err.message.removeprefix("request: ")) from None


async def register_job_definition(c: Call) -> dict[str, Any]:
    resp = await c.call("RegisterJobDefinition", register_request(c.body))
    return {
        "jobDefinitionName": resp.job_definition_name,
        "jobDefinitionArn": c.arns.definition(resp.job_definition_name, resp.revision),
        "revision": resp.revision,
    }


async def describe_job_definitions(c: Call) -> dict[str, Any]:
    b = c.body
    refs = [c.arns.name(r, A.JOB_DEFINITION, f"jobDefinitions[{i}]") for i, r in enumerate(b.str_list("jobDefinitions"))]
    name = b.str("jobDefinitionName")
    status = b.str("status")
    if status and status not in ("ACTIVE", "INACTIVE"):
        raise errors.InvalidArgument(f"status: must be ACTIVE or INACTIVE (got {status!r})")
    found: list[types_pb2.JobDefinition] = []
    if refs:
        by_name: dict[str, list[types_pb2.JobDefinition]] = {}
        for ref in refs:
            ref_name, _, revision = ref.partition(":")
            if ref_name not in by_name:
                resp = await c.call(
                    "DescribeJobDefinitions", batch_pb2.DescribeJobDefinitionsRequest(job_definition_name=ref_name, status=status)
                )
                by_name[ref_name] = list(resp.job_definitions)
            found += [d for d in by_name[ref_name] if not revision or str(d.revision) == revision]
    else:
        resp = await c.call(
            "DescribeJobDefinitions", batch_pb2.DescribeJobDefinitionsRequest(job_definition_name=name, status=status)
        )
        found = list(resp.job_definitions)
    items = [shapes.job_definition(d, c.arns) for d in found]
    out = _page(b, items, "jobDefinitions")
    b.done()
    return out


async def deregister_job_definition(c: Call) -> dict[str, Any]:
    ref = c.arns.name(c.body.str("jobDefinition", required=True), A.JOB_DEFINITION, "jobDefinition")
    c.body.done()
    await c.call("DeregisterJobDefinition", batch_pb2.DeregisterJobDefinitionRequest(job_definition=ref))
    return {}


# ---- job queues ----------------------------------------------------------------------------------


def _env_order(b: Obj, arns: A.Arns) -> list[types_pb2.ComputeEnvironmentOrder]:
    out = []
    for o in b.objs("computeEnvironmentOrder"):
        out.append(
            types_pb2.ComputeEnvironmentOrder(
                order=o.int("order", required=True, minimum=0) or 0,
                compute_environment=arns.name(
                    o.str("computeEnvironment", required=True), A.COMPUTE_ENVIRONMENT, f"{o.path}.computeEnvironment"
                ),
            )
        )
        o.done()
    return out


def _policy_of(b: Obj, arns: A.Arns) -> str:
    """schedulingPolicyArn -> the policy's name ('' = none given: FIFO, or unchanged)."""
    arn = b.str("schedulingPolicyArn")
    return arns.arn_name(arn, A.SCHEDULING_POLICY, "schedulingPolicyArn") if arn else ""


async def create_job_queue(c: Call) -> dict[str, Any]:
    b = c.body
    req = batch_pb2.CreateJobQueueRequest(
        job_queue_name=b.str("jobQueueName", required=True),
        state=_state(b.str("state"), "state"),
        priority=b.int("priority", required=True) or 0,
        compute_environment_order=_env_order(b, c.arns),
        scheduling_policy=_policy_of(b, c.arns),
    )
    b.done()
    q = await c.call("CreateJobQueue", req)
    return {"jobQueueName": q.job_queue_name, "jobQueueArn": c.arns.queue(q.job_queue_name)}


async def update_job_queue(c: Call) -> dict[str, Any]:
    b = c.body
    req = batch_pb2.UpdateJobQueueRequest(
        job_queue_name=c.arns.name(b.str("jobQueue", required=True), A.JOB_QUEUE, "jobQueue"),
        state=_state(b.str("state"), "state"),
        compute_environment_order=_env_order(b, c.arns),
        scheduling_policy=_policy_of(b, c.arns),
    )
    priority = b.int("priority")
    if priority is not None:
        req.priority = priority
    b.done()
    q = await c.call("UpdateJobQueue", req)
    return {"jobQueueName": q.job_queue_name, "jobQueueArn": c.arns.queue(q.job_queue_name)}


async def delete_job_queue(c: Call) -> dict[str, Any]:
    name = c.arns.name(c.body.str("jobQueue", required=True), A.JOB_QUEUE, "jobQueue")
    c.body.done()
    await c.call("DeleteJobQueue", batch_pb2.DeleteJobQueueRequest(job_queue_name=name))
    return {}


async def describe_job_queues(c: Call) -> dict[str, Any]:
    b = c.body
    names = [c.arns.name(q, A.JOB_QUEUE, f"jobQueues[{i}]") for i, q in enumerate(b.str_list("jobQueues"))]
    resp = await c.call("DescribeJobQueues", batch_pb2.DescribeJobQueuesRequest(job_queues=names))
    out = _page(b, [shapes.job_queue(q, c.arns) for q in resp.job_queues], "jobQueues")
    b.done()
    return out


# ---- compute environments ------------------------------------------------------------------------


def _provisioner(b: Obj) -> types_pb2.Provisioner:
    """computeResources.tags carry what AWS would read from EC2: how shoal gets hosts, and their size."""
    tags = b.str_map("tags")
    for key in tags:
        if key not in shapes.PROVISIONER_TAGS:
            raise errors.InvalidArgument(
                f"{b.path}.tags.{key}: not supported by shoal (these tags configure the provisioner: "
                f"{', '.join(shapes.PROVISIONER_TAGS)})"
            )
    kind = tags.get(shapes.PROVISIONER_TAG, "")
    if not kind:
        raise errors.InvalidArgument(
            f"{b.path}.tags: a MANAGED environment needs the tag {shapes.PROVISIONER_TAG} (local or command) and "
            f"{shapes.NODE_VCPUS_TAG}/{shapes.NODE_MEMORY_TAG}: the size of each host (see README, Using AWS Batch tools)"
        )
    p = types_pb2.Provisioner(kind=kind)
    try:
        p.node_vcpus = float(tags.get(shapes.NODE_VCPUS_TAG, "0"))
        p.node_memory_mib = int(tags.get(shapes.NODE_MEMORY_TAG, "0"))
    except ValueError:
        raise errors.InvalidArgument(
            f"{b.path}.tags: {shapes.NODE_VCPUS_TAG} must be a number and {shapes.NODE_MEMORY_TAG} a whole number"
        ) from None
    if shapes.COMMAND_TAG in tags:
        p.command[:] = shlex.split(tags[shapes.COMMAND_TAG])
    return p


async def create_compute_environment(c: Call) -> dict[str, Any]:
    b = c.body
    kind = b.str("type", required=True)
    if kind not in ("MANAGED", "UNMANAGED"):
        raise errors.InvalidArgument(f"type: must be MANAGED or UNMANAGED (got {kind!r})")
    req = batch_pb2.CreateComputeEnvironmentRequest(
        compute_environment_name=b.str("computeEnvironmentName", required=True),
        type=types_pb2.ComputeEnvironmentType.Value("COMPUTE_ENVIRONMENT_TYPE_" + kind),
        state=_state(b.str("state"), "state"),
    )
    resources = b.obj("computeResources")
    if kind == "UNMANAGED" and resources is not None:
        raise errors.InvalidArgument("computeResources: only for MANAGED environments")
    if kind == "MANAGED":
        if resources is None:
            raise errors.InvalidArgument("computeResources: is required for a MANAGED environment")
        resource_type = resources.str("type", required=True)
        if resource_type != "EC2":
            raise errors.InvalidArgument(
                f"computeResources.type: {resource_type} is not supported by shoal (EC2 = hosts from the provisioner; "
                "there is no spot market or Fargate)"
            )
        req.min_vcpus = resources.int("minvCpus", minimum=0) or 0
        req.max_vcpus = resources.int("maxvCpus", required=True, minimum=0) or 0
        req.desired_vcpus = resources.int("desiredvCpus", minimum=0) or 0
        req.provisioner.CopyFrom(_provisioner(resources))
        resources.done()
    b.done()
    e = await c.call("CreateComputeEnvironment", req)
    return {"computeEnvironmentName": e.compute_environment_name, "computeEnvironmentArn": c.arns.env(e.compute_environment_name)}


async def update_compute_environment(c: Call) -> dict[str, Any]:
    b = c.body
    req = batch_pb2.UpdateComputeEnvironmentRequest(
        compute_environment_name=c.arns.name(b.str("computeEnvironment", required=True), A.COMPUTE_ENVIRONMENT, "computeEnvironment"),
        state=_state(b.str("state"), "state"),
    )
    resources = b.obj("computeResources")
    if resources is not None:
        for key, attr in (("minvCpus", "min_vcpus"), ("maxvCpus", "max_vcpus"), ("desiredvCpus", "desired_vcpus")):
            value = resources.int(key, minimum=0)
            if value is not None:
                setattr(req, attr, value)
        resources.done()
    b.done()
    e = await c.call("UpdateComputeEnvironment", req)
    return {"computeEnvironmentName": e.compute_environment_name, "computeEnvironmentArn": c.arns.env(e.compute_environment_name)}


async def delete_compute_environment(c: Call) -> dict[str, Any]:
    name = c.arns.name(c.body.str("computeEnvironment", required=True), A.COMPUTE_ENVIRONMENT, "computeEnvironment")
    c.body.done()
    await c.call("DeleteComputeEnvironment", batch_pb2.DeleteComputeEnvironmentRequest(compute_environment_name=name))
    return {}


async def describe_compute_environments(c: Call) -> dict[str, Any]:
    b = c.body
    names = [
        c.arns.name(e, A.COMPUTE_ENVIRONMENT, f"computeEnvironments[{i}]")
        for i, e in enumerate(b.str_list("computeEnvironments"))
    ]
    resp = await c.call("DescribeComputeEnvironments", batch_pb2.DescribeComputeEnvironmentsRequest(compute_environments=names))
    out = _page(b, [shapes.compute_environment(e, c.arns) for e in resp.compute_environments], "computeEnvironments")
    b.done()
    return out
