"""Job commands: submit, describe, jobs list, wait, logs, cancel, terminate."""

from __future__ import annotations

from shoal.cli import values
from shoal.cli.console import EXIT_JOB_FAILED, EXIT_OK, EXIT_REFUSED, EXIT_USAGE, UsageError, note, out

# This module is on the path of every `shoal submit` / `describe` / `jobs list` / `wait`: its
# top level imports nothing heavy (argparse, protobuf, the SDK are imported where used).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any

    from shoal.cli.transport import Jobs
    from shoal.v1 import types_pb2

SUBMIT_HELP = """\
Submit a job and print its id.

The command comes after `--` and runs as given (no shell: use `sh -c '...'` for pipes and
variables). With --definition the command, environment and resources default to the
definition's; the flags here override them.

examples:
  shoal submit -- sleep 30
  shoal submit --queue gpu --vcpus 4 --memory 8192 --env EPOCHS=10 -- python train.py
  shoal submit --definition hello:2 --env NAME=you
  shoal submit --depends-on 6f1c...e2 --retry-attempts 3 --timeout 600 -- ./step2.sh
  shoal submit --wait -- make test          # exit status follows the job's
  shoal submit --gpus 1 -- python train.py  # on a node with a free GPU; CUDA_VISIBLE_DEVICES set
  shoal submit --queue fair --share-identifier teamA --scheduling-priority 10 -- ./etl.sh
  shoal submit --from-file jobs.jsonl       # one job per line, in one call per 1,000 lines

--from-file: each line is one job, a JSON object with the fields of AWS Batch's SubmitJob
(camelCase), e.g.
  {"jobName": "render-1", "jobQueue": "default", "containerOverrides": {"command": ["./render", "1"],
   "vcpus": 0.5, "memory": 512, "environment": [{"name": "K", "value": "v"}]},
   "dependsOn": [{"jobId": "6f1c...", "type": "N_TO_N"}], "arrayProperties": {"size": 10},
   "retryStrategy": {"attempts": 3}, "timeout": {"attemptDurationSeconds": 600},
   "parameters": {"in": "a.txt"}, "tags": {"team": "x"}}
jobName defaults to the command's basename. Blank lines and lines starting with # are skipped.
Every line is checked before anything is sent; a bad line is refused with its number and
nothing is submitted. The ids are printed one per line, in the order of the lines ("-" reads
standard input). Flags given with --from-file (--queue, --vcpus, ...) are defaults for the
lines that do not set them.
"""

WAIT_HELP = """\
Wait until every job is SUCCEEDED or FAILED and print its final status.

exit status: 0 all SUCCEEDED, 1 any FAILED, 2 timed out (also 3 for an unknown job id,
4 if no controller can be reached).
"""

_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def derive_job_name(command: Sequence[str], definition: str = "") -> str:
    """A job name from the command's basename ("/usr/bin/sleep 5" -> "sleep"), made valid.

    Names are 1-128 letters, digits, hyphens and underscores, starting with a letter or digit:
    every run of other characters becomes one "-". Without a command the definition's name is
    used; failing both, "job".
    """
    if command:
        head = command[0].rstrip("/")
        base = head.rpartition("/")[2] or command[0]
    else:
        base = definition.split(":", 1)[0]
    chars: list[str] = []
    in_run = False
    for ch in base:
        if ch in _NAME_CHARS:
            chars.append(ch)
            in_run = False
        elif not in_run:
            chars.append("-")
            in_run = True
    name = "".join(chars).lstrip("-_")[:128].rstrip("-")
    return name or "job"


def dependency_json(text: str) -> dict[str, str]:
    """'ID' -> plain dependency; 'ID:N_TO_N', 'ID:AFTER_ANY', ... -> typed (proto3 JSON).

    Array children have ids like '<uuid>:<index>', so only a trailing type name (any case) is
    read as the type; any other colon belongs to the id. 'SEQUENTIAL' alone (or ':SEQUENTIAL')
    orders the submitted array's own children, as AWS Batch's job-id-less SEQUENTIAL does.
    """
    text = text.strip()
    if text.upper() in ("SEQUENTIAL", ":SEQUENTIAL"):
        return {"type": "DEPENDENCY_TYPE_SEQUENTIAL"}
    for name in values.DEPENDENCY_TYPES:
        suffix = ":" + name
        if text.upper().endswith(suffix):
            job_id = text[: -len(suffix)]
            if not job_id:
                raise UsageError(f"--depends-on: missing job id in {text!r}")
            return {"jobId": job_id, "type": "DEPENDENCY_TYPE_" + name}
    if not text:
        raise UsageError("--depends-on: expected JOB_ID[:N_TO_N|SEQUENTIAL], got an empty value")
    return {"jobId": text}


def parse_dependency(text: str) -> types_pb2.JobDependency:
    """`dependency_json` as a shoal.v1 JobDependency (for SDK users of the CLI's syntax)."""
    from google.protobuf import json_format

    from shoal.v1 import types_pb2

    return json_format.ParseDict(dependency_json(text), types_pb2.JobDependency())


def parse_env(text: str) -> tuple[str, str]:
    from shoal.cli.options import key_value

    return key_value(text)


# --- registration ----------------------------------------------------------------------------------


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from shoal.cli.options import (
        addr_parent,
        formatter,
        job_status,
        non_negative_int,
        output_parent,
        positive_float,
        positive_int,
    )

    addr, output = addr_parent(), output_parent()

    p = sub.add_parser(
        "submit",
        parents=[addr, output],
        help="submit a job (prints its id)",
        description=SUBMIT_HELP,
        formatter_class=formatter,
        usage="shoal submit [options] -- COMMAND [ARG...]\n       shoal submit --from-file FILE [options]",
    )
    p.add_argument(
        "-q", "--queue", default="", metavar="Q", help="job queue (default: the queue named 'default')"
    )
    p.add_argument(
        "-n", "--name", default="", help="job name (default: the command's basename, e.g. 'sleep')"
    )
    p.add_argument(
        "-d",
        "--definition",
        default="",
        metavar="NAME[:REV]",
        help="job definition (latest active revision without :REV)",
    )
    p.add_argument(
        "--vcpus", type=positive_float, metavar="N", help="vCPUs to reserve, may be fractional (0.5)"
    )
    p.add_argument("--memory", type=positive_int, metavar="MIB", help="memory to reserve, in MiB")
    p.add_argument("--gpus", type=non_negative_int, metavar="N",
                   help="whole GPUs to reserve; the job gets its devices in CUDA_VISIBLE_DEVICES")
    p.add_argument("--share-identifier", default="", metavar="ID",
                   help="fair-share queues (required there): the share this job's usage is charged to")
    p.add_argument("--scheduling-priority", type=non_negative_int, metavar="N",
                   help="fair-share queues: 0-9999, higher runs first within its share (overrides the definition's)")
    p.add_argument("--image", metavar="IMAGE",
                   help="container image: the job runs in a podman/docker container on a node that has one")
    p.add_argument("--runtime", default="", choices=("", "process", "podman", "docker"),
                   help="require this runtime (default: any node that can run the job)")
    p.add_argument(
        "-e",
        "--env",
        action="append",
        type=parse_env,
        default=[],
        metavar="K=V",
        help="environment variable (repeatable)",
    )
    p.add_argument(
        "--array-size",
        type=int,
        metavar="N",
        help="an array job of N children (2-10000, or up to the controller's --max-array-size), each with SHOAL_JOB_ARRAY_INDEX / AWS_BATCH_JOB_ARRAY_INDEX",
    )
    p.add_argument(
        "--array-parallelism",
        type=positive_int,
        metavar="K",
        help="run at most K children of the array at once (like Slurm's --array=...%%K)",
    )
    p.add_argument(
        "--num-nodes",
        type=positive_int,
        metavar="N",
        help="a multi-node parallel job: N nodes (1-128) on distinct hosts, all started together "
        "(main node first); each runs the command with SHOAL_NODE_INDEX, SHOAL_NUM_NODES, "
        "SHOAL_MAIN_NODE_INDEX and SHOAL_MAIN_NODE_ADDR (and the AWS_BATCH_JOB_* twins); node i is "
        "the job JOB#i (shoal describe / logs JOB#1). With a multi-node --definition: overrides its count",
    )
    p.add_argument(
        "--main-node",
        type=int,
        metavar="I",
        help="index of the main node (default 0): it starts first, and its exit ends the job and decides its status",
    )
    p.add_argument(
        "--depends-on",
        action="append",
        default=[],
        metavar="JOB_ID[:TYPE]",
        help="start only after JOB_ID SUCCEEDED (repeatable, up to 20). TYPE: N_TO_N (array child i "
        "waits for child i of JOB_ID), AFTER_ANY (after JOB_ID ends either way), AFTER_NOT_OK (only "
        "if JOB_ID FAILED); `--depends-on SEQUENTIAL` runs this array's children one after another",
    )
    p.add_argument(
        "-p",
        "--parameter",
        action="append",
        type=parse_env,
        default=[],
        metavar="NAME=VALUE",
        help="fills Ref::NAME in the definition's command, overriding its default (repeatable)",
    )
    p.add_argument(
        "--retry-attempts",
        type=int,
        metavar="N",
        help="attempts in total, 1-10 (default: 1, or the definition's)",
    )
    p.add_argument(
        "--timeout",
        type=positive_int,
        metavar="SECONDS",
        help="per-attempt time limit; the attempt is killed after it",
    )
    p.add_argument(
        "--wait", action="store_true", help="wait for the job to finish; exit status as for `shoal wait`"
    )
    p.add_argument(
        "-f", "--from-file", metavar="FILE",
        help="submit the jobs of FILE, one JSON object per line (see above; '-' = stdin); prints their ids",
    )
    p.add_argument("command", nargs="*", metavar="COMMAND", help="the command and its arguments, after --")
    p.set_defaults(func=run_submit)

    p = sub.add_parser(
        "describe", parents=[addr, output], help="show jobs in detail", formatter_class=formatter
    )
    p.add_argument("job_ids", nargs="+", metavar="JOB_ID")
    p.set_defaults(func=run_describe)

    p = sub.add_parser(
        "wait",
        parents=[addr, output],
        help="wait for jobs to finish",
        description=WAIT_HELP,
        formatter_class=formatter,
    )
    p.add_argument("job_ids", nargs="+", metavar="JOB_ID")
    p.add_argument(
        "--timeout", type=positive_float, metavar="SECONDS", help="give up after this long (exit 2)"
    )
    p.set_defaults(func=run_wait)

    p = sub.add_parser(
        "logs",
        parents=[addr],
        help="print a job's output",
        description=(
            "Print the output (stdout and stderr) of a job attempt: each line as the job printed "
            "it; lines from shoal itself (why it could not start, a timeout, an OOM kill) start "
            "with [shoal]. --timestamps adds the time and stream of each line; --raw prints the "
            "stored records (TIMESTAMP STREAM F|P TEXT)."
        ),
        formatter_class=formatter,
    )
    p.add_argument("job_id", metavar="JOB_ID")
    p.add_argument(
        "--attempt",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="1-based attempt (default: the latest)",
    )
    p.add_argument(
        "-f", "--follow", action="store_true", help="keep printing new output until the attempt ends"
    )
    p.add_argument("-t", "--timestamps", action="store_true", help="show each line's time and stream")
    p.add_argument("--raw", action="store_true", help="print the stored log records as they are")
    p.set_defaults(func=run_logs)

    p = sub.add_parser(
        "cancel",
        parents=[addr],
        help="cancel jobs that have not started",
        description="Cancel jobs that are not yet STARTING/RUNNING (a running job is left alone: use terminate). "
        "Takes several ids, e.g. from `shoal jobs list --status RUNNABLE --quiet | xargs shoal cancel`.",
    )
    p.add_argument("job_ids", nargs="+", metavar="JOB_ID")
    p.add_argument("--reason", default="Cancelled by user", help="recorded as the job's status reason")
    p.set_defaults(func=run_cancel)

    p = sub.add_parser(
        "terminate",
        parents=[addr],
        help="cancel jobs, killing them if running",
        description="Cancel jobs and kill those that are STARTING/RUNNING; they end FAILED and are not retried.",
    )
    p.add_argument("job_ids", nargs="+", metavar="JOB_ID")
    p.add_argument("--reason", default="Terminated by user", help="recorded as the job's status reason")
    p.set_defaults(func=run_terminate)

    jobs = sub.add_parser("jobs", help="list jobs", formatter_class=formatter)
    jobs.set_defaults(func=lambda args: _noun_help(jobs))
    jobs_sub = jobs.add_subparsers(title="commands", metavar="COMMAND")
    p = jobs_sub.add_parser(
        "list", parents=[addr, output], help="list jobs, oldest first", formatter_class=formatter
    )
    p.add_argument("-q", "--queue", default="", metavar="Q", help="only this queue")
    p.add_argument(
        "-s",
        "--status",
        type=job_status,
        default=None,
        metavar="STATUS",
        help="only this status: SUBMITTED PENDING RUNNABLE STARTING RUNNING SUCCEEDED FAILED",
    )
    p.add_argument(
        "--name-prefix", default="", metavar="PREFIX", help="only jobs whose name starts with PREFIX"
    )
    p.add_argument(
        "--quiet", action="store_true", help="print only the job ids, one per line (for xargs)"
    )
    p.set_defaults(func=run_list)


def _noun_help(parser: argparse.ArgumentParser) -> int:
    import sys

    parser.print_help(sys.stderr)
    return EXIT_USAGE


# --- commands --------------------------------------------------------------------------------------


def _jobs(args: Any) -> Jobs:
    from shoal.cli.transport import Jobs

    return Jobs(args)


def submit_request(args: Any) -> dict[str, Any]:
    """The SubmitJob request of the command line, as proto3 JSON (the same for HTTP and gRPC)."""
    if args.array_size is not None and args.array_size < 2:
        raise UsageError(f"--array-size must be at least 2, got {args.array_size}")
    if args.array_parallelism is not None and args.array_size is None:
        raise UsageError("--array-parallelism needs --array-size")
    depends_on = [dependency_json(d) for d in args.depends_on]
    if not args.command and not args.definition and not args.image:
        raise UsageError(
            "nothing to run: give a command after -- (e.g. shoal submit -- sleep 10), --image or --definition NAME"
        )
    if args.retry_attempts is not None and not 1 <= args.retry_attempts <= 10:
        raise UsageError(f"--retry-attempts must be between 1 and 10, got {args.retry_attempts}")
    if args.main_node is not None and args.num_nodes is None:
        raise UsageError("--main-node needs --num-nodes")
    if args.num_nodes is not None and args.array_size is not None:
        raise UsageError("--num-nodes and --array-size cannot be combined (a multi-node job is not an array)")
    if args.main_node is not None and not 0 <= args.main_node < args.num_nodes:
        raise UsageError(f"--main-node must be 0..{args.num_nodes - 1} (a node index), got {args.main_node}")

    overrides: dict[str, Any] = {}
    if args.command:
        overrides["command"] = list(args.command)
    if args.env:
        overrides["environment"] = [{"name": k, "value": v} for k, v in args.env]
    if args.vcpus is not None:
        overrides["vcpus"] = args.vcpus
    if args.memory is not None:
        overrides["memoryMib"] = args.memory
    if args.gpus is not None:
        overrides["gpus"] = args.gpus
    if args.image:
        overrides["image"] = args.image
    if args.runtime:
        overrides["runtime"] = args.runtime
    request: dict[str, Any] = {
        "jobName": args.name or derive_job_name(args.command, args.definition),
        "containerOverrides": overrides,
    }
    if args.queue:
        request["jobQueue"] = args.queue
    if args.definition:
        request["jobDefinition"] = args.definition
    if depends_on:
        request["dependsOn"] = depends_on
    if args.array_size:
        request["arrayProperties"] = {"size": args.array_size}
        if args.array_parallelism:
            request["arrayProperties"]["parallelism"] = args.array_parallelism
    if args.retry_attempts is not None:
        request["retryStrategy"] = {"attempts": args.retry_attempts}
    if args.timeout is not None:
        request["timeout"] = {"attemptDurationSeconds": args.timeout}
    if args.parameter:
        request["parameters"] = dict(args.parameter)
    if args.share_identifier:
        request["shareIdentifier"] = args.share_identifier
    if args.scheduling_priority is not None:
        request["schedulingPriorityOverride"] = args.scheduling_priority
    if args.num_nodes:
        request["nodeProperties"] = {"numNodes": args.num_nodes, "mainNode": args.main_node or 0}
    elif args.main_node:
        request["nodeProperties"] = {"mainNode": args.main_node}  # refused by the server without num_nodes
    return request


def run_submit(args: Any) -> int:
    if getattr(args, "from_file", None):
        from shoal.cli import jobfile

        return jobfile.run(args)
    request = submit_request(args)
    with _jobs(args) as jobs:
        response = jobs.submit_job(request)
        job_id = response.get("jobId", "")
        if args.output == "json":
            from shoal.cli import render

            out(render.dumps({"jobId": job_id, "jobName": response.get("jobName", "")}))
        else:
            out(job_id)
        if not args.wait:
            return EXIT_OK
        return _wait(jobs, [job_id], None, lines_to_stderr=True, output="table")


def run_wait(args: Any) -> int:
    with _jobs(args) as jobs:
        return _wait(jobs, list(args.job_ids), args.timeout, lines_to_stderr=False, output=args.output)


def _wait(jobs: Jobs, job_ids: list[str], timeout: float | None, *, lines_to_stderr: bool, output: str) -> int:
    from shoal.cli import jobview, render
    from shoal.errors import WaitTimeout

    emit = note if lines_to_stderr else out
    try:
        final = jobs.wait(job_ids, timeout)
    except WaitTimeout as err:
        if output == "json":
            docs = [jobview.job_json(j) for j in [*err.done.values(), *err.pending.values()]]
            out(render.dumps({"jobs": docs}))
        else:
            for job in err.done.values():
                emit(jobview.status_line(job))
        note(f"shoal: {err.message}")
        return EXIT_USAGE
    if output == "json":
        out(render.dumps({"jobs": [jobview.job_json(j) for j in final.values()]}))
    else:
        for job in final.values():
            emit(jobview.status_line(job))
    failed = any(jobview.status(j) == "FAILED" for j in final.values())
    return EXIT_JOB_FAILED if failed else EXIT_OK


def run_describe(args: Any) -> int:
    from shoal.cli import jobview

    ids = list(dict.fromkeys(args.job_ids))
    with _jobs(args) as jobs:
        found_jobs = jobs.describe_jobs(ids)
    by_id = {j.get("jobId", ""): j for j in found_jobs}
    found = [by_id[i] for i in ids if i in by_id]
    missing = [i for i in ids if i not in by_id]
    if args.output == "json":
        from shoal.cli import render

        out(render.dumps({"jobs": [jobview.job_json(j) for j in found]}))
    elif found:
        out("\n\n".join(jobview.job_detail(j) for j in found))
    for job_id in missing:
        note(f"shoal: job {job_id} not found")
    return EXIT_REFUSED if missing else EXIT_OK


def run_list(args: Any) -> int:
    from shoal.cli import jobview

    request: dict[str, Any] = {}
    if args.queue:
        request["jobQueue"] = args.queue
    if args.status:
        request["jobStatus"] = "JOB_STATUS_" + args.status
    if args.name_prefix:
        request["jobNamePrefix"] = args.name_prefix
    with _jobs(args) as jobs:
        summaries = jobs.list_jobs(request)
    if getattr(args, "quiet", False):
        if summaries:
            out("\n".join(s.get("jobId", "") for s in summaries))
        return EXIT_OK
    if args.output == "json":
        from shoal.cli import render

        out(render.dumps({"jobSummaryList": [jobview.summary_json(s) for s in summaries]}))
        return EXIT_OK
    out(jobview.summary_table(summaries))
    return EXIT_OK


def run_logs(args: argparse.Namespace) -> int:
    import sys

    from shoal.cli import render
    from shoal.cli.options import connect

    sink = sys.stdout.buffer
    renderer = None if args.raw else render.LogRenderer(timestamps=args.timestamps)
    with connect(args) as client:
        for chunk in client.get_job_logs(args.job_id, attempt=args.attempt, follow=args.follow):
            sink.write(chunk if renderer is None else renderer.feed(chunk))
            sink.flush()
    if renderer is not None:
        sink.write(renderer.flush())
        sink.flush()
    return EXIT_OK


def run_cancel(args: argparse.Namespace) -> int:
    with _jobs(args) as jobs:
        for job_id in dict.fromkeys(args.job_ids):
            jobs.cancel_job(job_id, args.reason)
            note(f"{job_id}: cancel requested")
    return EXIT_OK


def run_terminate(args: argparse.Namespace) -> int:
    with _jobs(args) as jobs:
        for job_id in dict.fromkeys(args.job_ids):
            jobs.terminate_job(job_id, args.reason)
            note(f"{job_id}: terminate requested")
    return EXIT_OK
