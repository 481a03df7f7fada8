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
from shoal.client import enum_name
from shoal.v1 import types_pb2

ENVS_HELP = """\
A compute environment is a named pool of nodes. UNMANAGED: agents join it by name
(`shoal agent --compute-env NAME`). MANAGED: the controller asks a provisioner for hosts
between --min-vcpus and --max-vcpus.

examples:
  shoal envs create local
  shoal envs update local --state DISABLED
"""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    addr, output = addr_parent(), output_parent()
    state = enum_type(types_pb2.EntityState, "state")
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
        type=enum_type(types_pb2.ComputeEnvironmentType, "type"),
        default=types_pb2.COMPUTE_ENVIRONMENT_TYPE_UNMANAGED,
        metavar="UNMANAGED|MANAGED",
        help="default: UNMANAGED",
    )
    p.add_argument(
        "--state",
        type=state,
        default=types_pb2.ENTITY_STATE_ENABLED,
        metavar="ENABLED|DISABLED",
        help="default: ENABLED",
    )
    _vcpu_flags(p, defaults=0)
    p.set_defaults(func=run_create)

    p = es.add_parser(
        "update", parents=[addr, output], help="change a compute environment (unset flags are unchanged)"
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("--state", type=state, metavar="ENABLED|DISABLED")
    _vcpu_flags(p, defaults=None)
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
        help="MANAGED: vCPUs to start with",
    )
    p.add_argument(
        "--max-vcpus", type=non_negative_int, default=defaults, metavar="N", help="MANAGED: never more vCPUs"
    )


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
            enum_name(types_pb2.ComputeEnvironmentType, e.type),
            enum_name(types_pb2.EntityState, e.state),
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
        )
    _print([env], args.output)
    return EXIT_OK


def run_update(args: argparse.Namespace) -> int:
    if all(v is None for v in (args.state, args.min_vcpus, args.desired_vcpus, args.max_vcpus)):
        raise UsageError("nothing to change: give --state, --min-vcpus, --desired-vcpus or --max-vcpus")
    with connect(args) as client:
        env = client.update_compute_environment(
            args.name,
            state=args.state,
            min_vcpus=args.min_vcpus,
            desired_vcpus=args.desired_vcpus,
            max_vcpus=args.max_vcpus,
        )
    _print([env], args.output)
    return EXIT_OK


def run_delete(args: argparse.Namespace) -> int:
    with connect(args) as client:
        client.delete_compute_environment(args.name)
    note(f"compute environment {args.name} deleted")
    return EXIT_OK
