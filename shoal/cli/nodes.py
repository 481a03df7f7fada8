"""`shoal nodes list`: the hosts whose agents joined the cluster."""

from __future__ import annotations

import argparse
import sys

from shoal.cli import render
from shoal.cli.options import EXIT_OK, EXIT_USAGE, addr_parent, connect, formatter, out, output_parent
from shoal.client import enum_name
from shoal.v1 import types_pb2


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    nodes = sub.add_parser("nodes", help="list the cluster's nodes", formatter_class=formatter)
    nodes.set_defaults(func=lambda args: _noun_help(nodes))
    nodes_sub = nodes.add_subparsers(title="commands", metavar="COMMAND")
    p = nodes_sub.add_parser(
        "list",
        parents=[addr_parent(), output_parent()],
        help="list nodes with status and capacity",
        description="Nodes and their status: READY, DRAINING, DRAINED or LOST.",
        formatter_class=formatter,
    )
    p.add_argument("--env", default="", metavar="CE", help="only nodes of this compute environment")
    p.set_defaults(func=run_list)


def _noun_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def run_list(args: argparse.Namespace) -> int:
    with connect(args) as client:
        nodes = client.list_nodes(args.env)
    if args.output == "json":
        out(render.dumps({"nodes": [render.node_json(n) for n in nodes]}))
        return EXIT_OK
    rows = [
        (
            n.node_id,
            n.hostname,
            enum_name(types_pb2.NodeStatus, n.status),
            n.compute_environment,
            render.num(n.vcpus),
            render.memory(n.memory_mib),
            render.shorten(n.status_reason),
        )
        for n in nodes
    ]
    out(render.table(("NODE", "HOSTNAME", "STATUS", "ENV", "VCPUS", "MEMORY", "REASON"), rows))
    return EXIT_OK
