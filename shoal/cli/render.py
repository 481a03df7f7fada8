"""Turning shoal.v1 messages into what the CLI prints: JSON for scripts, tables for people.

JSON follows AWS Batch's shape: camelCase keys, plain status names ("RUNNABLE", not
"JOB_STATUS_RUNNABLE"), times in epoch milliseconds, and null for a time that has not happened
yet (the API's 0) or an exit code that does not exist. Keys are always present, so a script can
index them without guarding.

Tables align columns with two spaces, show times as local ISO-8601 and ages as "3s", "5m", "2h".
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from shoal.client import enum_name
from shoal.v1 import batch_pb2, types_pb2

# --- scalars ---------------------------------------------------------------------------------------


def ms(value: int) -> int | None:
    """An API time for JSON: epoch milliseconds, None when it has not happened (0)."""
    return int(value) if value else None


def num(value: float) -> int | float:
    """1.0 -> 1, 0.5 -> 0.5: vCPU counts read as people write them."""
    return int(value) if float(value).is_integer() else float(value)


def status(value: int) -> str:
    return enum_name(types_pb2.JobStatus, value)


def local_time(value: int) -> str:
    """Epoch ms -> local ISO-8601 to the second ('' for 0)."""
    if not value:
        return ""
    return datetime.fromtimestamp(value / 1000).astimezone().isoformat(timespec="seconds")


def age(value: int, now_ms: int | None = None) -> str:
    """How long ago an epoch-ms time was, compactly: '3s', '5m', '2h', '4d' ('' for 0)."""
    if not value:
        return ""
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    seconds = max(0, (now - value) // 1000)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 2 * 3600:
        return f"{seconds // 60}m"
    if seconds < 48 * 3600:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def memory(mib: int) -> str:
    """MiB for tables: '512Mi', '16Gi', '1.5Gi'."""
    if mib and mib % 1024 == 0:
        return f"{mib // 1024}Gi"
    if mib >= 1024:
        return f"{mib / 1024:.1f}Gi"
    return f"{mib}Mi"


def dumps(document: Any) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False)


# --- JSON documents --------------------------------------------------------------------------------


def _environment(env: Iterable[types_pb2.KeyValue]) -> list[dict[str, str]]:
    return [{"name": kv.name, "value": kv.value} for kv in env]


def container_json(c: types_pb2.ContainerProperties) -> dict[str, Any]:
    return {
        "image": c.image,
        "command": list(c.command),
        "environment": _environment(c.environment),
        "vcpus": num(c.resources.vcpus),
        "memory": c.resources.memory_mib,
        "gpus": c.resources.gpus,
        "runtime": c.runtime,
    }


def retry_json(r: types_pb2.RetryStrategy) -> dict[str, Any]:
    return {
        "attempts": r.attempts or 1,
        "evaluateOnExit": [
            {
                "onExitCode": rule.on_exit_code,
                "onReason": rule.on_reason,
                "onStatusReason": rule.on_status_reason,
                "action": enum_name(types_pb2.RetryAction, rule.action),
            }
            for rule in r.evaluate_on_exit
        ],
        "interruptionAttempts": r.interruption_attempts,
    }


def attempt_json(a: types_pb2.AttemptDetail) -> dict[str, Any]:
    return {
        "attempt": a.attempt,
        "exitCode": a.exit_code if a.HasField("exit_code") else None,
        "statusReason": a.status_reason,
        "reason": a.reason,
        "nodeId": a.node_id,
        "startedAt": ms(a.started_at),
        "stoppedAt": ms(a.stopped_at),
        "interrupted": a.interrupted,
        "gpuIds": list(a.gpu_ids),
        **({"mainNodeAddress": a.main_node_address} if a.main_node_address else {}),
    }


def job_json(job: types_pb2.Job) -> dict[str, Any]:
    """One job as `shoal describe --output json` prints it."""
    return {
        "jobId": job.job_id,
        "jobName": job.job_name,
        "jobQueue": job.job_queue,
        "status": status(job.status),
        "statusReason": job.status_reason,
        "createdAt": ms(job.created_at),
        "startedAt": ms(job.started_at),
        "stoppedAt": ms(job.stopped_at),
        "attempts": [attempt_json(a) for a in job.attempts],
        "jobDefinition": job.job_definition,
        "dependsOn": [
            {"jobId": d.job_id, "type": enum_name(types_pb2.DependencyType, d.type)} for d in job.depends_on
        ],
        "container": container_json(job.container),
        "retryStrategy": retry_json(job.retry_strategy),
        "timeout": {"attemptDurationSeconds": job.timeout.attempt_duration_seconds},
        "arrayProperties": {"size": job.array_properties.size, "index": job.array_properties.index},
        **nodes_json(job),
        "nodeId": job.node_id,
        "computeEnvironment": job.compute_environment,
        "parameters": dict(job.parameters),
        "tags": dict(job.tags),
        "shareIdentifier": job.share_identifier,
        "schedulingPriority": job.scheduling_priority,
        "gpuIds": list(job.gpu_ids),
    }


def summary_json(s: batch_pb2.JobSummary) -> dict[str, Any]:
    """One line of `shoal jobs list --output json` (inside "jobSummaryList")."""
    return {
        "jobId": s.job_id,
        "jobName": s.job_name,
        "jobQueue": s.job_queue,
        "status": status(s.status),
        "statusReason": s.status_reason,
        "createdAt": ms(s.created_at),
        "startedAt": ms(s.started_at),
        "stoppedAt": ms(s.stopped_at),
        "exitCode": s.exit_code if s.HasField("exit_code") else None,
        "nodeId": s.node_id,
        "attempts": s.attempts,
    }


def node_json(n: types_pb2.Node) -> dict[str, Any]:
    """One node of `shoal nodes list --output json` (inside "nodes")."""
    return {
        "nodeId": n.node_id,
        "hostname": n.hostname,
        "status": enum_name(types_pb2.NodeStatus, n.status),
        "statusReason": n.status_reason,
        "computeEnvironment": n.compute_environment,
        "vcpus": num(n.vcpus),
        "memoryMib": n.memory_mib,
        "gpus": n.gpus,
        "gpusFree": n.gpus_free,
        "gpuIds": list(n.gpu_ids),
        "labels": dict(n.labels),
        "runtimes": list(n.runtimes),
        "registeredAt": ms(n.registered_at),
        "lastSeenAt": ms(n.last_seen_at),
        "agentVersion": n.agent_version,
    }


def queue_json(q: types_pb2.JobQueue) -> dict[str, Any]:
    return {
        "jobQueueName": q.job_queue_name,
        "state": enum_name(types_pb2.EntityState, q.state),
        "priority": q.priority,
        "computeEnvironmentOrder": [
            {"order": o.order, "computeEnvironment": o.compute_environment}
            for o in q.compute_environment_order
        ],
        "createdAt": ms(q.created_at),
        "schedulingPolicy": q.scheduling_policy,
    }


def policy_json(p: types_pb2.SchedulingPolicy) -> dict[str, Any]:
    """One scheduling policy, in AWS Batch's shape (fairsharePolicy)."""
    fp = p.fairshare_policy
    return {
        "name": p.name,
        "fairsharePolicy": {
            "shareDecaySeconds": fp.share_decay_seconds,
            "computeReservation": fp.compute_reservation,
            "shareDistribution": [
                {"shareIdentifier": s.share_identifier, "weightFactor": num(s.weight_factor)}
                for s in fp.share_distribution
            ],
        },
        "tags": dict(p.tags),
        "createdAt": ms(p.created_at),
    }


def compute_environment_json(ce: types_pb2.ComputeEnvironment) -> dict[str, Any]:
    return {
        "computeEnvironmentName": ce.compute_environment_name,
        "type": enum_name(types_pb2.ComputeEnvironmentType, ce.type),
        "state": enum_name(types_pb2.EntityState, ce.state),
        "minvCpus": ce.min_vcpus,
        "desiredvCpus": ce.desired_vcpus,
        "maxvCpus": ce.max_vcpus,
        "createdAt": ms(ce.created_at),
    }


def job_definition_json(d: types_pb2.JobDefinition) -> dict[str, Any]:
    return {
        "jobDefinitionName": d.job_definition_name,
        "revision": d.revision,
        "status": d.status,
        "type": "multinode" if d.node_properties.num_nodes else "container",
        "containerProperties": container_json(d.container_properties),
        **nodes_json(d),
        "retryStrategy": retry_json(d.retry_strategy),
        "timeout": {"attemptDurationSeconds": d.timeout.attempt_duration_seconds},
        "parameters": dict(d.parameters),
        "tags": dict(d.tags),
        "createdAt": ms(d.created_at),
        "schedulingPriority": d.scheduling_priority,
    }


# --- text for people -------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Left-aligned columns separated by two spaces; the last column is not padded."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        padded = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])] + [row[-1]]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def shorten(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def command_line(argv: Sequence[str]) -> str:
    return shlex.join(argv)


def status_line(job: types_pb2.Job) -> str:
    """'<id> FAILED (exit 1): Essential container in task exited' — the end of a wait."""
    line = f"{job.job_id} {status(job.status)}"
    last_exit = next((a.exit_code for a in reversed(job.attempts) if a.HasField("exit_code")), None)
    if last_exit is not None:
        line += f" (exit {last_exit})"
    if job.status_reason:
        line += f": {job.status_reason}"
    return line


def nodes_json(job: types_pb2.Job | types_pb2.JobDefinition) -> dict[str, Any]:
    """AWS's nodeProperties (a multi-node job or definition) and nodeDetails (a node, JOB#N)."""
    result: dict[str, Any] = {}
    props = job.node_properties
    if props.num_nodes:
        result["nodeProperties"] = {
            "numNodes": props.num_nodes,
            "mainNode": props.main_node,
            "nodeRangeProperties": [
                {"targetNodes": r.target_nodes, "container": container_json(r.container)}
                for r in props.node_range_properties
            ],
        }
    if isinstance(job, types_pb2.Job) and job.HasField("node_details"):
        d = job.node_details
        result["nodeDetails"] = {
            "nodeIndex": d.node_index,
            "isMainNode": d.is_main_node,
            "numNodes": d.num_nodes,
            "mainNodeIndex": d.main_node_index,
            "mainNodeAddress": d.main_node_address,
        }
    return result


def node_fields(job: types_pb2.Job) -> list[tuple[str, str]]:
    """`shoal describe` lines of a multi-node parent or node."""
    props = job.node_properties
    fields = []
    if props.num_nodes:
        ranges = "; ".join(
            f"{r.target_nodes}: {command_line(r.container.command) if r.container.command else r.container.image}"
            for r in props.node_range_properties
        )
        fields.append(("Nodes", f"{props.num_nodes} (main node {props.main_node}; {job.job_id}#0 .. #{props.num_nodes - 1})"))
        fields.append(("Node ranges", ranges or "-"))
    if job.HasField("node_details"):
        d = job.node_details
        main = "main node" if d.is_main_node else f"main node {d.main_node_index}"
        fields.append(("Node index", f"{d.node_index} of {d.num_nodes} ({main} at {d.main_node_address or '-'})"))
    return fields


def job_detail(job: types_pb2.Job, now_ms: int | None = None) -> str:
    """A job as `shoal describe` shows it to a person: key/value lines, then its attempts."""

    def when(value: int) -> str:
        return f"{local_time(value)} ({age(value, now_ms)} ago)" if value else "-"

    c = job.container
    resources = []
    if c.resources.vcpus:
        resources.append(f"{num(c.resources.vcpus)} vCPU")
    if c.resources.memory_mib:
        resources.append(f"{c.resources.memory_mib} MiB")
    if c.resources.gpus:
        resources.append(f"{c.resources.gpus} GPU")
    fields: list[tuple[str, str]] = [
        ("Job ID", job.job_id),
        ("Name", job.job_name),
        ("Queue", job.job_queue),
        ("Status", status(job.status)),
        ("Reason", job.status_reason or "-"),
        ("Definition", job.job_definition or "-"),
        ("Command", command_line(c.command) if c.command else "-"),
    ]
    if c.image:
        fields.append(("Image", c.image))
    fields += [
        ("Resources", ", ".join(resources) or "-"),
        ("Retry attempts", str(job.retry_strategy.attempts or 1)),
    ]
    if job.timeout.attempt_duration_seconds:
        fields.append(("Timeout", f"{job.timeout.attempt_duration_seconds}s per attempt"))
    if job.depends_on:
        deps = [
            d.job_id + (f" ({enum_name(types_pb2.DependencyType, d.type)})" if d.type else "")
            for d in job.depends_on
        ]
        fields.append(("Depends on", ", ".join(deps)))
    if job.array_properties.size:
        fields.append(("Array size", str(job.array_properties.size)))
    if job.share_identifier:
        fields.append(("Share", f"{job.share_identifier} (scheduling priority {job.scheduling_priority})"))
    fields += node_fields(job)
    if job.node_id:
        fields.append(
            ("Node", job.node_id + (f" ({job.compute_environment})" if job.compute_environment else ""))
        )
    if job.gpu_ids:
        fields.append(("GPU devices", ",".join(job.gpu_ids)))
    fields += [
        ("Created", when(job.created_at)),
        ("Started", when(job.started_at)),
        ("Stopped", when(job.stopped_at)),
    ]
    width = max(len(k) for k, _ in fields) + 1
    lines = [f"{(k + ':').ljust(width)}  {v}" for k, v in fields]
    if job.attempts:
        lines.append("Attempts:")
        rows = [
            (
                a.attempt,
                a.node_id or "-",
                a.exit_code if a.HasField("exit_code") else "-",
                local_time(a.started_at) or "-",
                local_time(a.stopped_at) or "-",
                a.status_reason or "-",
            )
            for a in job.attempts
        ]
        body = table(("#", "NODE", "EXIT", "STARTED", "STOPPED", "REASON"), rows)
        lines += ["  " + line for line in body.splitlines()]
    return "\n".join(lines)


# --- job logs ---------------------------------------------------------------------------------------


class LogRenderer:
    """Stored log records (agent/runtime/logwriter.py) -> what `shoal logs` prints.

    Records are `TIMESTAMP STREAM F|P TEXT`; "P" pieces are joined to the rest of their line.
    Chunks may split records anywhere: the unfinished tail is kept for the next `feed`.
    Lines that are not records (logs written before the format existed) pass through.
    """

    def __init__(self, *, timestamps: bool = False) -> None:
        self.timestamps = timestamps
        self._tail = b""
        self._partial: dict[bytes, tuple[bytes, bytes]] = {}  # stream -> (first timestamp, text so far)

    def feed(self, chunk: bytes) -> bytes:
        data = self._tail + chunk
        lines = data.split(b"\n")
        self._tail = lines.pop()
        return b"".join(self._line(line) for line in lines)

    def flush(self) -> bytes:
        out = self._line(self._tail) if self._tail else b""
        self._tail = b""
        for stream, (stamp, text) in self._partial.items():
            out += self._format(stamp, stream, text)
        self._partial.clear()
        return out

    def _line(self, line: bytes) -> bytes:
        parts = line.split(b" ", 3)
        if len(parts) < 3 or parts[2] not in (b"F", b"P") or not parts[0].endswith(b"Z"):
            return line + b"\n"
        stamp, stream, tag = parts[0], parts[1], parts[2]
        text = parts[3] if len(parts) == 4 else b""
        if stream in self._partial:
            first, earlier = self._partial.pop(stream)
            stamp, text = first, earlier + text
        if tag == b"P":
            self._partial[stream] = (stamp, text)
            return b""
        return self._format(stamp, stream, text)

    def _format(self, stamp: bytes, stream: bytes, text: bytes) -> bytes:
        if self.timestamps:
            return stamp + b" " + stream + b" " + text + b"\n"
        if stream == b"shoal":
            return b"[shoal] " + text + b"\n"
        return text + b"\n"
