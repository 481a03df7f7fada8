"""`shoal submit --from-file FILE`: many jobs from one file, in one SubmitJobs call per 1,000.

The file has one job per line: a JSON object with the fields of AWS Batch's SubmitJob request,
camelCase, as `shoal describe --output json` names them:

    {"jobName": "render-7", "jobQueue": "default", "jobDefinition": "render:2",
     "containerOverrides": {"command": ["./render", "7"], "environment": [{"name": "K", "value": "v"}],
                            "vcpus": 0.5, "memory": 512, "image": "localhost/r:1", "runtime": "podman"},
     "dependsOn": [{"jobId": "6f1c...", "type": "N_TO_N"}], "arrayProperties": {"size": 10, "parallelism": 2},
     "retryStrategy": {"attempts": 3, "evaluateOnExit": [{"onStatusReason": "Host*", "action": "RETRY"}]},
     "timeout": {"attemptDurationSeconds": 600}, "parameters": {"in": "a.txt"}, "tags": {"team": "x"}}

`memory` is MiB (AWS's name; `memoryMib` is accepted too), enum values are bare names
("N_TO_N", "RETRY"), `jobName` defaults to the command's basename (as for `shoal submit -- CMD`)
and `jobQueue` to --queue. Blank lines and lines starting with `#` are skipped.

Every line is parsed and checked with the controller's own validation (controller/domain/
validation.py, pure code) before anything is sent, so a bad line is refused with its line
number and nothing is submitted. Each SubmitJobs call is atomic on the server too; what only the
server can know (an unknown queue or dependency) refuses that call as a whole, and with more
than 1,000 lines the calls before it stay submitted (their ids are printed, and the error says
which lines were not).
"""

from __future__ import annotations

from shoal.cli.console import EXIT_OK, EXIT_REFUSED, UsageError, note, out
from shoal.errors import ShoalError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

BATCH = 1000
"""Jobs per SubmitJobs call: the server's limit (README, Limits)."""

_PER_JOB_FLAGS = (
    ("name", "--name"), ("definition", "--definition"), ("vcpus", "--vcpus"), ("memory", "--memory"),
    ("image", "--image"), ("runtime", "--runtime"), ("env", "--env"), ("array_size", "--array-size"),
    ("array_parallelism", "--array-parallelism"), ("depends_on", "--depends-on"), ("parameter", "--parameter"),
    ("retry_attempts", "--retry-attempts"), ("timeout", "--timeout"),
)  # fmt: skip


class LineError(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


def _enum(value: Any, prefix: str) -> Any:
    """"N_TO_N" -> "DEPENDENCY_TYPE_N_TO_N" (the full names proto3 JSON wants)."""
    if isinstance(value, str) and value and not value.upper().startswith(prefix):
        return prefix + value.upper()
    if isinstance(value, str):
        return value.upper()
    return value


def to_api(doc: Any, default_queue: str = "") -> dict[str, Any]:
    """One line's object (AWS style) -> the SubmitJob request's proto3 JSON. Structure only:
    unknown keys and wrong types are found by the protobuf parser afterwards."""
    if not isinstance(doc, dict):
        raise ValueError(f"expected a JSON object, got {type(doc).__name__}")
    request = dict(doc)
    overrides = request.get("containerOverrides")
    if isinstance(overrides, dict):
        overrides = dict(overrides)
        if "memory" in overrides:
            if "memoryMib" in overrides:
                raise ValueError("containerOverrides: give memory or memoryMib, not both")
            overrides["memoryMib"] = overrides.pop("memory")
        request["containerOverrides"] = overrides
    deps = request.get("dependsOn")
    if isinstance(deps, list):
        request["dependsOn"] = [
            {**d, "type": _enum(d["type"], "DEPENDENCY_TYPE_")} if isinstance(d, dict) and "type" in d else d
            for d in deps
        ]
    retry = request.get("retryStrategy")
    if isinstance(retry, dict) and isinstance(retry.get("evaluateOnExit"), list):
        request["retryStrategy"] = {
            **retry,
            "evaluateOnExit": [
                {**r, "action": _enum(r["action"], "RETRY_ACTION_")} if isinstance(r, dict) and "action" in r else r
                for r in retry["evaluateOnExit"]
            ],
        }
    if not request.get("jobQueue") and default_queue:
        request["jobQueue"] = default_queue
    if "jobName" not in request:
        from shoal.cli.jobs import derive_job_name

        command = overrides.get("command") if isinstance(overrides, dict) else None
        definition = request.get("jobDefinition")
        request["jobName"] = derive_job_name(
            [str(c) for c in command] if isinstance(command, list) else [],
            definition if isinstance(definition, str) else "",
        )
    return request


def parse_lines(text: str, default_queue: str = "") -> list[tuple[int, dict[str, Any]]]:
    """(line number, SubmitJob request as proto3 JSON) of every job in `text`, each validated;
    the first bad line raises LineError and nothing else happens."""
    import json

    from google.protobuf import json_format

    from controller.domain import validation
    from shoal.v1 import batch_pb2

    jobs: list[tuple[int, dict[str, Any]]] = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            doc = json.loads(stripped)
        except json.JSONDecodeError as err:
            raise LineError(number, f"not valid JSON: {err.msg} (column {err.colno})") from None
        try:
            request = to_api(doc, default_queue)
            message = json_format.ParseDict(request, batch_pb2.SubmitJobRequest())
        except (ValueError, json_format.ParseError) as err:
            raise LineError(number, _plain(str(err))) from None
        try:
            # The server's own checks (pure code); the array bound is the highest any controller
            # accepts: the one this cluster was started with is checked when the call arrives.
            validation.validate_submit(message, max_array_size=validation.ARRAY_SIZE_CAP)
        except ShoalError as err:
            raise LineError(number, err.message) from None
        jobs.append((number, request))
    return jobs


def _plain(message: str) -> str:
    """json_format's messages, made one line about the file's own terms."""
    first = message.splitlines()[0] if message else message
    marker = "has no field named "
    if marker in first:
        field = first.split(marker, 1)[1].split(" at ", 1)[0].rstrip(".")
        where = first.split('Message type "', 1)[-1].split('"', 1)[0].removeprefix("shoal.v1.")
        return f"unknown field {field} in {where}"
    return first.replace(" at SubmitJobRequest.", " at ").rstrip(".")


def _server_lines(message: str, batch: list[tuple[int, Any]], path: str) -> str:
    """The server names a job of a call as jobs[i]; say which line of the file that is."""
    import re

    match = re.match(r"jobs\[(\d+)\]\.?", message)
    if match and int(match.group(1)) < len(batch):
        return f"{path}:{batch[int(match.group(1))][0]}: {message[match.end():]}"
    return message


def _read(path: str) -> str:
    import sys

    if path == "-":
        return sys.stdin.read()
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as err:
        raise UsageError(f"--from-file: cannot read {path}: {err.strerror}") from None
    except UnicodeDecodeError as err:
        raise UsageError(f"--from-file: {path} is not UTF-8 text ({err.reason} at byte {err.start})") from None


def run(args: Any) -> int:
    from shoal.cli import render
    from shoal.cli.jobs import _jobs, _wait

    if args.command:
        raise UsageError("--from-file takes the jobs from the file: give no command after --")
    given = [flag for dest, flag in _PER_JOB_FLAGS if getattr(args, dest, None) not in (None, "", [])]
    if given:
        raise UsageError(f"--from-file: {given[0]} does not apply (set it in the file's lines; --queue is the default queue)")
    path = args.from_file
    try:
        jobs = parse_lines(_read(path), default_queue=args.queue)
    except LineError as err:
        raise UsageError(f"{path}:{err.line}: {err.message} (nothing was submitted)") from None
    if not jobs:
        raise UsageError(f"--from-file: {path} has no jobs")
    submitted: list[dict[str, Any]] = []
    with _jobs(args) as api:
        for start in range(0, len(jobs), BATCH):
            batch = jobs[start : start + BATCH]
            try:
                answers = api.submit_jobs([request for _, request in batch])
            except ShoalError as err:
                err.message = _server_lines(err.message, batch, path)
                if not submitted:
                    raise
                if args.output == "json":
                    out(render.dumps({"jobs": [{"jobId": a.get("jobId", ""), "jobName": a.get("jobName", "")} for a in submitted]}))
                note(
                    f"shoal: lines {batch[0][0]}-{jobs[-1][0]} of {path} were not submitted: {err.message} "
                    f"(the {len(submitted)} job(s) of the lines before were)"
                )
                return EXIT_REFUSED
            submitted.extend(answers)
            if args.output != "json":
                out("\n".join(a.get("jobId", "") for a in answers))
        if args.output == "json":
            docs = [{"jobId": a.get("jobId", ""), "jobName": a.get("jobName", "")} for a in submitted]
            out(render.dumps({"jobs": docs}))
        if not args.wait:
            return EXIT_OK
        return _wait(api, [a.get("jobId", "") for a in submitted], None, lines_to_stderr=True, output="table")
