"""shoal.v1 records -> AWS Batch's response shapes (JobDetail, JobSummary, JobDefinition, ...).

Field names and enum spellings are AWS's; times stay milliseconds since the epoch (as in
both APIs); names of queues, environments and definitions become ARNs where AWS returns ARNs.
"""

from __future__ import annotations

from typing import Any

from controller.http.awsbatch.arns import Arns
from shoal.v1 import batch_pb2, types_pb2


def status_name(status: int) -> str:
    return types_pb2.JobStatus.Name(status).removeprefix("JOB_STATUS_")


def _state(state: int) -> str:
    return "DISABLED" if state == types_pb2.ENTITY_STATE_DISABLED else "ENABLED"


def _vcpus(value: float) -> str:
    return f"{value:g}"


def container(props: types_pb2.ContainerProperties) -> dict[str, Any]:
    """ContainerProperties (definitions) / the properties part of ContainerDetail (jobs)."""
    res = props.resources
    out: dict[str, Any] = {
        "command": list(props.command),
        "environment": [{"name": kv.name, "value": kv.value} for kv in props.environment],
        "resourceRequirements": [],
        "volumes": [],
        "mountPoints": [],
        "ulimits": [{"name": u.name, "softLimit": u.soft_limit, "hardLimit": u.hard_limit} for u in props.ulimits],
        "privileged": props.privileged,
        "readonlyRootFilesystem": props.readonly_root_filesystem,
    }
    if props.image:
        out["image"] = props.image
    if res.vcpus:
        out["resourceRequirements"].append({"type": "VCPU", "value": _vcpus(res.vcpus)})
        if res.vcpus.is_integer():
            out["vcpus"] = int(res.vcpus)  # AWS's deprecated integer fields, for scripts that still read them
    if res.memory_mib:
        out["resourceRequirements"].append({"type": "MEMORY", "value": str(res.memory_mib)})
        out["memory"] = res.memory_mib
    if res.gpus:
        out["resourceRequirements"].append({"type": "GPU", "value": str(res.gpus)})
    for i, m in enumerate(props.mounts):
        name = f"volume-{i}"
        out["volumes"].append({"name": name, "host": {"sourcePath": m.source_path}})
        out["mountPoints"].append(
            {"sourceVolume": name, "containerPath": m.container_path or m.source_path, "readOnly": m.read_only}
        )
    if props.user:
        out["user"] = props.user
    if props.shared_memory_size_mib:
        out["linuxParameters"] = {"sharedMemorySize": props.shared_memory_size_mib}
    return out


def retry_strategy(s: types_pb2.RetryStrategy) -> dict[str, Any]:
    return {
        "attempts": s.attempts or 1,
        "evaluateOnExit": [
            {
                k: v
                for k, v in (
                    ("onExitCode", r.on_exit_code),
                    ("onReason", r.on_reason),
                    ("onStatusReason", r.on_status_reason),
                    ("action", types_pb2.RetryAction.Name(r.action).removeprefix("RETRY_ACTION_")),
                )
                if v
            }
            for r in s.evaluate_on_exit
        ],
    }


def _definition_arn(arns: Arns, ref: str) -> str:
    name, _, revision = ref.partition(":")
    return arns.definition(name, int(revision)) if revision.isdigit() else ref


def _is_child(job: types_pb2.Job | batch_pb2.JobSummary) -> bool:
    return ":" in job.job_id


def node_properties(props: types_pb2.NodeProperties) -> dict[str, Any]:
    """NodeProperties: numNodes, mainNode and each range's container (resolved, on a job)."""
    return {
        "numNodes": props.num_nodes,
        "mainNode": props.main_node,
        "nodeRangeProperties": [
            {"targetNodes": r.target_nodes, "container": container(r.container)} for r in props.node_range_properties
        ],
    }


def _times(out: dict[str, Any], created: int, started: int, stopped: int) -> None:
    out["createdAt"] = created
    if started:
        out["startedAt"] = started
    if stopped:
        out["stoppedAt"] = stopped


def job_detail(job: types_pb2.Job, arns: Arns) -> dict[str, Any]:
    out: dict[str, Any] = {
        "jobArn": arns.job(job.job_id),
        "jobName": job.job_name,
        "jobId": job.job_id,
        "jobQueue": arns.queue(job.job_queue),
        "status": status_name(job.status),
        "attempts": [],
        "dependsOn": [],
        "jobDefinition": _definition_arn(arns, job.job_definition) if job.job_definition else "",
        "parameters": dict(job.parameters),
        "tags": dict(job.tags),
        "retryStrategy": retry_strategy(job.retry_strategy),
        "propagateTags": False,
        "platformCapabilities": ["EC2"],
    }
    if job.status_reason:
        out["statusReason"] = job.status_reason
    if job.share_identifier:
        out["shareIdentifier"] = job.share_identifier
    if job.share_identifier or job.scheduling_priority:
        out["schedulingPriority"] = job.scheduling_priority
    _times(out, job.created_at, job.started_at, job.stopped_at)
    for a in job.attempts:
        attempt_container: dict[str, Any] = {}
        if a.HasField("exit_code"):
            attempt_container["exitCode"] = a.exit_code
        if a.reason:
            attempt_container["reason"] = a.reason
        attempt: dict[str, Any] = {"container": attempt_container, "statusReason": a.status_reason}
        if a.started_at:
            attempt["startedAt"] = a.started_at
        if a.stopped_at:
            attempt["stoppedAt"] = a.stopped_at
        out["attempts"].append(attempt)
    for d in job.depends_on:
        dep: dict[str, Any] = {"jobId": d.job_id}
        if d.type != types_pb2.DEPENDENCY_TYPE_UNSPECIFIED:
            dep["type"] = types_pb2.DependencyType.Name(d.type).removeprefix("DEPENDENCY_TYPE_")
        out["dependsOn"].append(dep)
    if job.node_properties.num_nodes:
        # A multi-node parent: its nodes' containers are in nodeProperties (AWS leaves
        # `container` out of a job with more than one container); each node is a job `ID#N`.
        out["nodeProperties"] = node_properties(job.node_properties)
    else:
        detail = container(job.container)
        if job.attempts:
            last = job.attempts[-1]
            if last.HasField("exit_code"):
                detail["exitCode"] = last.exit_code
            if last.reason:
                detail["reason"] = last.reason
        out["container"] = detail
    if job.HasField("node_details"):
        out["nodeDetails"] = {"nodeIndex": job.node_details.node_index, "isMainNode": job.node_details.is_main_node}
    if job.timeout.attempt_duration_seconds:
        out["timeout"] = {"attemptDurationSeconds": job.timeout.attempt_duration_seconds}
    if job.array_properties.size:
        out["arrayProperties"] = {"size": job.array_properties.size, "statusSummary": dict(job.array_status_summary)}
    elif _is_child(job):
        out["arrayProperties"] = {"index": job.array_properties.index}
    if job.terminate_reason:
        out["isTerminated"] = True
    return out


def _summary_head(s: batch_pb2.JobSummary | types_pb2.Job, arns: Arns) -> dict[str, Any]:
    """What every ListJobs row starts with (a job summary's or a whole job's fields)."""
    out: dict[str, Any] = {
        "jobArn": arns.job(s.job_id),
        "jobId": s.job_id,
        "jobName": s.job_name,
        "status": status_name(s.status),
    }
    if s.status_reason:
        out["statusReason"] = s.status_reason
    _times(out, s.created_at, s.started_at, s.stopped_at)
    return out


def job_summary(s: batch_pb2.JobSummary, arns: Arns) -> dict[str, Any]:
    out = _summary_head(s, arns)
    if s.HasField("exit_code"):
        out["container"] = {"exitCode": s.exit_code}
    if _is_child(s):
        out["arrayProperties"] = {"index": int(s.job_id.rpartition(":")[2])}
    if s.num_nodes:
        out["nodeProperties"] = {"numNodes": s.num_nodes}
    return out


def node_summary(job: types_pb2.Job, arns: Arns) -> dict[str, Any]:
    """A node `ID#N` of a multi-node job, as ListJobs(multiNodeJobId) lists it."""
    out = _summary_head(job, arns)
    if job.attempts and job.attempts[-1].HasField("exit_code"):
        out["container"] = {"exitCode": job.attempts[-1].exit_code}
    d = job.node_details
    out["nodeProperties"] = {"isMainNode": d.is_main_node, "numNodes": d.num_nodes, "nodeIndex": d.node_index}
    if job.job_definition:
        out["jobDefinition"] = _definition_arn(arns, job.job_definition)
    return out


def job_definition(d: types_pb2.JobDefinition, arns: Arns) -> dict[str, Any]:
    out: dict[str, Any] = {
        "jobDefinitionName": d.job_definition_name,
        "jobDefinitionArn": arns.definition(d.job_definition_name, d.revision),
        "revision": d.revision,
        "status": d.status or "ACTIVE",
        "type": "container",
        "parameters": dict(d.parameters),
        "tags": dict(d.tags),
        "platformCapabilities": ["EC2"],
    }
    if d.node_properties.num_nodes:
        out["type"] = "multinode"
        out["nodeProperties"] = node_properties(d.node_properties)
    else:
        out["containerProperties"] = container(d.container_properties)
    if d.scheduling_priority:
        out["schedulingPriority"] = d.scheduling_priority
    if d.HasField("retry_strategy"):
        out["retryStrategy"] = retry_strategy(d.retry_strategy)
    if d.timeout.attempt_duration_seconds:
        out["timeout"] = {"attemptDurationSeconds": d.timeout.attempt_duration_seconds}
    return out


def job_queue(q: types_pb2.JobQueue, arns: Arns) -> dict[str, Any]:
    out: dict[str, Any] = {
        "jobQueueName": q.job_queue_name,
        "jobQueueArn": arns.queue(q.job_queue_name),
        "state": _state(q.state),
        "status": "VALID",
        "statusReason": "JobQueue Healthy",
        "priority": q.priority,
        "computeEnvironmentOrder": [
            {"order": o.order, "computeEnvironment": arns.env(o.compute_environment)}
            for o in q.compute_environment_order
        ],
        "tags": {},
    }
    if q.scheduling_policy:
        out["schedulingPolicyArn"] = arns.policy(q.scheduling_policy)
    return out


def fairshare_policy(p: types_pb2.FairsharePolicy) -> dict[str, Any]:
    return {
        "shareDecaySeconds": p.share_decay_seconds,
        "computeReservation": p.compute_reservation,
        "shareDistribution": [
            {"shareIdentifier": s.share_identifier, "weightFactor": s.weight_factor} for s in p.share_distribution
        ],
    }


def scheduling_policy(p: types_pb2.SchedulingPolicy, arns: Arns) -> dict[str, Any]:
    return {
        "name": p.name,
        "arn": arns.policy(p.name),
        "fairsharePolicy": fairshare_policy(p.fairshare_policy),
        "tags": dict(p.tags),
    }


PROVISIONER_TAG = "shoal:provisioner"
COMMAND_TAG = "shoal:provisioner-command"
NODE_VCPUS_TAG = "shoal:node-vcpus"
NODE_MEMORY_TAG = "shoal:node-memory-mib"
PROVISIONER_TAGS = (PROVISIONER_TAG, COMMAND_TAG, NODE_VCPUS_TAG, NODE_MEMORY_TAG)


def provisioner_tags(p: types_pb2.Provisioner) -> dict[str, str]:
    import shlex

    tags = {PROVISIONER_TAG: p.kind, NODE_VCPUS_TAG: _vcpus(p.node_vcpus), NODE_MEMORY_TAG: str(p.node_memory_mib)}
    if p.command:
        tags[COMMAND_TAG] = shlex.join(p.command)
    return tags


def compute_environment(e: types_pb2.ComputeEnvironment, arns: Arns) -> dict[str, Any]:
    managed = e.type == types_pb2.COMPUTE_ENVIRONMENT_TYPE_MANAGED
    out: dict[str, Any] = {
        "computeEnvironmentName": e.compute_environment_name,
        "computeEnvironmentArn": arns.env(e.compute_environment_name),
        "type": "MANAGED" if managed else "UNMANAGED",
        "state": _state(e.state),
        "status": "VALID",
        "statusReason": "ComputeEnvironment Healthy",
        "tags": {},
    }
    if managed:
        out["computeResources"] = {
            "type": "EC2",
            "allocationStrategy": "BEST_FIT",
            "minvCpus": e.min_vcpus,
            "maxvCpus": e.max_vcpus,
            "desiredvCpus": e.desired_vcpus,
            "tags": provisioner_tags(e.provisioner),
        }
    return out
