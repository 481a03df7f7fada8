"""AWS JSON -> shoal.v1 requests and back: every field translated or refused by name."""

from __future__ import annotations

import pytest

from controller.http.awsbatch import catalog, jobs, policies, shapes
from controller.http.awsbatch.arns import Arns
from controller.http.awsbatch.jsonbody import Obj
from controller.http.awsbatch.protocol import ERRORS, error_of
from shoal import errors
from shoal.v1 import types_pb2

pytestmark = pytest.mark.unit

ARNS = Arns("eu-west-1", "123456789012")


def submit(body: dict) -> object:
    return jobs.submit_request(Obj(body, "", "SubmitJob"), ARNS)


def refused(fn, body: dict, operation: str) -> str:  # noqa: ANN001
    with pytest.raises(errors.InvalidArgument) as err:
        fn(Obj(body, "", operation))
    return err.value.message


def test_submit_job_maps_every_supported_field() -> None:
    req = submit({
        "jobName": "j", "jobQueue": "arn:aws:batch:eu-west-1:123456789012:job-queue/q",
        "jobDefinition": "arn:aws:batch:eu-west-1:123456789012:job-definition/d:3",
        "arrayProperties": {"size": 5},
        "dependsOn": [{"jobId": "a"}, {"jobId": "arn:aws:batch:eu-west-1:123456789012:job/b", "type": "N_TO_N"}],
        "parameters": {"p": "1"}, "tags": {"t": "2"},
        "containerOverrides": {"command": ["x"], "environment": [{"name": "E", "value": "v"}],
                               "resourceRequirements": [{"type": "VCPU", "value": "0.5"}, {"type": "MEMORY", "value": "64"}]},
        "retryStrategy": {"attempts": 3, "evaluateOnExit": [{"onExitCode": "1*", "action": "exit"}]},
        "timeout": {"attemptDurationSeconds": 60},
        "propagateTags": False,
    })
    assert (req.job_name, req.job_queue, req.job_definition) == ("j", "q", "d:3")
    assert req.array_properties.size == 5
    assert [(d.job_id, d.type) for d in req.depends_on] == [("a", 0), ("b", types_pb2.DEPENDENCY_TYPE_N_TO_N)]
    assert dict(req.parameters) == {"p": "1"} and dict(req.tags) == {"t": "2"}
    o = req.container_overrides
    assert list(o.command) == ["x"] and o.vcpus == 0.5 and o.memory_mib == 64 and o.environment[0].name == "E"
    assert req.retry_strategy.attempts == 3
    assert req.retry_strategy.evaluate_on_exit[0].action == types_pb2.RETRY_ACTION_EXIT
    assert req.timeout.attempt_duration_seconds == 60


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"schedulingPriorityOverride": "3"}, "schedulingPriorityOverride: expected a whole number"),
        ({"nodeOverrides": {"numNodes": 0}}, "nodeOverrides.numNodes: must be >= 1"),
        ({"nodeOverrides": {"nodePropertyOverrides": [{"targetNodes": "0:"}, {"targetNodes": "1"}]}},
         "nodeOverrides.nodePropertyOverrides[1]: not supported by shoal: node overrides apply to every node alike"),
        ({"nodeOverrides": {"nodePropertyOverrides": [{"targetNodes": "0:", "instanceTypes": ["m5"]}]}},
         "nodeOverrides.nodePropertyOverrides[0].instanceTypes: not supported by shoal: MANAGED environments"),
        ({"nodeOverrides": {"nodePropertyOverrides": [{"targetNodes": "0:", "containerOverrides": {"instanceType": "m5"}}]}},
         "nodeOverrides.nodePropertyOverrides[0].containerOverrides.instanceType: not supported by shoal: MANAGED"),
        ({"nodeOverrides": {"nodePropertyOverrides": [{"containerOverrides": {}}]}},
         "nodeOverrides.nodePropertyOverrides[0].targetNodes: is required"),
        ({"containerOverrides": {"command": ["a"]}, "nodeOverrides": {"nodePropertyOverrides": [
            {"targetNodes": "0:", "containerOverrides": {"command": ["b"]}}]}}, "give the overrides once"),
        ({"eksPropertiesOverride": {}}, "eksPropertiesOverride: not supported by shoal"),
        ({"propagateTags": True}, "propagateTags: not supported by shoal"),
        ({"propagateTags": 0}, "propagateTags: not supported by shoal"),
        ({"containerOverrides": {"instanceType": "m5.large"}}, "containerOverrides.instanceType: not supported"),
        ({"containerOverrides": {"resourceRequirements": [{"type": "GPU", "value": "1"}]}}, "GPU overrides"),
        ({"dependsOn": [{"jobId": "a", "type": "AFTER_ANY"}]}, "dependsOn[0].type"),
        ({"jobQueue": "arn:aws:batch:us-east-1:123456789012:job-queue/q"}, "region 'us-east-1'"),
        ({"jobQueue": "arn:aws:batch:eu-west-1:123456789012:compute-environment/q"}, "not a job-queue ARN"),
        ({"somethingElse": 1}, "somethingElse: not supported by shoal"),
        ({"timeout": {"attemptDurationSeconds": "60"}}, "timeout.attemptDurationSeconds: expected a whole number"),
    ],
)
def test_submit_job_refuses_what_shoal_does_not_support_naming_the_field(extra: dict, words: str) -> None:
    body = {"jobName": "j", "jobQueue": "q", "jobDefinition": "d", **extra}
    assert words in refused(lambda b: jobs.submit_request(b, ARNS), body, "SubmitJob")


def test_submit_job_maps_fair_share_and_node_overrides() -> None:
    req, nodes = jobs.read_submit(Obj({
        "jobName": "j", "jobQueue": "q", "jobDefinition": "d", "shareIdentifier": "teamA", "schedulingPriorityOverride": 7,
        "nodeOverrides": {"numNodes": 3, "nodePropertyOverrides": [
            {"targetNodes": "0:", "containerOverrides": {"command": ["x"], "environment": [{"name": "E", "value": "v"}]}}]},
    }, "", "SubmitJob"), ARNS)
    assert req.share_identifier == "teamA" and req.scheduling_priority_override == 7
    assert list(req.container_overrides.command) == ["x"] and req.container_overrides.environment[0].value == "v"
    assert nodes == jobs.NodeOverrides(3, ("nodeOverrides.nodePropertyOverrides[0].targetNodes", "0:"))
    plain = submit({"jobName": "j", "jobQueue": "q", "jobDefinition": "d"})
    assert not plain.HasField("scheduling_priority_override") and not plain.HasField("node_properties")


def test_register_job_definition_uses_the_definition_file_parser() -> None:
    req = catalog.register_request(Obj({
        "jobDefinitionName": "d", "type": "container", "platformCapabilities": ["EC2"],
        "containerProperties": {
            "image": "alpine", "command": ["echo"], "resourceRequirements": [{"type": "VCPU", "value": "2"},
                                                                           {"type": "GPU", "value": "1"}],
            "volumes": [{"name": "v", "host": {"sourcePath": "/srv"}}],
            "mountPoints": [{"sourceVolume": "v", "containerPath": "/data", "readOnly": True}],
            "linuxParameters": {"sharedMemorySize": 64}, "ulimits": [{"name": "nofile", "softLimit": 1, "hardLimit": 2}],
        },
        "retryStrategy": {"attempts": 2},
    }, "", "RegisterJobDefinition"))
    p = req.container_properties
    assert p.image == "alpine" and p.resources.vcpus == 2 and p.resources.gpus == 1
    assert (p.mounts[0].source_path, p.mounts[0].container_path, p.mounts[0].read_only) == ("/srv", "/data", True)
    assert p.shared_memory_size_mib == 64 and p.ulimits[0].hard_limit == 2 and req.retry_strategy.attempts == 2


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"type": "multinode"}, "nodeProperties: is required for type multinode"),
        ({"type": "batch"}, "type: must be container or multinode"),
        ({"nodeProperties": {"numNodes": 2}}, "nodeProperties: is for type multinode"),
        ({"schedulingPriority": "high"}, "schedulingPriority: expected a whole number"),
        ({"schedulingPriority": 10000}, "schedulingPriority: expected a whole number 0-9999"),
        ({"type": "multinode", "containerProperties": None, "nodeProperties": {"numNodes": 2, "mainNode": 0, "nodeRangeProperties": [
            {"targetNodes": "0:", "container": {"command": ["x"]}, "instanceTypes": ["m5"]}]}},
         "nodeProperties.nodeRangeProperties[0].instanceTypes: not supported by shoal: MANAGED environments"),
        ({"type": "multinode", "containerProperties": None, "nodeProperties": {"numNodes": 2, "mainNode": 0, "nodeRangeProperties": [
            {"targetNodes": "0:", "container": {"command": ["x"], "jobRoleArn": "r"}}]}},
         "nodeProperties.nodeRangeProperties[0].container.jobRoleArn: not supported by shoal: there is no IAM"),
        ({"type": "multinode", "nodeProperties": {"numNodes": 2, "nodeRangeProperties": []}},
         "containerProperties: not for type multinode"),
        ({"type": "multinode", "containerProperties": None, "nodeProperties": {"numNodes": 0, "nodeRangeProperties": [
            {"targetNodes": "0:", "container": {"command": ["x"]}}]}}, "nodeProperties.numNodes: expected a whole number >= 1"),
        ({"platformCapabilities": ["FARGATE"]}, "platformCapabilities: not supported by shoal: there is no Fargate"),
        ({"containerProperties": {"command": ["x"], "jobRoleArn": "arn"}}, "containerProperties.jobRoleArn: not supported by shoal: there is no IAM"),
        ({"containerProperties": {"command": ["x"], "volumes": [{"name": "v", "efsVolumeConfiguration": {"fileSystemId": "f"}}]}},
         "containerProperties.volumes[0].efsVolumeConfiguration: not supported"),
        ({"containerProperties": {"command": ["x"], "linuxParameters": {"devices": []}}}, "linuxParameters.devices"),
        ({"containerProperties": {"vcpus": "two"}}, "containerProperties.vcpus: expected a number"),
    ],
)
def test_register_job_definition_refusals_name_the_field(change: dict, words: str) -> None:
    body = {"jobDefinitionName": "d", "type": "container", "containerProperties": {"command": ["x"]}, **change}
    assert words in refused(catalog.register_request, body, "RegisterJobDefinition")


def test_register_multinode_definition_with_scheduling_priority() -> None:
    req = catalog.register_request(Obj({
        "jobDefinitionName": "mpi", "type": "multinode", "schedulingPriority": 40,
        "nodeProperties": {"numNodes": 3, "mainNode": 1, "nodeRangeProperties": [
            {"targetNodes": "1", "container": {"command": ["main"], "vcpus": 2}},
            {"targetNodes": "0", "container": {"command": ["w"]}},
            {"targetNodes": "2:", "container": {"command": ["w"], "resourceRequirements": [{"type": "MEMORY", "value": "64"}]}}]},
    }, "", "RegisterJobDefinition"))
    n = req.node_properties
    assert (n.num_nodes, n.main_node, req.scheduling_priority) == (3, 1, 40)
    assert [r.target_nodes for r in n.node_range_properties] == ["1", "0", "2:"]
    assert n.node_range_properties[0].container.resources.vcpus == 2
    assert n.node_range_properties[2].container.resources.memory_mib == 64
    assert not req.HasField("container_properties")


def test_multinode_and_fair_share_shapes() -> None:
    props = types_pb2.NodeProperties(num_nodes=2, main_node=0)
    props.node_range_properties.add(target_nodes="0:", container=types_pb2.ContainerProperties(command=["x"]))
    parent = types_pb2.Job(job_id="p", job_name="n", job_queue="fq", share_identifier="teamA", scheduling_priority=5,
                           node_properties=props, job_definition="mpi:1")
    d = shapes.job_detail(parent, ARNS)
    assert d["shareIdentifier"] == "teamA" and d["schedulingPriority"] == 5
    assert d["nodeProperties"]["numNodes"] == 2 and d["nodeProperties"]["nodeRangeProperties"][0]["container"]["command"] == ["x"]
    assert "container" not in d and "nodeDetails" not in d
    child = types_pb2.Job(job_id="p#1", job_name="n", job_queue="fq",
                          node_details=types_pb2.NodeDetails(node_index=1, is_main_node=False, num_nodes=2))
    c = shapes.job_detail(child, ARNS)
    assert c["nodeDetails"] == {"nodeIndex": 1, "isMainNode": False} and "arrayProperties" not in c and "container" in c
    assert shapes.node_summary(child, ARNS)["nodeProperties"] == {"isMainNode": False, "numNodes": 2, "nodeIndex": 1}
    plain = shapes.job_detail(types_pb2.Job(job_id="j", job_queue="q"), ARNS)
    assert "shareIdentifier" not in plain and "schedulingPriority" not in plain and "nodeProperties" not in plain
    definition = shapes.job_definition(types_pb2.JobDefinition(job_definition_name="mpi", revision=1, node_properties=props,
                                                               scheduling_priority=9), ARNS)
    assert definition["type"] == "multinode" and "containerProperties" not in definition
    assert definition["schedulingPriority"] == 9 and definition["nodeProperties"]["mainNode"] == 0
    queue = shapes.job_queue(types_pb2.JobQueue(job_queue_name="fq", scheduling_policy="fair"), ARNS)
    assert queue["schedulingPolicyArn"] == "arn:aws:batch:eu-west-1:123456789012:scheduling-policy/fair"
    assert "schedulingPolicyArn" not in shapes.job_queue(types_pb2.JobQueue(job_queue_name="q"), ARNS)


def test_scheduling_policy_arns_are_required_where_aws_takes_an_arn() -> None:
    assert ARNS.arn_name("arn:aws:batch:eu-west-1:123456789012:scheduling-policy/p", "scheduling-policy", "arn") == "p"
    with pytest.raises(errors.InvalidArgument, match="arn: 'p' is not an ARN; give arn:aws:batch:eu-west-1:123456789012:scheduling-policy/p"):
        ARNS.arn_name("p", "scheduling-policy", "arn")
    with pytest.raises(errors.InvalidArgument, match="is a job-queue ARN, not a scheduling-policy ARN"):
        ARNS.arn_name("arn:aws:batch:eu-west-1:123456789012:job-queue/p", "scheduling-policy", "arn")


def test_fairshare_policy_maps_field_for_field_and_weight_defaults_to_one() -> None:
    p = policies.fairshare_policy(Obj({"shareDecaySeconds": 3600, "computeReservation": 50, "shareDistribution": [
        {"shareIdentifier": "teamA", "weightFactor": 0.5}, {"shareIdentifier": "ml*"}]}, "fairsharePolicy", "CreateSchedulingPolicy"))
    assert (p.share_decay_seconds, p.compute_reservation) == (3600, 50)
    assert [(s.share_identifier, s.weight_factor) for s in p.share_distribution] == [("teamA", 0.5), ("ml*", 1.0)]
    assert shapes.fairshare_policy(p)["shareDistribution"][1] == {"shareIdentifier": "ml*", "weightFactor": 1.0}
    for body, words in (
        ({"shareDistribution": [{"weightFactor": 1}]}, "fairsharePolicy.shareDistribution[0].shareIdentifier: is required"),
        ({"shareDistribution": [{"shareIdentifier": "a", "weightFactor": "1"}]}, "weightFactor: expected a number"),
        ({"shareDecaySeconds": -1}, "fairsharePolicy.shareDecaySeconds: must be >= 0"),
        ({"quotaShare": 1}, "fairsharePolicy.quotaShare: not supported by shoal"),
    ):
        with pytest.raises(errors.InvalidArgument) as err:
            policies.fairshare_policy(Obj(body, "fairsharePolicy", "CreateSchedulingPolicy"))
        assert words in err.value.message


def test_job_detail_has_aws_names_and_arns() -> None:
    job = types_pb2.Job(job_id="abc:3", job_name="n", job_queue="q", status=types_pb2.JOB_STATUS_FAILED,
                        status_reason="Essential container in task exited", job_definition="d:2", created_at=5,
                        array_properties=types_pb2.ArrayProperties(index=3))
    job.attempts.add(exit_code=1, status_reason="Essential container in task exited", started_at=6, stopped_at=7)
    job.container.resources.vcpus = 0.5
    d = shapes.job_detail(job, ARNS)
    assert d["jobArn"] == "arn:aws:batch:eu-west-1:123456789012:job/abc:3"
    assert d["jobQueue"] == "arn:aws:batch:eu-west-1:123456789012:job-queue/q"
    assert d["jobDefinition"] == "arn:aws:batch:eu-west-1:123456789012:job-definition/d:2"
    assert d["status"] == "FAILED" and d["container"]["exitCode"] == 1 and d["attempts"][0]["container"]["exitCode"] == 1
    assert d["arrayProperties"] == {"index": 3}
    assert {"type": "VCPU", "value": "0.5"} in d["container"]["resourceRequirements"]


def test_every_shoal_error_class_has_an_aws_error() -> None:
    for cls in (errors.InvalidArgument, errors.NotFound, errors.AlreadyExists, errors.FailedPrecondition):
        assert error_of(cls("x")) == (400, "ClientException")
    assert error_of(errors.NotLeader("x", "h:1")) == (503, "ServerException")
    assert error_of(errors.PermissionDenied("x"))[0] == 403
    assert error_of(errors.ShoalError("x")) == (500, "ServerException")
    assert len({cls for cls, _, _ in ERRORS}) == len(ERRORS)


@pytest.mark.parametrize(
    ("shoal_message", "aws_message"),
    [
        ("job_queue: job queue 'q' does not exist", "jobQueue: job queue 'q' does not exist"),
        ("container_overrides.memory_mib: must be 4..16 MiB", "containerOverrides.memory: must be 4..16 MiB"),
        ("container_properties.resources.vcpus: must be > 0", "containerProperties.vcpus: must be > 0"),
        ("depends_on[0].job_id: job 'x' does not exist", "dependsOn[0].jobId: job 'x' does not exist"),
        ("job queue 'default' already exists", "job queue 'default' already exists"),
    ],
)
def test_shoal_field_paths_in_messages_become_the_request_field_names(shoal_message: str, aws_message: str) -> None:
    from controller.http.awsbatch.protocol import aws_field_names

    assert aws_field_names(shoal_message) == aws_message
