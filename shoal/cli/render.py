"""Turning shoal.v1 messages into what the CLI prints: JSON for scripts, tables for people.

JSON follows AWS Batch's shape: camelCase keys, plain status names ("RUNNABLE", not
"JOB_STATUS_RUNNABLE"), times in epoch milliseconds, and null for a time that has not happened
yet (the API's 0) or an exit code that does not exist. Keys are always present, so a script can
index them without guarding.

Tables align columns with two spaces, show times as local ISO-8601 and ages as "3s", "5m", "2h".
"""

from __future__ import annotations

import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Any

    from shoal.v1 import types_pb2

# Loaded on first use (json, shlex, datetime, the generated protobuf code): `shoal jobs list`
# and `shoal describe` go through here on every call, and most of it they never need.


def enum_label(enum: str, value: int) -> str:
    """The bare name of a value of the shoal.v1 enum named `enum` ("NodeStatus", 3 -> "DRAINED")."""
    from shoal.client import enum_name
    from shoal.v1 import types_pb2

    return enum_name(getattr(types_pb2, enum), value)


# --- scalars ---------------------------------------------------------------------------------------


def ms(value: int) -> int | None:
    """An API time for JSON: epoch milliseconds, None when it has not happened (0)."""
    return int(value) if value else None


def num(value: float) -> int | float:
    """1.0 -> 1, 0.5 -> 0.5: vCPU counts read as people write them."""
    return int(value) if float(value).is_integer() else float(value)


def local_time(value: int) -> str:
    """Epoch ms -> local ISO-8601 to the second ('' for 0), e.g. 2024-05-01T14:00:00+02:00.

    With the time module: datetime costs `shoal describe` an import for one format.
    """
    if not value:
        return ""
    t = time.localtime(value // 1000)
    offset = t.tm_gmtoff or 0
    sign = "-" if offset < 0 else "+"
    hours, minutes = divmod(abs(offset) // 60, 60)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f"{sign}{hours:02d}:{minutes:02d}"


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
    import json

    return json.dumps(document, indent=2, ensure_ascii=False)


# --- JSON documents --------------------------------------------------------------------------------


def container_json(c: types_pb2.ContainerProperties) -> dict[str, Any]:
    from shoal.cli import jobview

    return jobview.container_json(jobview.from_message(c))


def retry_json(r: types_pb2.RetryStrategy) -> dict[str, Any]:
    from shoal.cli import jobview

    return jobview.retry_json(jobview.from_message(r))


def node_json(n: types_pb2.Node) -> dict[str, Any]:
    """One node of `shoal nodes list --output json` (inside "nodes")."""
    return {
        "nodeId": n.node_id,
        "hostname": n.hostname,
        "status": enum_label("NodeStatus", n.status),
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
        "state": enum_label("EntityState", q.state),
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
        "type": enum_label("ComputeEnvironmentType", ce.type),
        "state": enum_label("EntityState", ce.state),
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


_SHELL_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_@%+=:,./-")


def shell_quote(word: str) -> str:
    """shlex.quote, without importing shlex (and re with it) on `shoal describe`'s path."""
    if not word:
        return "''"
    if all(ch in _SHELL_SAFE for ch in word):
        return word
    return "'" + word.replace("'", "'\"'\"'") + "'"


def command_line(argv: Sequence[str]) -> str:
    return " ".join(shell_quote(word) for word in argv)


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
    if "node_details" in job.DESCRIPTOR.fields_by_name and job.HasField("node_details"):
        d = job.node_details
        result["nodeDetails"] = {
            "nodeIndex": d.node_index,
            "isMainNode": d.is_main_node,
            "numNodes": d.num_nodes,
            "mainNodeIndex": d.main_node_index,
            "mainNodeAddress": d.main_node_address,
        }
    return result


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
