"""Job commands: submit, describe, jobs list, wait, logs, cancel, terminate."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence

from shoal.cli import render
from shoal.cli.options import (
    EXIT_JOB_FAILED,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    UsageError,
    addr_parent,
    connect,
    enum_type,
    formatter,
    non_negative_int,
    note,
    out,
    output_parent,
    positive_float,
    positive_int,
)
from shoal.client import Client, WaitTimeout, build_submit_request
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
"""

WAIT_HELP = """\
Wait until every job is SUCCEEDED or FAILED and print its final status.

exit status: 0 all SUCCEEDED, 1 any FAILED, 2 timed out (also 3 for an unknown job id,
4 if no controller can be reached).
"""

_NAME_INVALID = re.compile(r"[^A-Za-z0-9_-]+")
_DEPENDENCY_SUFFIXES = (
    (":N_TO_N", types_pb2.DEPENDENCY_TYPE_N_TO_N),
    (":SEQUENTIAL", types_pb2.DEPENDENCY_TYPE_SEQUENTIAL),
    (":AFTER_ANY", types_pb2.DEPENDENCY_TYPE_AFTER_ANY),
    (":AFTER_NOT_OK", types_pb2.DEPENDENCY_TYPE_AFTER_NOT_OK),
)


def derive_job_name(command: Sequence[str], definition: str = "") -> str:
    """A job name from the command's basename ("/usr/bin/sleep 5" -> "sleep"), made valid.

    Names are 1-128 letters, digits, hyphens and underscores, starting with a letter or digit.
    Without a command the definition's name is used; failing both, "job".
    """
    if command:
        base = os.path.basename(command[0].rstrip("/")) or command[0]
    else:
        base = definition.split(":", 1)[0]
    name = _NAME_INVALID.sub("-", base).lstrip("-_")[:128].rstrip("-")
    return name or "job"


def parse_dependency(text: str) -> types_pb2.JobDependency:
    """'ID' -> plain dependency; 'ID:N_TO_N', 'ID:AFTER_ANY', ... -> typed.

    Array children have ids like '<uuid>:<index>', so only a trailing type name (any case) is
    read as the type; any other colon belongs to the id. 'SEQUENTIAL' alone (or ':SEQUENTIAL')
    orders the submitted array's own children, as AWS Batch's job-id-less SEQUENTIAL does.
    """
    text = text.strip()
    if text.upper() in ("SEQUENTIAL", ":SEQUENTIAL"):
        return types_pb2.JobDependency(type=types_pb2.DEPENDENCY_TYPE_SEQUENTIAL)
    for suffix, dep_type in _DEPENDENCY_SUFFIXES:
        if text.upper().endswith(suffix):
            job_id = text[: -len(suffix)]
            if not job_id:
                raise UsageError(f"--depends-on: missing job id in {text!r}")
            return types_pb2.JobDependency(job_id=job_id, type=dep_type)
    if not text:
        raise UsageError("--depends-on: expected JOB_ID[:N_TO_N|SEQUENTIAL], got an empty value")
    return types_pb2.JobDependency(job_id=text)


def parse_env(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


# --- registration ----------------------------------------------------------------------------------


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    addr, output = addr_parent(), output_parent()

    p = sub.add_parser(
        "submit",
        parents=[addr, output],
        help="submit a job (prints its id)",
        description=SUBMIT_HELP,
        formatter_class=formatter,
        usage="shoal submit [options] -- COMMAND [ARG...]",
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
        help="cancel a job that has not started",
        description="Cancel a job that is not yet STARTING/RUNNING (a running job is left alone: use terminate).",
    )
    p.add_argument("job_id", metavar="JOB_ID")
    p.add_argument("--reason", default="Cancelled by user", help="recorded as the job's status reason")
    p.set_defaults(func=run_cancel)

    p = sub.add_parser(
        "terminate",
        parents=[addr],
        help="cancel a job, killing it if running",
        description="Cancel a job and kill it if it is STARTING/RUNNING; it ends FAILED and is not retried.",
    )
    p.add_argument("job_id", metavar="JOB_ID")
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
        type=enum_type(types_pb2.JobStatus, "status"),
        default=0,
        metavar="STATUS",
        help="only this status: SUBMITTED PENDING RUNNABLE STARTING RUNNING SUCCEEDED FAILED",
    )
    p.add_argument(
        "--name-prefix", default="", metavar="PREFIX", help="only jobs whose name starts with PREFIX"
    )
    p.set_defaults(func=run_list)


def _noun_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


# --- commands --------------------------------------------------------------------------------------


def run_submit(args: argparse.Namespace) -> int:
    # Flags whose behaviour a later release brings are refused, never silently dropped.
    # The upper bound is the controller's (--max-array-size, 10000 by default): it says so.
    if args.array_size is not None and args.array_size < 2:
        raise UsageError(f"--array-size must be at least 2, got {args.array_size}")
    if args.array_parallelism is not None and args.array_size is None:
        raise UsageError("--array-parallelism needs --array-size")
    depends_on = [parse_dependency(d) for d in args.depends_on]
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

    request = build_submit_request(
        args.name or derive_job_name(args.command, args.definition),
        job_queue=args.queue,
        job_definition=args.definition,
        command=args.command,
        environment=dict(args.env),
        vcpus=args.vcpus,
        memory_mib=args.memory,
        depends_on=depends_on,
        array_size=args.array_size or 0,
        retry_strategy=args.retry_attempts,
        timeout=args.timeout,
        parameters=dict(args.parameter),
        gpus=args.gpus,
        share_identifier=args.share_identifier,
        scheduling_priority=args.scheduling_priority,
        num_nodes=args.num_nodes or 0,
        main_node=args.main_node or 0,
    )
    if args.array_parallelism:
        request.array_properties.parallelism = args.array_parallelism
    if args.image:
        request.container_overrides.image = args.image
    if args.runtime:
        request.container_overrides.runtime = args.runtime
    with connect(args) as client:
        response = client.submit_job(request)
        if args.output == "json":
            out(render.dumps({"jobId": response.job_id, "jobName": response.job_name}))
        else:
            out(response.job_id)
        if not args.wait:
            return EXIT_OK
        return _wait(client, [response.job_id], None, lines_to_stderr=True, output="table")


def run_wait(args: argparse.Namespace) -> int:
    with connect(args) as client:
        return _wait(client, args.job_ids, args.timeout, lines_to_stderr=False, output=args.output)


def _wait(
    client: Client, job_ids: list[str], timeout: float | None, *, lines_to_stderr: bool, output: str
) -> int:
    emit = note if lines_to_stderr else out
    try:
        final = client.wait(job_ids, timeout=timeout)
    except WaitTimeout as err:
        if output == "json":
            jobs = [render.job_json(j) for j in [*err.done.values(), *err.pending.values()]]
            out(render.dumps({"jobs": jobs}))
        else:
            for job in err.done.values():
                emit(render.status_line(job))
        note(f"shoal: {err.message}")
        return EXIT_USAGE
    if output == "json":
        out(render.dumps({"jobs": [render.job_json(j) for j in final.values()]}))
    else:
        for job in final.values():
            emit(render.status_line(job))
    failed = any(j.status == types_pb2.JOB_STATUS_FAILED for j in final.values())
    return EXIT_JOB_FAILED if failed else EXIT_OK


def run_describe(args: argparse.Namespace) -> int:
    ids = list(dict.fromkeys(args.job_ids))
    with connect(args) as client:
        jobs = client.describe_jobs(ids)
    by_id = {j.job_id: j for j in jobs}
    found = [by_id[i] for i in ids if i in by_id]
    missing = [i for i in ids if i not in by_id]
    if args.output == "json":
        out(render.dumps({"jobs": [render.job_json(j) for j in found]}))
    elif found:
        out("\n\n".join(render.job_detail(j) for j in found))
    for job_id in missing:
        note(f"shoal: job {job_id} not found")
    return EXIT_REFUSED if missing else EXIT_OK


def run_list(args: argparse.Namespace) -> int:
    with connect(args) as client:
        summaries = list(client.list_jobs(queue=args.queue, status=args.status, name_prefix=args.name_prefix))
    if args.output == "json":
        out(render.dumps({"jobSummaryList": [render.summary_json(s) for s in summaries]}))
        return EXIT_OK
    rows = [
        (
            s.job_id,
            s.job_name,
            s.job_queue,
            render.status(s.status),
            s.exit_code if s.HasField("exit_code") else "",
            render.age(s.created_at),
            render.shorten(s.status_reason),
        )
        for s in summaries
    ]
    out(render.table(("JOB ID", "NAME", "QUEUE", "STATUS", "EXIT", "CREATED", "REASON"), rows))
    return EXIT_OK


def run_logs(args: argparse.Namespace) -> int:
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
    with connect(args) as client:
        client.cancel_job(args.job_id, args.reason)
    note(f"{args.job_id}: cancel requested")
    return EXIT_OK


def run_terminate(args: argparse.Namespace) -> int:
    with connect(args) as client:
        client.terminate_job(args.job_id, args.reason)
    note(f"{args.job_id}: terminate requested")
    return EXIT_OK
