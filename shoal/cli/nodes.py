"""`shoal nodes list`: the hosts whose agents joined the cluster."""

from __future__ import annotations

import argparse
import sys

from shoal.cli import render
from shoal.cli.options import EXIT_OK, EXIT_USAGE, addr_parent, connect, formatter, out, output_parent

TYPE_CHECKING = False
if TYPE_CHECKING:
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

    d = nodes_sub.add_parser(
        "drain",
        parents=[addr_parent(), output_parent()],
        help="stop placing work on a node",
        description="Stop placing new jobs on NODE (like `scontrol update state=DRAIN`). Running jobs "
        "finish and the node becomes DRAINED; with --deadline, jobs still running after that many "
        "seconds are requeued; with --interrupt they are requeued now (as after a termination "
        "notice: SIGTERM, grace, SIGKILL). Undo with `shoal nodes undrain NODE`.",
        formatter_class=formatter,
    )
    d.add_argument("node_id", metavar="NODE")
    group = d.add_mutually_exclusive_group()
    group.add_argument("--interrupt", action="store_true", help="requeue the node's jobs now")
    group.add_argument("--deadline", type=int, default=0, metavar="SECONDS", help="requeue what still runs after this long")
    d.add_argument("--reason", default="", help="why (shown by `shoal nodes list`)")
    d.set_defaults(func=run_drain)

    u = nodes_sub.add_parser(
        "undrain",
        parents=[addr_parent(), output_parent()],
        help="let a drained node take work again",
        description="Make a DRAINING or DRAINED node READY again.",
        formatter_class=formatter,
    )
    u.add_argument("node_id", metavar="NODE")
    u.set_defaults(func=run_undrain)


def _noun_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _print_node(args: argparse.Namespace, node: types_pb2.Node) -> int:
    if args.output == "json":
        out(render.dumps({"node": render.node_json(node)}))
    else:
        out(f"{node.node_id} {render.enum_label('NodeStatus', node.status)}")
    return EXIT_OK


def run_drain(args: argparse.Namespace) -> int:
    if args.deadline < 0:
        raise SystemExit("shoal: --deadline must be >= 0")
    with connect(args) as client:
        node = client.drain_node(args.node_id, interrupt=args.interrupt, deadline_seconds=args.deadline, reason=args.reason)
    return _print_node(args, node)


def run_undrain(args: argparse.Namespace) -> int:
    with connect(args) as client:
        node = client.undrain_node(args.node_id)
    return _print_node(args, node)


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
            render.enum_label("NodeStatus", n.status),
            n.compute_environment,
            render.num(n.vcpus),
            render.memory(n.memory_mib),
            f"{n.gpus_free}/{n.gpus}" if n.gpus else "-",
            render.shorten(n.status_reason),
        )
        for n in nodes
    ]
    out(render.table(("NODE", "HOSTNAME", "STATUS", "ENV", "VCPUS", "MEMORY", "GPUS", "REASON"), rows))
    return EXIT_OK
