"""Job definition files (AWS Batch's YAML shape) -> RegisterJobDefinitionRequest."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoal.jobdef import JobDefinitionFileError, load_file, parse_text
from shoal.v1 import types_pb2

pytestmark = pytest.mark.unit

FULL = """\
jobDefinitionName: hello
type: container
containerProperties:
  command: ["sh", "-c", "echo hello $NAME"]
  image: ""
  vcpus: 1
  memory: 256
  environment: [{name: NAME, value: world}, {name: N, value: 3}]
  runtime: process
retryStrategy:
  attempts: 3
  evaluateOnExit:
    - {onExitCode: 1, action: retry}
    - {onStatusReason: "Host*", action: RETRY}
    - {onReason: "*", action: EXIT}
timeout: {attemptDurationSeconds: 60}
parameters: {size: 10}
tags: {team: ml}
"""


def write(tmp_path: Path, text: str, name: str = "F.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_full_file(tmp_path: Path) -> None:
    request = load_file(write(tmp_path, FULL))
    assert request.job_definition_name == "hello"
    c = request.container_properties
    assert list(c.command) == ["sh", "-c", "echo hello $NAME"]
    assert (c.resources.vcpus, c.resources.memory_mib, c.runtime, c.image) == (1.0, 256, "process", "")
    assert [(kv.name, kv.value) for kv in c.environment] == [("NAME", "world"), ("N", "3")]
    r = request.retry_strategy
    assert r.attempts == 3
    assert [(e.on_exit_code, e.on_status_reason, e.on_reason, e.action) for e in r.evaluate_on_exit] == [
        ("1", "", "", types_pb2.RETRY_ACTION_RETRY),
        ("", "Host*", "", types_pb2.RETRY_ACTION_RETRY),
        ("", "", "*", types_pb2.RETRY_ACTION_EXIT),
    ]
    assert request.timeout.attempt_duration_seconds == 60
    assert dict(request.parameters) == {"size": "10"} and dict(request.tags) == {"team": "ml"}


def test_resource_requirements_and_environment_mapping() -> None:
    request = parse_text(
        """
jobDefinitionName: aws-style
containerProperties:
  command: [python, train.py]
  resourceRequirements: [{type: VCPU, value: "0.5"}, {type: MEMORY, value: "2048"}, {type: GPU, value: "1"}]
  environment: {EPOCHS: "10", LR: 0.1}
"""
    )
    resources = request.container_properties.resources
    assert (resources.vcpus, resources.memory_mib, resources.gpus) == (0.5, 2048, 1)
    assert [(kv.name, kv.value) for kv in request.container_properties.environment] == [
        ("EPOCHS", "10"),
        ("LR", "0.1"),
    ]
    assert not request.HasField("retry_strategy") and not request.HasField("timeout")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "jobDefinitionName: x\ncontainerProperties: {command: [x], vcpus: two}\n",
            "F.yaml: containerProperties.vcpus: expected a number, got 'two'",
        ),
        (
            "jobDefinitionName: x\ncontainerProperties: {command: [x], vcpu: 1}\n",
            "F.yaml: containerProperties.vcpu: unknown key (did you mean 'vcpus'?)",
        ),
        (
            "jobDefinitionName: x\nretrystrategy: {attempts: 2}\ncontainerProperties: {command: [x]}\n",
            "F.yaml: retrystrategy: unknown key (did you mean 'retryStrategy'?)",
        ),
        (
            "jobDefinitionName: x\ncontainerProperties: {command: [x], memory: 1.5}\n",
            "F.yaml: containerProperties.memory: expected a whole number, got 1.5",
        ),
        (
            "jobDefinitionName: x\ncontainerProperties: {command: echo hi}\n",
            "F.yaml: containerProperties.command: expected a list of strings",
        ),
        (
            "jobDefinitionName: x\ncontainerProperties: {command: [x]}\nretryStrategy: {attempts: 11}\n",
            "F.yaml: retryStrategy.attempts: expected a whole number 1-10, got 11",
        ),
        (
            "jobDefinitionName: x\ncontainerProperties: {command: [x]}\nretryStrategy: {evaluateOnExit: [{onExitCode: '1'}]}\n",
            "F.yaml: retryStrategy.evaluateOnExit[0]: missing key 'action'",
        ),
        (
            "jobDefinitionName: x\ncontainerProperties: {command: [x]}\nretryStrategy: {evaluateOnExit: [{action: RESTART}]}\n",
            "F.yaml: retryStrategy.evaluateOnExit[0].action: expected RETRY or EXIT, got 'RESTART'",
        ),
        (
            "jobDefinitionName: x\ncontainerProperties: {command: [x], environment: [{name: A, valeu: b}]}\n",
            "F.yaml: containerProperties.environment[0].valeu: unknown key (did you mean 'value'?)",
        ),
        (
            "jobDefinitionName: x\ncontainerProperties:\n  command: [x]\n  vcpus: 1\n  resourceRequirements: [{type: VCPU, value: '2'}]\n",
            "F.yaml: containerProperties.resourceRequirements[0]: VCPU is given twice",
        ),
        ("containerProperties: {command: [x]}\n", "F.yaml: missing key 'jobDefinitionName'"),
        ("jobDefinitionName: x\n", "F.yaml: missing key 'containerProperties'"),
        ("", "F.yaml: the file is empty"),
        ("- a\n- b\n", "F.yaml: expected a mapping, got a list"),
        ("jobDefinitionName: [x\n", "F.yaml: invalid YAML: line 2, column 1"),
    ],
)
def test_errors_name_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(JobDefinitionFileError) as info:
        load_file(path)
    assert info.value.message.startswith(f"{tmp_path}/{message}")
    assert "\n" not in info.value.message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(JobDefinitionFileError, match="nope.yaml: no such file"):
        load_file(tmp_path / "nope.yaml")


def test_container_keys(tmp_path: Path) -> None:
    path = write(tmp_path, """
jobDefinitionName: etl
containerProperties:
  image: localhost/etl:7
  command: [run]
  workingDir: /app
  user: 1000
  privileged: false
  readonlyRootFilesystem: true
  ulimits: [{name: nofile, softLimit: 1024, hardLimit: 4096}, {name: nproc, softLimit: 64}]
  mounts: [{sourcePath: /srv/data, containerPath: /data, readOnly: true}]
  volumes: [{name: out, host: {sourcePath: /srv/out}}]
  mountPoints: [{sourceVolume: out, containerPath: /out}]
  linuxParameters: {sharedMemorySize: 64}
""")
    cp = load_file(path).container_properties
    assert (cp.image, cp.working_dir, cp.user, cp.privileged, cp.readonly_root_filesystem) == (
        "localhost/etl:7", "/app", "1000", False, True)
    assert [(u.name, u.soft_limit, u.hard_limit) for u in cp.ulimits] == [("nofile", 1024, 4096), ("nproc", 64, 64)]
    assert [(m.source_path, m.container_path, m.read_only) for m in cp.mounts] == [
        ("/srv/data", "/data", True), ("/srv/out", "/out", False)]
    assert cp.shared_memory_size_mib == 64


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("privileged: yes-please", "containerProperties.privileged: expected true or false"),
        ("mountPoints: [{sourceVolume: nope, containerPath: /x}]", "containerProperties.mountPoints[0].sourceVolume: no volume named 'nope'"),
        ("ulimits: {nofile: 1}", "containerProperties.ulimits: expected a list"),
    ],
)
def test_container_key_errors(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, f"jobDefinitionName: x\ncontainerProperties:\n  command: [x]\n  {text}\n")
    with pytest.raises(JobDefinitionFileError) as info:
        load_file(path)
    assert message in info.value.message
