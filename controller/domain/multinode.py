"""Multi-node parallel jobs (AWS Batch's nodeProperties): pure rules on Job records.

A multi-node job is a parent record `<id>` that is never placed itself, and one child record
per node, `<id>#0` .. `<id>#N-1` (AWS's `#N` notation), created when the parent is first
placed and reused by every later attempt. Rules (AWS Batch's, plus host loss):

- The scheduler places all nodes at once on distinct nodes, or none (`controller.scheduler.gang`).
- The main node starts first; the others start once it is RUNNING, with its address.
- Each node ends SUCCEEDED or FAILED by its own exit code and is never retried on its own. A
  node other than the main one that exits changes nothing for the others.
- The attempt ends when the main node exits (its exit decides), when a node's host is lost or
  interrupted (the whole attempt is interrupted), or when the job is terminated. Then every
  node still running is stopped, and only once none is left running does the parent's retry
  strategy decide (a retry, SUCCEEDED or FAILED): two attempts of one job never overlap.
- started/stopped times, status reason and exit code of the parent come from the main node.

Like `controller.domain.jobs`, every function returns new records and reads no clock.
"""

from __future__ import annotations

from collections.abc import Sequence

from controller.domain import jobs as J
from shoal.errors import InvalidArgument
from shoal.v1 import agent_pb2, types_pb2

CHILD_SEP = "#"
MAX_NODES = 128
"""The most nodes one job may ask for."""

REASON_MAIN_EXITED = "Main node exited"
REASON_NEVER_STARTED = "The attempt ended before this node started"


def child_id(parent_id: str, index: int) -> str:
    return f"{parent_id}{CHILD_SEP}{index}"


def parent_of(job_id: str) -> str:
    """'<parent>' for a node child '<parent>#<index>', else ''."""
    head, sep, tail = job_id.rpartition(CHILD_SEP)
    return head if sep and tail.isdigit() else ""


def is_parent(job: types_pb2.Job) -> bool:
    return job.node_properties.num_nodes > 0


def is_child(job: types_pb2.Job) -> bool:
    return job.HasField("node_details")


# -- node ranges ------------------------------------------------------------------------------


def parse_target_nodes(text: str, num_nodes: int, field: str) -> tuple[int, int]:
    """'0' -> (0, 0); '1:' -> (1, N-1); ':2' -> (0, 2); '0:2' -> (0, 2). Inclusive, as AWS."""

    def number(part: str) -> int:
        if not part.isascii() or not part.isdigit():
            raise InvalidArgument(
                f"{field}: must be 'I', 'I:', ':J' or 'I:J' with node indexes (got {text!r})"
            )
        return int(part)

    if not text:
        raise InvalidArgument(f"{field}: is required (e.g. '0', '1:', '0:2')")
    start_text, sep, end_text = text.partition(":")
    start = number(start_text) if start_text else 0
    if not sep:
        end = start
    else:
        end = number(end_text) if end_text else num_nodes - 1
    if start > end:
        raise InvalidArgument(f"{field}: the range {text!r} is empty (start after end)")
    if end >= num_nodes:
        raise InvalidArgument(
            f"{field}: {text!r} names node {end}, but the job has {num_nodes} node(s) (0..{num_nodes - 1})"
        )
    return start, end


def range_indexes(props: types_pb2.NodeProperties, field: str) -> list[int]:
    """For each node index, the index of the range that covers it. Every node must be covered
    by exactly one range."""
    n = props.num_nodes
    owner: list[int | None] = [None] * n
    for r, rng in enumerate(props.node_range_properties):
        path = f"{field}.node_range_properties[{r}].target_nodes"
        start, end = parse_target_nodes(rng.target_nodes, n, path)
        for i in range(start, end + 1):
            other = owner[i]
            if other is not None:
                raise InvalidArgument(
                    f"{path}: node {i} is already in node_range_properties[{other}] "
                    f"({props.node_range_properties[other].target_nodes!r}); ranges may not overlap"
                )
            owner[i] = r
    missing = [i for i, r in enumerate(owner) if r is None]
    if missing:
        shown = ", ".join(str(i) for i in missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise InvalidArgument(
            f"{field}.node_range_properties: node(s) {shown} are in no range; every node 0..{n - 1} needs one"
        )
    return [r for r in owner if r is not None]


def validate_shape(props: types_pb2.NodeProperties, field: str, *, ranges_required: bool) -> None:
    """num_nodes, main_node and the ranges' targets (not the containers; see validation.py)."""
    n = props.num_nodes
    if n < 1 or n > MAX_NODES:
        raise InvalidArgument(f"{field}.num_nodes: must be 1..{MAX_NODES} (got {n})")
    if props.main_node >= n:
        raise InvalidArgument(
            f"{field}.main_node: must be a node index below num_nodes {n} (got {props.main_node})"
        )
    if not props.node_range_properties:
        if ranges_required:
            raise InvalidArgument(
                f"{field}.node_range_properties: at least one range is required (e.g. target_nodes '0:')"
            )
        return
    range_indexes(props, field)


def node_containers(props: types_pb2.NodeProperties) -> list[types_pb2.ContainerProperties]:
    """The container of each node index, from a stored job's (already valid) ranges."""
    owner = range_indexes(props, "node_properties")
    return [props.node_range_properties[r].container for r in owner]


# -- attempts ---------------------------------------------------------------------------------


def start_nodes(
    parent: types_pb2.Job,
    node_ids: Sequence[str],
    compute_environment: str,
    epoch: int,
    existing: Sequence[types_pb2.Job | None],
) -> tuple[types_pb2.Job, list[types_pb2.Job]]:
    """RUNNABLE parent -> STARTING, and every child (new or from the last attempt) STARTING on
    its node with the parent's attempt number. `existing[i]` is child i's record, if any."""
    props = parent.node_properties
    attempt = len(parent.attempts) + 1
    new_parent = J._copy(parent)
    new_parent.status = J.STARTING
    new_parent.status_reason = ""
    new_parent.current.job_id = parent.job_id
    new_parent.current.attempt = attempt
    new_parent.current.epoch = epoch
    new_parent.node_id = ""  # the parent holds no capacity: its children do
    new_parent.compute_environment = compute_environment
    new_parent.ClearField("multinode_outcome")
    children = []
    for index, (container, node_id) in enumerate(zip(node_containers(props), node_ids, strict=True)):
        old = existing[index] if index < len(existing) else None
        if old is None:
            child = types_pb2.Job(
                job_id=child_id(parent.job_id, index),
                job_name=parent.job_name,
                job_queue=parent.job_queue,
                created_at=parent.created_at,
                job_definition=parent.job_definition,
            )
            child.tags.update(parent.tags)
            child.parameters.update(parent.parameters)
        else:
            child = J._copy(old)
        child.container.CopyFrom(container)
        # The job's timeout applies to the whole job (AWS): it is enforced on the main node,
        # whose end stops the others.
        if index == props.main_node:
            child.timeout.CopyFrom(parent.timeout)
        else:
            child.ClearField("timeout")
        child.status = J.STARTING
        child.status_reason = ""
        child.started_at = 0
        child.stopped_at = 0
        child.terminate_reason = ""
        child.interrupt_reason = ""
        child.current.job_id = child.job_id
        child.current.attempt = attempt
        child.current.epoch = epoch
        child.node_id = node_id
        child.compute_environment = compute_environment
        details = child.node_details
        details.node_index = index
        details.is_main_node = index == props.main_node
        details.num_nodes = props.num_nodes
        details.main_node_index = props.main_node
        details.main_node_address = ""
        children.append(child)
    return new_parent, children


def finish_node(
    child: types_pb2.Job,
    result: agent_pb2.AttemptFinished,
    *,
    now_ms: int,
    interrupted: bool = False,
) -> types_pb2.Job:
    """STARTING/RUNNING child -> SUCCEEDED (exit 0) or FAILED; a node never retries alone."""
    new = J._copy(child)
    detail = new.attempts.add()
    detail.attempt = child.current.attempt
    detail.node_id = child.node_id
    if result.HasField("exit_code"):
        detail.exit_code = result.exit_code
    detail.status_reason = result.status_reason
    detail.reason = result.reason
    detail.started_at = result.started_at or child.started_at
    detail.stopped_at = result.stopped_at or now_ms
    detail.interrupted = interrupted
    detail.main_node_address = child.node_details.main_node_address
    new.ClearField("current")
    new.node_id = ""
    new.compute_environment = ""
    new.stopped_at = now_ms
    if not interrupted and result.HasField("exit_code") and result.exit_code == 0:
        new.status = J.SUCCEEDED
        new.status_reason = ""
    else:
        new.status = J.FAILED
        new.status_reason = result.status_reason or J.REASON_EXITED
    return new


def outcome(
    child: types_pb2.Job, result: agent_pb2.AttemptFinished, *, now_ms: int, interrupted: bool
) -> types_pb2.MultiNodeOutcome:
    """What the end of `child`'s attempt means for the whole job's attempt."""
    out = types_pb2.MultiNodeOutcome(
        status_reason=result.status_reason,
        reason=result.reason,
        interrupted=interrupted,
        started_at=result.started_at or child.started_at,
        stopped_at=result.stopped_at or now_ms,
        node_index=child.node_details.node_index,
        node_id=child.node_id,
    )
    if result.HasField("exit_code"):
        out.exit_code = result.exit_code
    if interrupted and not child.node_details.is_main_node:
        # Say which node: "Host lost: agent disconnected (node 2 of 3)".
        out.status_reason = (
            f"{result.status_reason} (node {child.node_details.node_index} of {child.node_details.num_nodes})"
        )
    return out


def ends_attempt(child: types_pb2.Job, *, interrupted: bool) -> bool:
    """Whether this child's end ends the job's attempt: the main node's exit or any node's loss."""
    return interrupted or child.node_details.is_main_node


def finish_parent(parent: types_pb2.Job, *, now_ms: int) -> types_pb2.Job:
    """Every node has stopped: let the recorded outcome and the retry strategy decide."""
    out = parent.multinode_outcome
    result = agent_pb2.AttemptFinished(
        token=parent.current,
        status_reason=out.status_reason,
        reason=out.reason,
        started_at=out.started_at,
        stopped_at=out.stopped_at,
    )
    if out.HasField("exit_code"):
        result.exit_code = out.exit_code
    staged = J._copy(parent)
    staged.node_id = out.node_id  # the attempt's history names the node that decided it
    new = J.finish_attempt(staged, result, now_ms=now_ms, interrupted=out.interrupted)
    new.ClearField("multinode_outcome")
    return new


def with_outcome(parent: types_pb2.Job, out: types_pb2.MultiNodeOutcome) -> types_pb2.Job:
    new = J._copy(parent)
    new.multinode_outcome.CopyFrom(out)
    return new


def node_environment(child: types_pb2.Job) -> dict[str, str]:
    """The SHOAL_* / AWS_BATCH_* node variables of a child (see `jobs.attempt_environment`)."""
    d = child.node_details
    return {
        "node_index": str(d.node_index),
        "num_nodes": str(d.num_nodes),
        "main_node_index": str(d.main_node_index),
        "main_node_address": d.main_node_address,
    }
