"""`shoal defs register|list|deregister`: job definitions (reusable job blueprints)."""

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
    formatter,
    note,
    out,
    output_parent,
)

DEFS_HELP = """\
A job definition is a named, revisioned blueprint: command, image, vCPUs, memory,
environment, retry strategy and timeout. Submit from it with `shoal submit --definition NAME`.

example file (AWS Batch's shape):
  jobDefinitionName: hello
  containerProperties:
    command: ["sh", "-c", "echo hello $NAME"]
    vcpus: 1
    memory: 256                        # MiB
    environment: [{name: NAME, value: world}]
  retryStrategy: {attempts: 3}
  timeout: {attemptDurationSeconds: 60}
"""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    addr, output = addr_parent(), output_parent()
    defs = sub.add_parser(
        "defs", help="manage job definitions", description=DEFS_HELP, formatter_class=formatter
    )
    defs.set_defaults(func=lambda args: _noun_help(defs))
    ds = defs.add_subparsers(title="commands", metavar="COMMAND")

    p = ds.add_parser(
        "register",
        parents=[addr, output],
        help="register a definition from a YAML file (prints name:revision)",
    )
    p.add_argument(
        "-f", "--file", required=True, metavar="F.yaml", help="the definition, in AWS Batch's camelCase shape"
    )
    p.set_defaults(func=run_register)

    p = ds.add_parser("list", parents=[addr, output], help="list job definitions")
    p.add_argument(
        "name", nargs="?", default="", metavar="NAME", help="only this definition (every revision)"
    )
    p.add_argument(
        "--status", type=str.upper, choices=("ACTIVE", "INACTIVE", "ALL"), default="ALL", help="default: ALL"
    )
    p.set_defaults(func=run_list)

    p = ds.add_parser("deregister", parents=[addr], help="deregister one revision (NAME:REV)")
    p.add_argument("ref", metavar="NAME:REV")
    p.set_defaults(func=run_deregister)


def _noun_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def run_register(args: argparse.Namespace) -> int:
    from shoal.jobdef import load_file  # (PyYAML: loaded only by the commands that read files)

    request = load_file(args.file)  # JobDefinitionFileError -> exit 2, before any connection
    with connect(args) as client:
        response = client.register_job_definition(request)
    if args.output == "json":
        out(render.dumps({"jobDefinitionName": response.job_definition_name, "revision": response.revision}))
    else:
        out(f"{response.job_definition_name}:{response.revision}")
    return EXIT_OK


def run_list(args: argparse.Namespace) -> int:
    status = "" if args.status == "ALL" else args.status
    with connect(args) as client:
        defs = client.describe_job_definitions(args.name, status)
    if args.output == "json":
        out(render.dumps({"jobDefinitions": [render.job_definition_json(d) for d in defs]}))
        return EXIT_OK
    rows = []
    for d in defs:
        c = d.container_properties
        if d.node_properties.node_range_properties:  # multi-node: its first node range
            c = d.node_properties.node_range_properties[0].container
        rows.append(
            (
                d.job_definition_name,
                d.revision,
                d.status,
                render.num(c.resources.vcpus) if c.resources.vcpus else "",
                render.memory(c.resources.memory_mib) if c.resources.memory_mib else "",
                c.image,
                render.shorten(render.command_line(c.command), 50),
            )
        )
    out(render.table(("NAME", "REVISION", "STATUS", "VCPUS", "MEMORY", "IMAGE", "COMMAND"), rows))
    return EXIT_OK


def run_deregister(args: argparse.Namespace) -> int:
    name, sep, revision = args.ref.rpartition(":")
    if not sep or not name or not revision.isdigit():
        raise UsageError(f"expected NAME:REVISION (e.g. hello:3), got {args.ref!r}")
    with connect(args) as client:
        client.deregister_job_definition(args.ref)
    note(f"{args.ref} deregistered")
    return EXIT_OK
