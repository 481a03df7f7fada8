"""The one table of AWS Batch request fields shoal does not support, and why.

Every field a request carries is either translated to shoal's API or refused with a
ClientException naming it (`jsonbody.Obj.done`): none is silently dropped. This table only
gives the refusal its reason. Paths are dotted, list indices left out
("containerProperties.volumes.efsVolumeConfiguration"). A node range's container and a node
override's containerOverrides are looked up as containerProperties.* / containerOverrides.*
(`reason` maps them), so one entry covers a container wherever it appears.

Fair share (shareIdentifier, schedulingPriority(Override), schedulingPolicyArn, the scheduling
policy operations) and multi-node parallel jobs (nodeProperties, nodeOverrides,
ListJobs multiNodeJobId) are translated (jobs.py, catalog.py, policies.py); what of them shoal
cannot honour is listed here: unmanagedvCpus, quotaSharePolicy, per-range node overrides.
"""

from __future__ import annotations

NO_ECS = "not supported by shoal: jobs run as processes or podman/docker containers, not ECS tasks"
NO_EKS = "not supported by shoal: there is no EKS"
NO_IAM = "not supported by shoal: there is no IAM; access keys map to shoal roles (controller --aws-credentials-file)"
NO_FARGATE = "not supported by shoal: there is no Fargate"
NO_CONSUMABLE = "not supported by shoal: there are no consumable resources"
NO_EC2 = "not supported by shoal: MANAGED environments get hosts from a shoal provisioner, not EC2 (see README)"
NO_TAGS = "not supported by shoal: job queues and compute environments carry no tags"
NO_PROPAGATE = "not supported by shoal: there is no ECS task to propagate tags to (only false is accepted)"
NO_LOGS = "not supported by shoal: logs are kept by the agent (shoal logs JOB_ID)"
NO_QUOTA_SHARES = "not supported by shoal: there are no quota shares (fair-share scheduling policies are)"
NO_UNMANAGED_VCPUS = (
    "not supported by shoal: a fair-share queue's computeReservation is a share of the vCPUs its "
    "environments' agents offer now, not of a declared maximum"
)
NODE_OVERRIDES_ALIKE = (
    "not supported by shoal: node overrides apply to every node alike (one nodePropertyOverrides "
    "entry whose targetNodes covers every node, such as '0:')"
)

_COMMON: dict[str, str] = {
    "quotaSharePolicy": NO_QUOTA_SHARES,
    "nodeOverrides.nodePropertyOverrides": NODE_OVERRIDES_ALIKE,
    "nodeOverrides.nodePropertyOverrides.instanceTypes": NO_EC2,
    "nodeOverrides.nodePropertyOverrides.ecsPropertiesOverride": NO_ECS,
    "nodeOverrides.nodePropertyOverrides.eksPropertiesOverride": NO_EKS,
    "nodeOverrides.nodePropertyOverrides.consumableResourcePropertiesOverride": NO_CONSUMABLE,
    "nodeProperties.nodeRangeProperties.instanceTypes": NO_EC2,
    "nodeProperties.nodeRangeProperties.ecsProperties": NO_ECS,
    "nodeProperties.nodeRangeProperties.eksProperties": NO_EKS,
    "nodeProperties.nodeRangeProperties.consumableResourceProperties": NO_CONSUMABLE,
    "eksPropertiesOverride": NO_EKS,
    "ecsPropertiesOverride": NO_ECS,
    "eksProperties": NO_EKS,
    "ecsProperties": NO_ECS,
    "eksConfiguration": NO_EKS,
    "ecsSettings": NO_ECS,
    "consumableResourcePropertiesOverride": NO_CONSUMABLE,
    "consumableResourceProperties": NO_CONSUMABLE,
    "propagateTags": NO_PROPAGATE,
    "platformCapabilities": NO_FARGATE + " (only [\"EC2\"] is accepted)",
    "serviceRole": NO_IAM,
    "context": "not supported by shoal",
    "updatePolicy": "not supported by shoal: updating an environment never touches running jobs",
    "unmanagedvCpus": NO_UNMANAGED_VCPUS,
    "serviceEnvironmentOrder": "not supported by shoal: there are no service environments",
    "jobQueueType": NO_ECS,
    "jobStateTimeLimitActions": "not supported by shoal yet: RUNNABLE time limits",
    "containerOverrides.instanceType": NO_EC2,
    "containerProperties.instanceType": NO_EC2,
    "containerProperties.jobRoleArn": NO_IAM,
    "containerProperties.executionRoleArn": NO_IAM,
    "containerProperties.logConfiguration": NO_LOGS,
    "containerProperties.secrets": "not supported by shoal: mark environment entries secret (see README, Secrets)",
    "containerProperties.networkConfiguration": NO_FARGATE,
    "containerProperties.fargatePlatformConfiguration": NO_FARGATE,
    "containerProperties.ephemeralStorage": NO_FARGATE,
    "containerProperties.runtimePlatform": NO_FARGATE,
    "containerProperties.repositoryCredentials": "not supported by shoal: log in to the registry on the nodes",
    "containerProperties.enableExecuteCommand": NO_ECS,
    "containerProperties.volumes.efsVolumeConfiguration": "not supported by shoal: mount EFS/NFS on the hosts and use host.sourcePath",
    "containerProperties.volumes.s3filesVolumeConfiguration": "not supported by shoal: use host.sourcePath",
    "containerProperties.linuxParameters.devices": "not supported by shoal: only sharedMemorySize",
    "containerProperties.linuxParameters.initProcessEnabled": "not supported by shoal: only sharedMemorySize",
    "containerProperties.linuxParameters.tmpfs": "not supported by shoal: only sharedMemorySize",
    "containerProperties.linuxParameters.maxSwap": "not supported by shoal: swap is never given (memory is a hard limit)",
    "containerProperties.linuxParameters.swappiness": "not supported by shoal: swap is never given (memory is a hard limit)",
    "computeResources.instanceTypes": NO_EC2,
    "computeResources.imageId": NO_EC2,
    "computeResources.subnets": NO_EC2,
    "computeResources.securityGroupIds": NO_EC2,
    "computeResources.ec2KeyPair": NO_EC2,
    "computeResources.instanceRole": NO_IAM,
    "computeResources.placementGroup": NO_EC2,
    "computeResources.bidPercentage": NO_EC2,
    "computeResources.spotIamFleetRole": NO_IAM,
    "computeResources.launchTemplate": NO_EC2,
    "computeResources.ec2Configuration": NO_EC2,
    "computeResources.scalingPolicy": "not supported by shoal: scale-in delay is controller --scale-in-idle",
    "computeResources.managedInstancesProvider": NO_EC2,
    "computeResources.capacityTags": NO_EC2,
    "computeResources.updateToLatestImageVersion": NO_EC2,
    "computeResources.allocationStrategy": "not supported by shoal: placement is always BEST_FIT (only BEST_FIT is accepted)",
}

_BY_OPERATION: dict[str, dict[str, str]] = {
    "CreateJobQueue": {"tags": NO_TAGS},
    "CreateComputeEnvironment": {"tags": NO_TAGS},
}

# Values that mean "what shoal does anyway": accepted, since they ask for nothing shoal lacks.
HARMLESS: dict[str, tuple[object, ...]] = {
    "propagateTags": (False,),
    "platformCapabilities": (["EC2"], []),
    "computeResources.allocationStrategy": ("BEST_FIT",),
}


# Where a container sits inside another shape: looked up as the top-level one.
_CONTAINERS = (
    ("nodeProperties.nodeRangeProperties.container.", "containerProperties."),
    ("nodeOverrides.nodePropertyOverrides.containerOverrides.", "containerOverrides."),
)


def table_path(path: str) -> str:
    """The path under which `path` is in the tables (a nested container as a top-level one)."""
    for nested, top in _CONTAINERS:
        if path.startswith(nested):
            return top + path[len(nested) :]
    return path


def reason(operation: str, path: str) -> str:
    """Why `path` of `operation`'s request is refused."""
    path = table_path(path)
    return _BY_OPERATION.get(operation, {}).get(path) or _COMMON.get(path) or "not supported by shoal"
