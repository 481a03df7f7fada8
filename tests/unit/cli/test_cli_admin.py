"""`shoal nodes / queues / envs / defs`, help text and the delegated daemon commands."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import grpc
import pytest

from shoal.cli import main as cli_main
from shoal.v1 import batch_pb2, types_pb2
from tests.unit.cli.builders import T0
from tests.unit.cli.fake_batch import FakeBatch

pytestmark = pytest.mark.unit


def node(node_id: str = "n-1", status: int = types_pb2.NODE_STATUS_READY, **fields: object) -> types_pb2.Node:
    record = dict(
        node_id=node_id,
        hostname=f"host-{node_id}",
        status=status,
        compute_environment="local",
        vcpus=8,
        memory_mib=16384,
        registered_at=T0,
    )
    return types_pb2.Node(**{**record, **fields})  # type: ignore[arg-type]


def test_nodes_list_json_shape(fake: FakeBatch, shoal) -> None:
    fake.on(
        "ListNodes",
        batch_pb2.ListNodesResponse(nodes=[node(), node("n-2", types_pb2.NODE_STATUS_LOST, vcpus=0.5)]),
    )
    result = shoal("nodes", "list", "--addr", fake.address, "--output", "json")
    assert result.code == 0, result
    first, second = json.loads(result.out)["nodes"]
    assert {
        k: first[k] for k in ("nodeId", "hostname", "status", "computeEnvironment", "vcpus", "memoryMib")
    } == {
        "nodeId": "n-1",
        "hostname": "host-n-1",
        "status": "READY",
        "computeEnvironment": "local",
        "vcpus": 8,
        "memoryMib": 16384,
    }
    assert first["registeredAt"] == T0 and first["lastSeenAt"] is None
    assert (second["status"], second["vcpus"]) == ("LOST", 0.5)


def test_nodes_list_table(fake: FakeBatch, shoal) -> None:
    fake.on(
        "ListNodes", batch_pb2.ListNodesResponse(nodes=[node(), node("n-2", types_pb2.NODE_STATUS_DRAINING)])
    )
    lines = shoal("nodes", "list", "--addr", fake.address).out.splitlines()
    assert lines[0].split() == ["NODE", "HOSTNAME", "STATUS", "ENV", "VCPUS", "MEMORY", "GPUS", "REASON"]
    assert lines[1].split() == ["n-1", "host-n-1", "READY", "local", "8", "16Gi", "-"]
    assert lines[2].split()[2] == "DRAINING"


def test_queues_create_builds_the_request(fake: FakeBatch, shoal) -> None:
    fake.on("CreateJobQueue", lambda request, context: types_pb2.JobQueue(
        job_queue_name=request.job_queue_name, state=request.state, priority=request.priority,
        compute_environment_order=request.compute_environment_order,
    ))  # fmt: skip
    result = shoal(
        "queues", "create", "urgent", "--compute-env", "gpu,cpu", "--priority", "10", "--state", "disabled",
        "--addr", fake.address, "--output", "json",
    )  # fmt: skip
    assert result.code == 0, result
    (sent,) = fake.calls("CreateJobQueue")
    assert (sent.job_queue_name, sent.priority, sent.state) == ("urgent", 10, types_pb2.ENTITY_STATE_DISABLED)
    assert [(o.order, o.compute_environment) for o in sent.compute_environment_order] == [
        (1, "gpu"),
        (2, "cpu"),
    ]
    (queue,) = json.loads(result.out)["jobQueues"]
    assert queue["state"] == "DISABLED"
    assert queue["computeEnvironmentOrder"] == [
        {"order": 1, "computeEnvironment": "gpu"},
        {"order": 2, "computeEnvironment": "cpu"},
    ]


def test_queues_create_defaults_to_enabled(fake: FakeBatch, shoal) -> None:
    assert shoal("queues", "create", "default", "--compute-env", "local", "--addr", fake.address).code == 0
    (sent,) = fake.calls("CreateJobQueue")
    assert (sent.state, sent.priority) == (types_pb2.ENTITY_STATE_ENABLED, 1)


def test_queues_update_sends_only_what_changes(fake: FakeBatch, shoal) -> None:
    assert shoal("queues", "update", "q", "--state", "ENABLED", "--addr", fake.address).code == 0
    (sent,) = fake.calls("UpdateJobQueue")
    assert sent.state == types_pb2.ENTITY_STATE_ENABLED
    assert not sent.HasField("priority") and len(sent.compute_environment_order) == 0
    assert shoal("queues", "update", "q", "--addr", fake.address).code == 2


def test_queues_create_existing_is_exit_3(fake: FakeBatch, shoal) -> None:
    fake.fail("CreateJobQueue", grpc.StatusCode.ALREADY_EXISTS, "job queue default already exists")
    result = shoal("queues", "create", "default", "--compute-env", "local", "--addr", fake.address)
    assert (result.code, result.err) == (3, "shoal: job queue default already exists\n")


def test_queues_list_table(fake: FakeBatch, shoal) -> None:
    queue = types_pb2.JobQueue(
        job_queue_name="default",
        state=types_pb2.ENTITY_STATE_ENABLED,
        priority=1,
        compute_environment_order=[types_pb2.ComputeEnvironmentOrder(order=1, compute_environment="local")],
    )
    fake.on("DescribeJobQueues", batch_pb2.DescribeJobQueuesResponse(job_queues=[queue]))
    lines = shoal("queues", "list", "--addr", fake.address).out.splitlines()
    assert lines[1].split() == ["default", "ENABLED", "1", "local", "FIFO"]


def test_envs_create_and_update(fake: FakeBatch, shoal) -> None:
    args = ("--type", "managed", "--min-vcpus", "0", "--desired-vcpus", "4", "--max-vcpus", "64")
    assert shoal("envs", "create", "burst", *args, "--addr", fake.address).code == 0
    (sent,) = fake.calls("CreateComputeEnvironment")
    assert (
        sent.type == types_pb2.COMPUTE_ENVIRONMENT_TYPE_MANAGED
        and sent.state == types_pb2.ENTITY_STATE_ENABLED
    )
    assert (sent.min_vcpus, sent.desired_vcpus, sent.max_vcpus) == (0, 4, 64)

    assert shoal("envs", "update", "burst", "--max-vcpus", "8", "--addr", fake.address).code == 0
    (update,) = fake.calls("UpdateComputeEnvironment")
    assert update.HasField("max_vcpus") and update.max_vcpus == 8
    assert not update.HasField("min_vcpus") and update.state == 0


def test_envs_list_json(fake: FakeBatch, shoal) -> None:
    ce = types_pb2.ComputeEnvironment(
        compute_environment_name="local",
        type=types_pb2.COMPUTE_ENVIRONMENT_TYPE_UNMANAGED,
        state=types_pb2.ENTITY_STATE_ENABLED,
    )
    fake.on(
        "DescribeComputeEnvironments",
        batch_pb2.DescribeComputeEnvironmentsResponse(compute_environments=[ce]),
    )
    (record,) = json.loads(shoal("envs", "list", "--addr", fake.address, "-o", "json").out)[
        "computeEnvironments"
    ]
    assert (record["computeEnvironmentName"], record["type"], record["state"]) == (
        "local",
        "UNMANAGED",
        "ENABLED",
    )


GOOD_DEFINITION = """\
jobDefinitionName: hello
containerProperties:
  command: ["sh", "-c", "echo hello $NAME"]
  vcpus: 1
  memory: 256
  environment: [{name: NAME, value: world}]
retryStrategy: {attempts: 3, evaluateOnExit: [{onExitCode: "1", action: RETRY}]}
timeout: {attemptDurationSeconds: 60}
"""


def test_defs_register_prints_name_and_revision(fake: FakeBatch, shoal, tmp_path: Path) -> None:
    path = tmp_path / "hello.yaml"
    path.write_text(GOOD_DEFINITION)
    fake.on(
        "RegisterJobDefinition",
        batch_pb2.RegisterJobDefinitionResponse(job_definition_name="hello", revision=4),
    )
    result = shoal("defs", "register", "--file", str(path), "--addr", fake.address)
    assert (result.code, result.out) == (0, "hello:4\n")
    (sent,) = fake.calls("RegisterJobDefinition")
    assert sent.job_definition_name == "hello" and sent.retry_strategy.attempts == 3


def test_defs_register_bad_file_is_exit_2_and_sends_nothing(fake: FakeBatch, shoal, tmp_path: Path) -> None:
    path = tmp_path / "F.yaml"
    path.write_text("jobDefinitionName: x\ncontainerProperties: {command: [x], vcpus: two}\n")
    result = shoal("defs", "register", "--file", str(path), "--addr", fake.address)
    assert result.code == 2
    assert result.err == f"shoal: {path}: containerProperties.vcpus: expected a number, got 'two'\n"
    assert fake.requests == []


def test_defs_list_and_deregister(fake: FakeBatch, shoal) -> None:
    definition = types_pb2.JobDefinition(
        job_definition_name="hello",
        revision=2,
        status="ACTIVE",
        container_properties=types_pb2.ContainerProperties(
            command=["echo", "hi"], resources=types_pb2.ResourceRequirements(vcpus=1, memory_mib=512)
        ),
    )
    fake.on("DescribeJobDefinitions", batch_pb2.DescribeJobDefinitionsResponse(job_definitions=[definition]))
    lines = shoal("defs", "list", "--status", "active", "--addr", fake.address).out.splitlines()
    assert lines[1].split() == ["hello", "2", "ACTIVE", "1", "512Mi", "echo", "hi"]
    assert fake.calls("DescribeJobDefinitions")[0].status == "ACTIVE"

    assert shoal("defs", "deregister", "hello:2", "--addr", fake.address).code == 0
    assert fake.calls("DeregisterJobDefinition")[0].job_definition == "hello:2"
    result = shoal("defs", "deregister", "hello", "--addr", fake.address)
    assert result.code == 2 and "expected NAME:REVISION" in result.err


# --- help and delegation ---------------------------------------------------------------------------


def test_help_documents_exit_codes(shoal) -> None:
    result = shoal("--help")
    assert result.code == 0
    for line in (
        "0    success",
        "1    a job FAILED",
        "3    the server refused",
        "4    cannot reach a controller",
    ):
        assert line in result.out
    assert "run a controller replica" in result.out and "run a node agent on this host" in result.out


def test_no_command_prints_help_and_exits_2(shoal) -> None:
    result = shoal()
    assert result.code == 2 and "usage: shoal" in result.err


def test_noun_without_verb_prints_its_help(shoal) -> None:
    result = shoal("queues")
    assert result.code == 2 and "create" in result.err


def test_delegated_command_gets_the_rest_of_argv(shoal, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []
    module = types.ModuleType("fake_up")
    module.main = lambda argv: seen.append(argv) or 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_up", module)
    monkeypatch.setitem(cli_main._DELEGATED, "up", ("fake_up", "start a local cluster"))
    assert shoal("up", "--agents", "2", "--help").code == 0
    assert seen == [["--agents", "2", "--help"]]


def test_delegated_command_missing_module_is_one_line(shoal, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(cli_main._DELEGATED, "agent", ("shoal_no_such_module.main", "run a node agent"))
    result = shoal("agent", "--help")
    assert result.code == 2
    assert (
        result.err
        == "shoal: `shoal agent` is not available: module shoal_no_such_module.main is not installed\n"
    )
