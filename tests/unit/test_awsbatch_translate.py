"""AWS JSON -> shoal.v1 requests and back: every field translated or refused by name."""

from __future__ import annotations

import pytest

from controller.http.awsbatch import catalog, jobs, shapes
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
        ({"shareIdentifier": "a"}, "shareIdentifier: not supported by shoal yet"),
        ({"schedulingPriorityOverride": 3}, "schedulingPriorityOverride: not supported by shoal yet"),
        ({"nodeOverrides": {"numNodes": 2}}, "nodeOverrides: not supported by shoal yet"),
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
        ({"type": "multinode"}, "multinode job definitions are not supported by shoal yet"),
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
