"""ListTagsForResource, TagResource, UntagResource on /v1/tags/{resourceArn}."""

from __future__ import annotations

from typing import Any

from controller.http.awsbatch import arns as A
from controller.http.awsbatch.protocol import Call
from shoal import errors
from shoal.v1 import batch_pb2

_IMMUTABLE = (
    "not supported by shoal: tags are given when a job is submitted, a job definition registered or a "
    "scheduling policy created, and stay as given (job queues and compute environments carry none)"
)


async def list_tags_for_resource(c: Call) -> dict[str, Any]:
    arn = c.labels.get("resourceArn", "")
    kind, name = c.arns.split(arn, "resourceArn")
    c.body.done()
    if kind == A.JOB:
        jobs = (await c.call("DescribeJobs", batch_pb2.DescribeJobsRequest(job_ids=[name]))).jobs
        if not jobs:
            raise errors.NotFound(f"resourceArn: job '{name}' does not exist")
        return {"tags": dict(jobs[0].tags)}
    if kind == A.JOB_DEFINITION:
        def_name, _, revision = name.partition(":")
        resp = await c.call("DescribeJobDefinitions", batch_pb2.DescribeJobDefinitionsRequest(job_definition_name=def_name))
        for d in resp.job_definitions:
            if str(d.revision) == revision:
                return {"tags": dict(d.tags)}
        raise errors.NotFound(f"resourceArn: job definition '{name}' does not exist")
    if kind == A.SCHEDULING_POLICY:
        resp = await c.call("DescribeSchedulingPolicies", batch_pb2.DescribeSchedulingPoliciesRequest(names=[name]))
        if not resp.scheduling_policies:
            raise errors.NotFound(f"resourceArn: scheduling policy '{name}' does not exist")
        return {"tags": dict(resp.scheduling_policies[0].tags)}
    if kind == A.JOB_QUEUE:
        found = (await c.call("DescribeJobQueues", batch_pb2.DescribeJobQueuesRequest(job_queues=[name]))).job_queues
    else:
        found = (
            await c.call("DescribeComputeEnvironments", batch_pb2.DescribeComputeEnvironmentsRequest(compute_environments=[name]))
        ).compute_environments
    if not found:
        raise errors.NotFound(f"resourceArn: {kind} '{name}' does not exist")
    return {"tags": {}}


async def tag_resource(c: Call) -> dict[str, Any]:
    c.arns.split(c.labels.get("resourceArn", ""), "resourceArn")
    raise errors.InvalidArgument(f"TagResource: {_IMMUTABLE}")


async def untag_resource(c: Call) -> dict[str, Any]:
    c.arns.split(c.labels.get("resourceArn", ""), "resourceArn")
    raise errors.InvalidArgument(f"UntagResource: {_IMMUTABLE}")
