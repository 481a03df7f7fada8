"""`shoal envs list|create|update|delete`: compute environments (named pools of nodes)."""

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
    non_negative_int,
    note,
    out,
    output_parent,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from shoal.v1 import types_pb2

ENVS_HELP = """\
A compute environment is a named pool of nodes. UNMANAGED: agents join it by name
(`shoal agent --compute-env NAME`). MANAGED: the controller asks a provisioner for hosts
between --min-vcpus and --max-vcpus, in nodes of --node-vcpus / --node-memory-mib, from the
queued work: the `local` provisioner starts agent processes on the controller's host, the
`command` provisioner runs your command (SHOAL_CE_NAME, SHOAL_DESIRED_NODES,
SHOAL_NODES_TO_REMOVE and SHOAL_CONTROLLER are set). Idle nodes are drained, then removed.

examples:
  shoal envs create local
  shoal envs update local --state DISABLED
  shoal envs create burst --type MANAGED --min-vcpus 0 --max-vcpus 8 \
      --provisioner local --node-vcpus 2 --node-memory-mib 2048
  shoal envs create cloud --type MANAGED --max-vcpus 256 --provisioner command \
      --provisioner-command 'ansible-playbook -i inventory scale.yml' --node-vcpus 16 --node-memory-mib 65536
"""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    addr, output = addr_parent(), output_parent()
    state = enum_type("EntityState", "state")
    envs = sub.add_parser(
        "envs", help="manage compute environments", description=ENVS_HELP, formatter_class=formatter
    )
    envs.set_defaults(func=lambda args: _noun_help(envs))
    es = envs.add_subparsers(title="commands", metavar="COMMAND")

    p = es.add_parser("list", parents=[addr, output], help="list compute environments")
    p.add_argument("names", nargs="*", metavar="NAME", help="only these environments")
    p.set_defaults(func=run_list)

    p = es.add_parser("create", parents=[addr, output], help="create a compute environment")
    p.add_argument("name", metavar="NAME")
    p.add_argument(
        "--type",
        type=enum_type("ComputeEnvironmentType", "type"),
        default="UNMANAGED",
        metavar="UNMANAGED|MANAGED",
        help="default: UNMANAGED",
    )
    p.add_argument(
        "--state",
        type=state,
        default="ENABLED",
        metavar="ENABLED|DISABLED",
        help="default: ENABLED",
    )
    _vcpu_flags(p, defaults=0)
    _provisioner_flags(p)
    p.set_defaults(func=run_create)

    p = es.add_parser(
        "update", parents=[addr, output], help="change a compute environment (unset flags are unchanged)"
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("--state", type=state, metavar="ENABLED|DISABLED")
    _vcpu_flags(p, defaults=None)
    _provisioner_flags(p)
    p.set_defaults(func=run_update)

    p = es.add_parser("delete", parents=[addr], help="delete a compute environment")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=run_delete)


def _vcpu_flags(p: argparse.ArgumentParser, *, defaults: int | None) -> None:
    p.add_argument(
        "--min-vcpus", type=non_negative_int, default=defaults, metavar="N", help="MANAGED: never fewer vCPUs"
    )
    p.add_argument(
        "--desired-vcpus",
        type=non_negative_int,
        default=defaults,
        metavar="N",
        help="MANAGED: the controller sets it from the queued work",
    )
    p.add_argument(
        "--max-vcpus", type=non_negative_int, default=defaults, metavar="N", help="MANAGED: never more vCPUs"
    )


def _provisioner_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--provisioner",
        choices=["local", "command"],
        default=None,
        help="MANAGED: how hosts are added and removed (update: replaces the whole provisioner)",
    )
    p.add_argument(
        "--provisioner-command",
        default=None,
        metavar="COMMAND",
        help="MANAGED, --provisioner command: the command to run, split like a shell would",
    )
    p.add_argument("--node-vcpus", type=float, default=None, metavar="N", help="MANAGED: vCPUs of one node")
    p.add_argument(
        "--node-memory-mib",
        type=non_negative_int,
        default=None,
        metavar="N",
        help="MANAGED: memory of one node in MiB",
    )


def _provisioner_kwargs(args: argparse.Namespace) -> dict[str, object]:
    given = [args.provisioner_command, args.node_vcpus, args.node_memory_mib]
    if args.provisioner is None:
        if any(v is not None for v in given):
            raise UsageError("--provisioner-command, --node-vcpus and --node-memory-mib need --provisioner")
        return {}
    import shlex

    command = shlex.split(args.provisioner_command) if args.provisioner_command else []
    return {
        "provisioner": args.provisioner,
        "provisioner_command": command,
        "node_vcpus": args.node_vcpus or 0,
        "node_memory_mib": args.node_memory_mib or 0,
    }


def _noun_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _print(envs: list[types_pb2.ComputeEnvironment], output: str) -> None:
    if output == "json":
        out(render.dumps({"computeEnvironments": [render.compute_environment_json(e) for e in envs]}))
        return
    rows = [
        (
            e.compute_environment_name,
            render.enum_label("ComputeEnvironmentType", e.type),
            render.enum_label("EntityState", e.state),
            e.min_vcpus,
            e.desired_vcpus,
            e.max_vcpus,
            render.age(e.created_at),
        )
        for e in envs
    ]
    out(render.table(("NAME", "TYPE", "STATE", "MIN VCPUS", "DESIRED VCPUS", "MAX VCPUS", "AGE"), rows))


def run_list(args: argparse.Namespace) -> int:
    with connect(args) as client:
        envs = client.describe_compute_environments(args.names)
    _print(envs, args.output)
    return EXIT_OK


def run_create(args: argparse.Namespace) -> int:
    with connect(args) as client:
        env = client.create_compute_environment(
            args.name,
            type=args.type,
            state=args.state,
            min_vcpus=args.min_vcpus,
            desired_vcpus=args.desired_vcpus,
            max_vcpus=args.max_vcpus,
            **_provisioner_kwargs(args),
        )
    _print([env], args.output)
    return EXIT_OK


def run_update(args: argparse.Namespace) -> int:
    provisioner = _provisioner_kwargs(args)
    if not provisioner and all(
        v is None for v in (args.state, args.min_vcpus, args.desired_vcpus, args.max_vcpus)
    ):
        raise UsageError(
            "nothing to change: give --state, --min-vcpus, --desired-vcpus, --max-vcpus or --provisioner"
        )
    with connect(args) as client:
        env = client.update_compute_environment(
            args.name,
            state=args.state,
            min_vcpus=args.min_vcpus,
            desired_vcpus=args.desired_vcpus,
            max_vcpus=args.max_vcpus,
            **provisioner,
        )
    _print([env], args.output)
    return EXIT_OK


def run_delete(args: argparse.Namespace) -> int:
    with connect(args) as client:
        client.delete_compute_environment(args.name)
    note(f"compute environment {args.name} deleted")
    return EXIT_OK
