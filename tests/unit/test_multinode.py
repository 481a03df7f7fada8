"""Multi-node jobs with plain data: node ranges, validation of node properties, resolution of a
submission into per-node containers, and the state rules of a job's nodes."""

from __future__ import annotations

import pytest

from controller.domain import jobs as J
from controller.domain import multinode as M
from controller.domain import validation as V
from shoal.errors import InvalidArgument
from shoal.jobdef import JobDefinitionFileError, parse_text
from shoal.v1 import agent_pb2, batch_pb2, types_pb2

pytestmark = pytest.mark.unit


def props(n: int, *ranges: str, main: int = 0) -> types_pb2.NodeProperties:
    p = types_pb2.NodeProperties(num_nodes=n, main_node=main)
    for i, target in enumerate(ranges):
        p.node_range_properties.add(target_nodes=target, container=types_pb2.ContainerProperties(command=[f"r{i}"]))
    return p


# -- ranges -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0", (0, 0)), ("3", (3, 3)), ("1:", (1, 4)), (":2", (0, 2)), ("0:2", (0, 2)), ("0:4", (0, 4)), (":", (0, 4))],
)
def test_target_nodes_as_aws_writes_them(text, expected):  # noqa: ANN001
    assert M.parse_target_nodes(text, 5, "f") == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [("", "is required"), ("5", "names node 5, but the job has 5"), ("3:1", "is empty"),
     ("a", "must be 'I', 'I:', ':J' or 'I:J'"), ("-1", "must be 'I'"), ("1:x", "must be 'I'")],
)  # fmt: skip
def test_bad_target_nodes_are_refused_with_the_field(text, problem):  # noqa: ANN001
    with pytest.raises(InvalidArgument, match=r"^f: ") as err:
        M.parse_target_nodes(text, 5, "f")
    assert problem in str(err.value)


def test_every_node_in_exactly_one_range():
    assert M.range_indexes(props(4, "0", "1:"), "np") == [0, 1, 1, 1]
    with pytest.raises(InvalidArgument, match=r"np\.node_range_properties\[1\]\.target_nodes: node 2 is already in node_range_properties\[0\]"):
        M.range_indexes(props(4, "0:2", "2:"), "np")
    with pytest.raises(InvalidArgument, match=r"np\.node_range_properties: node\(s\) 3 are in no range"):
        M.range_indexes(props(4, "0:2"), "np")


def test_shape_checks():
    with pytest.raises(InvalidArgument, match=r"np\.num_nodes: must be 1\.\.128 \(got 0\)"):
        M.validate_shape(props(0), "np", ranges_required=False)
    with pytest.raises(InvalidArgument, match=r"np\.num_nodes: must be 1\.\.128 \(got 129\)"):
        M.validate_shape(props(129, ":"), "np", ranges_required=False)
    with pytest.raises(InvalidArgument, match=r"np\.main_node: must be a node index below num_nodes 3 \(got 3\)"):
        M.validate_shape(props(3, ":", main=3), "np", ranges_required=False)
    with pytest.raises(InvalidArgument, match=r"np\.node_range_properties: at least one range is required"):
        M.validate_shape(props(3), "np", ranges_required=True)
    M.validate_shape(props(3), "np", ranges_required=False)


# -- validation and resolution ----------------------------------------------------------------


def submit(**kw) -> batch_pb2.SubmitJobRequest:  # noqa: ANN003
    req = batch_pb2.SubmitJobRequest(job_name="mnp", **kw)
    if not req.job_definition and not req.node_properties.node_range_properties:
        req.container_overrides.command.append("train")
    return req


def test_submit_validation_names_the_field():
    with pytest.raises(InvalidArgument, match=r"^node_properties: a multi-node job cannot also be an array job"):
        V.validate_submit(submit(node_properties=props(2), array_properties=types_pb2.ArrayProperties(size=3)))
    with pytest.raises(InvalidArgument, match=r"^node_properties\.node_range_properties: come from the job definition"):
        V.validate_submit(submit(job_definition="d", node_properties=props(2, ":")))
    with pytest.raises(InvalidArgument, match=r"^node_properties\.num_nodes: must be 1\.\.128"):
        V.validate_submit(submit(node_properties=types_pb2.NodeProperties(main_node=1)))
    bad = props(2, ":")
    bad.node_range_properties[0].container.ClearField("command")
    with pytest.raises(InvalidArgument, match=r"^node_properties\.node_range_properties\[0\]\.container\.command: is required"):
        V.validate_submit(submit(node_properties=bad))
    with pytest.raises(InvalidArgument, match=r"^jobs\[0\]\.node_properties\.main_node"):
        V.validate_submit_batch([submit(node_properties=props(2, main=2))])
    # Ranges with containers of their own need no top-level command.
    V.validate_submit(submit(node_properties=props(3, "0", "1:")))


def test_definition_validation():
    req = batch_pb2.RegisterJobDefinitionRequest(job_definition_name="d", node_properties=props(3, "0", "1:"))
    V.validate_register_job_definition(req)
    req.container_properties.command.append("x")
    with pytest.raises(InvalidArgument, match=r"^container_properties: must be empty in a multi-node definition"):
        V.validate_register_job_definition(req)
    gap = batch_pb2.RegisterJobDefinitionRequest(job_definition_name="d", node_properties=props(3, "0"))
    with pytest.raises(InvalidArgument, match=r"^node_properties\.node_range_properties: node\(s\) 1, 2 are in no range"):
        V.validate_register_job_definition(gap)
    empty = batch_pb2.RegisterJobDefinitionRequest(job_definition_name="d", node_properties=props(2))
    with pytest.raises(InvalidArgument, match=r"^node_properties\.node_range_properties: at least one range"):
        V.validate_register_job_definition(empty)


def test_inline_job_without_ranges_runs_its_container_on_every_node():
    req = submit(node_properties=types_pb2.NodeProperties(num_nodes=3, main_node=2))
    req.container_overrides.vcpus = 2
    resolved = V.resolve_node_properties(req, None)
    assert resolved is not None and resolved.num_nodes == 3 and resolved.main_node == 2
    (rng,) = resolved.node_range_properties
    assert rng.target_nodes == "0:" and list(rng.container.command) == ["train"]
    assert rng.container.resources.vcpus == 2 and rng.container.resources.memory_mib == V.DEFAULT_MEMORY_MIB
    assert len(M.node_containers(resolved)) == 3


def test_definition_ranges_get_the_overrides_and_a_new_count():
    definition = types_pb2.JobDefinition(job_definition_name="d", revision=1, node_properties=props(2, "0", "1:"))
    req = submit(job_definition="d", node_properties=types_pb2.NodeProperties(num_nodes=4, main_node=3))
    req.container_overrides.environment.add(name="K", value="v")
    resolved = V.resolve_node_properties(req, definition)
    assert resolved is not None and resolved.num_nodes == 4 and resolved.main_node == 3
    assert [list(c.command) for c in M.node_containers(resolved)] == [["r0"], ["r1"], ["r1"], ["r1"]]
    assert all(c.environment[0].name == "K" and c.resources.vcpus == 1 for c in M.node_containers(resolved))
    # A count that leaves a node out of the definition's ranges is refused.
    short = types_pb2.JobDefinition(job_definition_name="d", revision=1, node_properties=props(3, "0", "1:2"))
    with pytest.raises(InvalidArgument, match=r"^node_properties\.node_range_properties\[1\]\.target_nodes: '1:2' names node 2"):
        V.resolve_node_properties(submit(job_definition="d", node_properties=types_pb2.NodeProperties(num_nodes=2)), short)
    assert V.resolve_node_properties(submit(), None) is None


def test_child_ids_are_job_ids():
    parent = "0b1f6a52-8b1e-4c53-9d3c-2f1a7b9e0c11"
    V.validate_job_id(M.child_id(parent, 7), "job_id")
    assert M.parent_of(M.child_id(parent, 7)) == parent and M.parent_of(parent) == ""
    with pytest.raises(InvalidArgument, match="job_id: must be a job id"):
        V.validate_job_id(parent + "#x", "job_id")


# -- state rules ------------------------------------------------------------------------------


def parent_job(n: int = 3, main: int = 0, attempts: int = 2) -> types_pb2.Job:
    job = types_pb2.Job(job_id="p", job_queue="q", status=J.RUNNABLE, node_properties=props(n, ":", main=main))
    job.retry_strategy.attempts = attempts
    return job


def started(n: int = 3, main: int = 0, attempts: int = 2) -> tuple[types_pb2.Job, list[types_pb2.Job]]:
    return M.start_nodes(parent_job(n, main, attempts), [f"h{i}" for i in range(n)], "ce", 7, [None] * n)


def exited(job: types_pb2.Job, code: int) -> agent_pb2.AttemptFinished:
    return agent_pb2.AttemptFinished(token=job.current, exit_code=code, status_reason="" if code == 0 else "Essential container in task exited")


def test_start_puts_every_node_on_its_host_with_the_parents_attempt():
    parent, children = started(main=1)
    assert parent.status == J.STARTING and parent.node_id == "" and parent.current.attempt == 1
    assert [c.job_id for c in children] == ["p#0", "p#1", "p#2"]
    assert [c.node_id for c in children] == ["h0", "h1", "h2"]
    assert [c.node_details.is_main_node for c in children] == [False, True, False]
    assert all(c.status == J.STARTING and c.current.attempt == 1 and c.current.job_id == c.job_id for c in children)
    env = M.node_environment(children[2])
    assert env == {"node_index": "2", "num_nodes": "3", "main_node_index": "1", "main_node_address": ""}
    names = {kv.name: kv.value for kv in J.attempt_environment(children[2], node_hostname="x", node=env)}
    assert names["SHOAL_NODE_INDEX"] == names["AWS_BATCH_JOB_NODE_INDEX"] == "2"
    assert names["SHOAL_MAIN_NODE_INDEX"] == names["AWS_BATCH_JOB_MAIN_NODE_INDEX"] == "1"


def test_a_node_ends_by_its_own_exit_code_and_only_the_main_node_ends_the_attempt():
    parent, children = started()
    worker = M.finish_node(children[1], exited(children[1], 2), now_ms=5)
    assert worker.status == J.FAILED and worker.attempts[0].exit_code == 2
    assert not M.ends_attempt(children[1], interrupted=False)
    assert M.ends_attempt(children[0], interrupted=False)
    assert M.ends_attempt(children[1], interrupted=True)


def test_the_main_nodes_exit_decides_the_job_after_all_nodes_stopped():
    parent, children = started()
    out = M.outcome(children[0], exited(children[0], 0), now_ms=9, interrupted=False)
    done = M.finish_parent(M.with_outcome(parent, out), now_ms=10)
    assert done.status == J.SUCCEEDED and done.attempts[0].node_id == "h0" and not done.HasField("multinode_outcome")
    failed = M.outcome(children[0], exited(children[0], 1), now_ms=9, interrupted=False)
    again = M.finish_parent(M.with_outcome(parent, failed), now_ms=10)
    assert again.status == J.RUNNABLE and again.status_reason == "Essential container in task exited"


def test_a_lost_node_interrupts_the_whole_attempt_and_the_retry_strategy_decides():
    parent, children = started(attempts=1)
    lost = agent_pb2.AttemptFinished(token=children[2].current, status_reason="Host lost: agent disconnected", reason="HostLost")
    out = M.outcome(children[2], lost, now_ms=9, interrupted=True)
    assert out.status_reason == "Host lost: agent disconnected (node 2 of 3)" and out.interrupted
    final = M.finish_parent(M.with_outcome(parent, out), now_ms=10)
    assert final.status == J.FAILED and final.attempts[0].interrupted
    # With attempts left it is retried, and the next start reuses the children with attempt 2.
    parent2, children2 = started(attempts=2)
    retried = M.finish_parent(M.with_outcome(parent2, M.outcome(children2[2], lost, now_ms=9, interrupted=True)), now_ms=10)
    assert retried.status == J.RUNNABLE
    ended = [M.finish_node(c, lost, now_ms=10, interrupted=True) for c in children2]
    parent3, children3 = M.start_nodes(retried, ["h5", "h6", "h7"], "ce", 8, ended)
    assert parent3.current.attempt == 2 and all(c.current.attempt == 2 for c in children3)
    assert all(len(c.attempts) == 1 for c in children3) and children3[0].node_id == "h5"


def test_job_definition_files_with_node_ranges():
    req = parse_text(
        """
jobDefinitionName: allreduce
type: multinode
nodeProperties:
  numNodes: 4
  mainNode: 1
  nodeRangeProperties:
    - {targetNodes: 0, container: {command: [coord], vcpus: 2}}
    - {targetNodes: "1:", container: {command: [work], memory: 512}}
""",
        "a.yaml",
    )
    assert req.node_properties.num_nodes == 4 and req.node_properties.main_node == 1
    assert [r.target_nodes for r in req.node_properties.node_range_properties] == ["0", "1:"]
    assert not req.HasField("container_properties")
    V.validate_register_job_definition(req)
    with pytest.raises(JobDefinitionFileError, match=r"a\.yaml: nodeProperties\.nodeRangeProperties\[0\]: missing key 'container'"):
        parse_text("jobDefinitionName: x\nnodeProperties: {numNodes: 2, nodeRangeProperties: [{targetNodes: '0:'}]}", "a.yaml")
    with pytest.raises(JobDefinitionFileError, match=r"a\.yaml: containerProperties: a multi-node definition has nodeProperties instead"):
        parse_text("jobDefinitionName: x\ntype: multinode\ncontainerProperties: {command: [x]}\nnodeProperties: {numNodes: 1}", "a.yaml")
