"""`shoal queues list|create|update|delete`: job queues (priority + ordered compute environments)."""

from __future__ import annotations

import argparse
import sys

from shoal.cli import render
from shoal.cli.options import (
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    addr_parent,
    connect,
    enum_type,
    formatter,
    note,
    out,
    output_parent,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from shoal.v1 import types_pb2

QUEUES_HELP = """\
Job queues hold submitted jobs until they are placed. A queue has a priority (higher runs
first) and 1-3 compute environments, tried in the order given. Its jobs run first in, first
out, or, with --scheduling-policy, by fair share (see `shoal policies --help`): then every job
needs a share identifier (`shoal submit --share-identifier ID`).

examples:
  shoal queues create default --compute-env local
  shoal queues create urgent --compute-env gpu,cpu --priority 10
  shoal queues create shared --compute-env local --scheduling-policy teams
  shoal queues update urgent --state DISABLED
"""


def compute_envs(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected CE[,CE...]")
    return names


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    addr, output = addr_parent(), output_parent()
    state = enum_type("EntityState", "state")
    queues = sub.add_parser(
        "queues", help="manage job queues", description=QUEUES_HELP, formatter_class=formatter
    )
    queues.set_defaults(func=lambda args: _noun_help(queues))
    qs = queues.add_subparsers(title="commands", metavar="COMMAND")

    p = qs.add_parser("list", parents=[addr, output], help="list job queues")
    p.add_argument("names", nargs="*", metavar="NAME", help="only these queues")
    p.set_defaults(func=run_list)

    p = qs.add_parser("create", parents=[addr, output], help="create a job queue")
    p.add_argument("name", metavar="NAME")
    p.add_argument(
        "--compute-env",
        type=compute_envs,
        required=True,
        metavar="CE[,CE...]",
        help="compute environments, in the order tried",
    )
    p.add_argument("--priority", type=int, default=1, metavar="N", help="higher runs first (default: 1)")
    p.add_argument(
        "--state",
        type=state,
        default="ENABLED",
        metavar="ENABLED|DISABLED",
        help="default: ENABLED",
    )
    p.add_argument("--scheduling-policy", default="", metavar="NAME",
                   help="a fair-share queue using this scheduling policy (default: FIFO)")
    p.set_defaults(func=run_create)

    p = qs.add_parser("update", parents=[addr, output], help="change a job queue (unset flags are unchanged)")
    p.add_argument("name", metavar="NAME")
    p.add_argument(
        "--compute-env", type=compute_envs, metavar="CE[,CE...]", help="replace the compute environments"
    )
    p.add_argument("--priority", type=int, metavar="N")
    p.add_argument("--state", type=state, metavar="ENABLED|DISABLED")
    p.add_argument("--scheduling-policy", metavar="NAME",
                   help="replace a fair-share queue's policy (a FIFO queue cannot get one)")
    p.set_defaults(func=run_update)

    p = qs.add_parser("delete", parents=[addr], help="delete a job queue")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=run_delete)


def _noun_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _print(queues: list[types_pb2.JobQueue], output: str) -> None:
    if output == "json":
        out(render.dumps({"jobQueues": [render.queue_json(q) for q in queues]}))
        return
    rows = [
        (
            q.job_queue_name,
            render.enum_label("EntityState", q.state),
            q.priority,
            ",".join(
                o.compute_environment for o in sorted(q.compute_environment_order, key=lambda o: o.order)
            ),
            q.scheduling_policy or "FIFO",
            render.age(q.created_at),
        )
        for q in queues
    ]
    out(render.table(("NAME", "STATE", "PRIORITY", "COMPUTE ENVIRONMENTS", "SCHEDULING", "AGE"), rows))


def run_list(args: argparse.Namespace) -> int:
    with connect(args) as client:
        queues = client.describe_job_queues(args.names)
    _print(queues, args.output)
    return EXIT_OK


def run_create(args: argparse.Namespace) -> int:
    with connect(args) as client:
        queue = client.create_job_queue(
            args.name, args.compute_env, priority=args.priority, state=args.state,
            scheduling_policy=args.scheduling_policy,
        )  # fmt: skip
    _print([queue], args.output)
    return EXIT_OK


def run_update(args: argparse.Namespace) -> int:
    if args.compute_env is None and args.priority is None and args.state is None and args.scheduling_policy is None:
        raise UsageError("nothing to change: give --compute-env, --priority, --state or --scheduling-policy")
    with connect(args) as client:
        queue = client.update_job_queue(
            args.name, priority=args.priority, state=args.state, compute_environments=args.compute_env,
            scheduling_policy=args.scheduling_policy,
        )  # fmt: skip
    _print([queue], args.output)
    return EXIT_OK


def run_delete(args: argparse.Namespace) -> int:
    with connect(args) as client:
        client.delete_job_queue(args.name)
    note(f"queue {args.name} deleted")
    return EXIT_OK
