"""Every operation of AWS Batch's service model, its route, and what answers it.

The routes are botocore's `batch` model's own (http.method, http.requestUri); a unit test
(tests/unit/test_awsbatch_model.py) walks the model installed with botocore and fails when an
operation is missing here, routed differently, or has no handler. botocore is not needed at run
time: the table is plain data.
"""

from __future__ import annotations

from typing import Any

from controller.http.awsbatch import catalog, jobs, policies, tags, unsupported
from controller.http.awsbatch.protocol import Call, Handler, Operation
from shoal import errors

_POST = (
    "CancelJob", "CancelJobs", "CreateComputeEnvironment", "CreateConsumableResource", "CreateJobQueue",
    "CreateQuotaShare", "CreateSchedulingPolicy", "CreateServiceEnvironment", "DeleteComputeEnvironment",
    "DeleteConsumableResource", "DeleteJobQueue", "DeleteQuotaShare", "DeleteSchedulingPolicy",
    "DeleteServiceEnvironment", "DeregisterJobDefinition", "DescribeComputeEnvironments",
    "DescribeConsumableResource", "DescribeJobDefinitions", "DescribeJobQueues", "DescribeJobs",
    "DescribeQuotaShare", "DescribeSchedulingPolicies", "DescribeServiceEnvironments", "DescribeServiceJob",
    "GetJobQueueSnapshot", "ListConsumableResources", "ListJobs", "ListJobsByConsumableResource",
    "ListQuotaShares", "ListSchedulingPolicies", "ListServiceJobs", "RegisterJobDefinition", "SubmitJob",
    "SubmitServiceJob", "TerminateJob", "TerminateJobs", "TerminateServiceJob", "TerminateServiceJobs",
    "UpdateComputeEnvironment", "UpdateConsumableResource", "UpdateJobQueue", "UpdateQuotaShare",
    "UpdateSchedulingPolicy", "UpdateServiceEnvironment", "UpdateServiceJob",
)

OPERATIONS: list[Operation] = [Operation(name, "POST", "/v1/" + name.lower()) for name in _POST] + [
    Operation("ListTagsForResource", "GET", "/v1/tags/{resourceArn}"),
    Operation("TagResource", "POST", "/v1/tags/{resourceArn}"),
    Operation("UntagResource", "DELETE", "/v1/tags/{resourceArn}"),
]

HANDLERS: dict[str, Handler] = {
    "SubmitJob": jobs.submit_job,
    "DescribeJobs": jobs.describe_jobs,
    "ListJobs": jobs.list_jobs,
    "CancelJob": jobs.cancel_job,
    "TerminateJob": jobs.terminate_job,
    "CancelJobs": jobs.cancel_jobs,
    "TerminateJobs": jobs.terminate_jobs,
    "RegisterJobDefinition": catalog.register_job_definition,
    "DescribeJobDefinitions": catalog.describe_job_definitions,
    "DeregisterJobDefinition": catalog.deregister_job_definition,
    "CreateJobQueue": catalog.create_job_queue,
    "UpdateJobQueue": catalog.update_job_queue,
    "DeleteJobQueue": catalog.delete_job_queue,
    "DescribeJobQueues": catalog.describe_job_queues,
    "CreateComputeEnvironment": catalog.create_compute_environment,
    "UpdateComputeEnvironment": catalog.update_compute_environment,
    "DeleteComputeEnvironment": catalog.delete_compute_environment,
    "DescribeComputeEnvironments": catalog.describe_compute_environments,
    "CreateSchedulingPolicy": policies.create_scheduling_policy,
    "UpdateSchedulingPolicy": policies.update_scheduling_policy,
    "DeleteSchedulingPolicy": policies.delete_scheduling_policy,
    "DescribeSchedulingPolicies": policies.describe_scheduling_policies,
    "ListSchedulingPolicies": policies.list_scheduling_policies,
    "ListTagsForResource": tags.list_tags_for_resource,
    "TagResource": tags.tag_resource,
    "UntagResource": tags.untag_resource,
}

# Operations with no meaning here: answered, with the reason, never a 404.
REFUSED: dict[str, str] = {
    "GetJobQueueSnapshot": "not supported by shoal: use `shoal why JOB_ID` for why a job waits",
}
for _name in ("CreateQuotaShare", "UpdateQuotaShare", "DeleteQuotaShare", "DescribeQuotaShare", "ListQuotaShares"):
    REFUSED[_name] = unsupported.NO_QUOTA_SHARES
for _name in ("CreateConsumableResource", "UpdateConsumableResource", "DeleteConsumableResource",
              "DescribeConsumableResource", "ListConsumableResources", "ListJobsByConsumableResource"):
    REFUSED[_name] = unsupported.NO_CONSUMABLE
for _name in ("CreateServiceEnvironment", "UpdateServiceEnvironment", "DeleteServiceEnvironment",
              "DescribeServiceEnvironments", "SubmitServiceJob", "DescribeServiceJob", "ListServiceJobs",
              "TerminateServiceJob", "TerminateServiceJobs", "UpdateServiceJob"):
    REFUSED[_name] = "not supported by shoal: there are no service environments (SageMaker)"


def _refuse(name: str, why: str) -> Handler:
    async def refuse(_c: Call) -> dict[str, Any]:
        raise errors.InvalidArgument(f"{name} is {why}" if why.startswith("not supported") else f"{name}: {why}")

    return refuse


def handlers() -> dict[str, Handler]:
    """Every operation -> its handler (a refusal for those in REFUSED)."""
    table = dict(HANDLERS)
    for name, why in REFUSED.items():
        table.setdefault(name, _refuse(name, why))
    return table
