"""Jobs as the CLI prints them (describe, jobs list, wait), from their proto3 JSON form.

Both of the CLI's ways to a controller end here: the HTTP path gets jobs as proto3 JSON dicts
(camelCase keys, enums by full name, int64 as strings, default values left out), the gRPC path
turns its messages into the same dicts (`from_message`). One renderer for both is what makes
their output identical by construction.

The output shapes are those of shoal/cli/render.py's module docstring (AWS Batch's: plain status
names, epoch milliseconds, null for what has not happened, every key present).
"""

from __future__ import annotations

from shoal.cli import render

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    Doc = Mapping[str, Any]


def from_message(message: Any) -> dict[str, Any]:
    """A shoal.v1 message as the native HTTP routes send it (proto3 JSON)."""
    from google.protobuf import json_format

    return json_format.MessageToDict(message)


def enum(value: object, prefix: str) -> str:
    """'JOB_STATUS_RUNNABLE' -> 'RUNNABLE'; absent (the zero value) -> ''; a number stays one."""
    if value is None or value == 0:
        return ""
    return str(value).removeprefix(prefix)


def integer(value: object) -> int:
    """proto3 JSON sends int64 as strings and leaves zeros out."""
    return int(value) if value else 0  # type: ignore[call-overload]


def status(job: Doc) -> str:
    return enum(job.get("status"), "JOB_STATUS_")


def is_final(job: Doc) -> bool:
    return status(job) in ("SUCCEEDED", "FAILED")


def _environment(env: list[Doc]) -> list[dict[str, str]]:
    return [{"name": kv.get("name", ""), "value": kv.get("value", "")} for kv in env]


def container_json(c: Doc) -> dict[str, Any]:
    resources = c.get("resources", {})
    return {
        "image": c.get("image", ""),
        "command": list(c.get("command", [])),
        "environment": _environment(c.get("environment", [])),
        "vcpus": render.num(resources.get("vcpus", 0)),
        "memory": integer(resources.get("memoryMib")),
        "gpus": integer(resources.get("gpus")),
        "runtime": c.get("runtime", ""),
    }


def retry_json(r: Doc) -> dict[str, Any]:
    return {
        "attempts": integer(r.get("attempts")) or 1,
        "evaluateOnExit": [
            {
                "onExitCode": rule.get("onExitCode", ""),
                "onReason": rule.get("onReason", ""),
                "onStatusReason": rule.get("onStatusReason", ""),
                "action": enum(rule.get("action"), "RETRY_ACTION_"),
            }
            for rule in r.get("evaluateOnExit", [])
        ],
        "interruptionAttempts": integer(r.get("interruptionAttempts")),
    }


def _exit_code(doc: Doc) -> int | None:
    # exit_code is `optional`: present (even when 0) exactly when it was set.
    return int(doc["exitCode"]) if "exitCode" in doc else None


def attempt_json(a: Doc) -> dict[str, Any]:
    return {
        "attempt": integer(a.get("attempt")),
        "exitCode": _exit_code(a),
        "statusReason": a.get("statusReason", ""),
        "reason": a.get("reason", ""),
        "nodeId": a.get("nodeId", ""),
        "startedAt": render.ms(integer(a.get("startedAt"))),
        "stoppedAt": render.ms(integer(a.get("stoppedAt"))),
        "interrupted": bool(a.get("interrupted", False)),
        "gpuIds": list(a.get("gpuIds", [])),
        **({"mainNodeAddress": a["mainNodeAddress"]} if a.get("mainNodeAddress") else {}),
    }


def job_json(job: Doc) -> dict[str, Any]:
    """One job as `shoal describe --output json` prints it."""
    array = job.get("arrayProperties", {})
    return {
        "jobId": job.get("jobId", ""),
        "jobName": job.get("jobName", ""),
        "jobQueue": job.get("jobQueue", ""),
        "status": status(job),
        "statusReason": job.get("statusReason", ""),
        "createdAt": render.ms(integer(job.get("createdAt"))),
        "startedAt": render.ms(integer(job.get("startedAt"))),
        "stoppedAt": render.ms(integer(job.get("stoppedAt"))),
        "attempts": [attempt_json(a) for a in job.get("attempts", [])],
        "jobDefinition": job.get("jobDefinition", ""),
        "dependsOn": [
            {"jobId": d.get("jobId", ""), "type": enum(d.get("type"), "DEPENDENCY_TYPE_")}
            for d in job.get("dependsOn", [])
        ],
        "container": container_json(job.get("container", {})),
        "retryStrategy": retry_json(job.get("retryStrategy", {})),
        "timeout": {"attemptDurationSeconds": integer(job.get("timeout", {}).get("attemptDurationSeconds"))},
        "arrayProperties": {"size": integer(array.get("size")), "index": integer(array.get("index"))},
        **nodes_json(job),
        "nodeId": job.get("nodeId", ""),
        "computeEnvironment": job.get("computeEnvironment", ""),
        "parameters": dict(job.get("parameters", {})),
        "tags": dict(job.get("tags", {})),
        "shareIdentifier": job.get("shareIdentifier", ""),
        "schedulingPriority": integer(job.get("schedulingPriority")),
        "gpuIds": list(job.get("gpuIds", [])),
    }


def nodes_json(job: Doc) -> dict[str, Any]:
    """AWS's nodeProperties (a multi-node job) and nodeDetails (one of its nodes, JOB#N)."""
    result: dict[str, Any] = {}
    props = job.get("nodeProperties", {})
    if integer(props.get("numNodes")):
        result["nodeProperties"] = {
            "numNodes": integer(props.get("numNodes")),
            "mainNode": integer(props.get("mainNode")),
            "nodeRangeProperties": [
                {"targetNodes": r.get("targetNodes", ""), "container": container_json(r.get("container", {}))}
                for r in props.get("nodeRangeProperties", [])
            ],
        }
    if "nodeDetails" in job:
        d = job["nodeDetails"]
        result["nodeDetails"] = {
            "nodeIndex": integer(d.get("nodeIndex")),
            "isMainNode": bool(d.get("isMainNode", False)),
            "numNodes": integer(d.get("numNodes")),
            "mainNodeIndex": integer(d.get("mainNodeIndex")),
            "mainNodeAddress": d.get("mainNodeAddress", ""),
        }
    return result


def node_fields(job: Doc) -> list[tuple[str, str]]:
    """`shoal describe` lines of a multi-node parent or node."""
    props = job.get("nodeProperties", {})
    fields = []
    count = integer(props.get("numNodes"))
    if count:
        ranges = "; ".join(
            f"{r.get('targetNodes', '')}: "
            + (render.command_line(r["container"]["command"]) if r.get("container", {}).get("command")
               else r.get("container", {}).get("image", ""))
            for r in props.get("nodeRangeProperties", [])
        )  # fmt: skip
        main = integer(props.get("mainNode"))
        fields.append(("Nodes", f"{count} (main node {main}; {job.get('jobId', '')}#0 .. #{count - 1})"))
        fields.append(("Node ranges", ranges or "-"))
    if "nodeDetails" in job:
        d = job["nodeDetails"]
        main = "main node" if d.get("isMainNode") else f"main node {integer(d.get('mainNodeIndex'))}"
        fields.append(("Node index", f"{integer(d.get('nodeIndex'))} of {integer(d.get('numNodes'))} "
                                     f"({main} at {d.get('mainNodeAddress') or '-'})"))
    return fields


def summary_json(s: Doc) -> dict[str, Any]:
    """One line of `shoal jobs list --output json` (inside "jobSummaryList")."""
    return {
        "jobId": s.get("jobId", ""),
        "jobName": s.get("jobName", ""),
        "jobQueue": s.get("jobQueue", ""),
        "status": status(s),
        "statusReason": s.get("statusReason", ""),
        "createdAt": render.ms(integer(s.get("createdAt"))),
        "startedAt": render.ms(integer(s.get("startedAt"))),
        "stoppedAt": render.ms(integer(s.get("stoppedAt"))),
        "exitCode": _exit_code(s),
        "nodeId": s.get("nodeId", ""),
        "attempts": integer(s.get("attempts")),
    }


def summary_table(summaries: list[Doc]) -> str:
    rows = [
        (
            s.get("jobId", ""),
            s.get("jobName", ""),
            s.get("jobQueue", ""),
            status(s),
            "" if _exit_code(s) is None else _exit_code(s),
            render.age(integer(s.get("createdAt"))),
            render.shorten(s.get("statusReason", "")),
        )
        for s in summaries
    ]
    return render.table(("JOB ID", "NAME", "QUEUE", "STATUS", "EXIT", "CREATED", "REASON"), rows)


def status_line(job: Doc) -> str:
    """'<id> FAILED (exit 1): Essential container in task exited' — the end of a wait."""
    line = f"{job.get('jobId', '')} {status(job)}"
    exits = [_exit_code(a) for a in job.get("attempts", [])]
    last_exit = next((e for e in reversed(exits) if e is not None), None)
    if last_exit is not None:
        line += f" (exit {last_exit})"
    if job.get("statusReason"):
        line += f": {job['statusReason']}"
    return line


def job_detail(job: Doc, now_ms: int | None = None) -> str:
    """A job as `shoal describe` shows it to a person: key/value lines, then its attempts."""

    def when(value: int) -> str:
        return f"{render.local_time(value)} ({render.age(value, now_ms)} ago)" if value else "-"

    c = job.get("container", {})
    r = c.get("resources", {})
    resources = []
    if r.get("vcpus"):
        resources.append(f"{render.num(r['vcpus'])} vCPU")
    if integer(r.get("memoryMib")):
        resources.append(f"{integer(r['memoryMib'])} MiB")
    if integer(r.get("gpus")):
        resources.append(f"{integer(r['gpus'])} GPU")
    command = list(c.get("command", []))
    fields: list[tuple[str, str]] = [
        ("Job ID", job.get("jobId", "")),
        ("Name", job.get("jobName", "")),
        ("Queue", job.get("jobQueue", "")),
        ("Status", status(job)),
        ("Reason", job.get("statusReason") or "-"),
        ("Definition", job.get("jobDefinition") or "-"),
        ("Command", render.command_line(command) if command else "-"),
    ]
    if c.get("image"):
        fields.append(("Image", c["image"]))
    fields += [
        ("Resources", ", ".join(resources) or "-"),
        ("Retry attempts", str(integer(job.get("retryStrategy", {}).get("attempts")) or 1)),
    ]
    timeout = integer(job.get("timeout", {}).get("attemptDurationSeconds"))
    if timeout:
        fields.append(("Timeout", f"{timeout}s per attempt"))
    deps = job.get("dependsOn", [])
    if deps:
        shown = []
        for d in deps:
            kind = enum(d.get("type"), "DEPENDENCY_TYPE_")
            shown.append(d.get("jobId", "") + (f" ({kind})" if kind else ""))
        fields.append(("Depends on", ", ".join(shown)))
    size = integer(job.get("arrayProperties", {}).get("size"))
    if size:
        fields.append(("Array size", str(size)))
    if job.get("shareIdentifier"):
        fields.append(("Share", f"{job['shareIdentifier']} (scheduling priority {integer(job.get('schedulingPriority'))})"))
    fields += node_fields(job)
    if job.get("nodeId"):
        env = job.get("computeEnvironment", "")
        fields.append(("Node", job["nodeId"] + (f" ({env})" if env else "")))
    if job.get("gpuIds"):
        fields.append(("GPU devices", ",".join(job["gpuIds"])))
    fields += [
        ("Created", when(integer(job.get("createdAt")))),
        ("Started", when(integer(job.get("startedAt")))),
        ("Stopped", when(integer(job.get("stoppedAt")))),
    ]
    width = max(len(k) for k, _ in fields) + 1
    lines = [f"{(k + ':').ljust(width)}  {v}" for k, v in fields]
    attempts = job.get("attempts", [])
    if attempts:
        lines.append("Attempts:")
        rows = [
            (
                integer(a.get("attempt")),
                a.get("nodeId") or "-",
                "-" if _exit_code(a) is None else _exit_code(a),
                render.local_time(integer(a.get("startedAt"))) or "-",
                render.local_time(integer(a.get("stoppedAt"))) or "-",
                a.get("statusReason") or "-",
            )
            for a in attempts
        ]
        body = render.table(("#", "NODE", "EXIT", "STARTED", "STOPPED", "REASON"), rows)
        lines += ["  " + line for line in body.splitlines()]
    return "\n".join(lines)
