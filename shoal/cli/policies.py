"""`shoal policies create|update|list|describe|delete`: fair-share scheduling policies."""

from __future__ import annotations

import argparse
import math
import sys

from shoal.cli import render
from shoal.cli.options import (
    EXIT_OK,
    EXIT_USAGE,
    addr_parent,
    connect,
    formatter,
    non_negative_int,
    note,
    out,
    output_parent,
)
from shoal.errors import NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from shoal.v1 import types_pb2

POLICIES_HELP = """\
A scheduling policy makes a job queue fair-share (AWS Batch's fairsharePolicy): instead of
first in, first out, the queue runs next the job of the share that used least for its weight.

  --share ID=WEIGHT    a share identifier and its weightFactor; LOWER WEIGHT GETS MORE (weights
                       1 and 3: the first share gets 3x the vCPUs of the second). `ID*` sets the
                       weight of every identifier starting with ID (each is its own share).
                       Identifiers not listed weigh 1.
  --decay-seconds N    past usage (vCPU-seconds) counts with weight exp(-age/N); 0 = only what
                       runs now counts.
  --compute-reservation P
                       keep (P/100)^(active shares) of the queue's vCPUs free for share
                       identifiers that have no jobs yet (0-99).

Jobs on a fair-share queue need `shoal submit --share-identifier ID`, and may add
`--scheduling-priority N` (higher first within the share). `shoal why JOB` shows the share's
weight, usage and place in line.

examples:
  shoal policies create teams --share research=1 --share 'etl*=3' --decay-seconds 3600
  shoal queues create shared --compute-env default --scheduling-policy teams
  shoal submit --queue shared --share-identifier research -- ./train.sh
  shoal policies update teams --share research=1 --share 'etl*=2' --decay-seconds 3600
  shoal policies list
"""


def share(text: str) -> types_pb2.ShareAttributes:
    ident, sep, weight = text.partition("=")
    ident = ident.strip()
    if not ident:
        raise argparse.ArgumentTypeError(f"expected ID=WEIGHT, got {text!r}")
    value = 1.0
    if sep:
        try:
            value = float(weight)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected ID=WEIGHT with a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"weight must be a finite number, got {weight!r}")
    from shoal.v1 import types_pb2  # not at import: `shoal --help` loads no protobuf

    return types_pb2.ShareAttributes(share_identifier=ident, weight_factor=value)


def _policy_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME")
    p.add_argument("--share", action="append", type=share, default=[], metavar="ID=WEIGHT",
                   help="a share identifier (or ID* prefix) and its weight factor, lower gets more (repeatable)")
    p.add_argument("--decay-seconds", type=non_negative_int, default=0, metavar="N",
                   help="share decay: usage counts with weight exp(-age/N); 0 = current usage only (default)")
    p.add_argument("--compute-reservation", type=non_negative_int, default=0, metavar="P",
                   help="percent 0-99: (P/100)^(active shares) of the vCPUs kept for new shares (default: 0)")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    addr, output = addr_parent(), output_parent()
    policies = sub.add_parser(
        "policies", help="manage fair-share scheduling policies", description=POLICIES_HELP, formatter_class=formatter
    )
    policies.set_defaults(func=lambda args: _noun_help(policies))
    ps = policies.add_subparsers(title="commands", metavar="COMMAND")

    p = ps.add_parser("create", parents=[addr, output], help="create a scheduling policy")
    _policy_flags(p)
    p.set_defaults(func=run_create)

    p = ps.add_parser("update", parents=[addr, output], help="replace a policy's shares, decay and reservation")
    _policy_flags(p)
    p.set_defaults(func=run_update)

    p = ps.add_parser("list", parents=[addr, output], help="list scheduling policies")
    p.add_argument("names", nargs="*", metavar="NAME", help="only these policies")
    p.set_defaults(func=run_list)

    p = ps.add_parser("describe", parents=[addr, output], help="show policies with their shares")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.set_defaults(func=run_describe)

    p = ps.add_parser("delete", parents=[addr], help="delete a policy (no queue may use it)")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=run_delete)


def _noun_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _shares_text(fp: types_pb2.FairsharePolicy) -> str:
    return ",".join(f"{s.share_identifier}={render.num(s.weight_factor)}" for s in fp.share_distribution) or "-"


def _print(policies: list[types_pb2.SchedulingPolicy], output: str, *, detail: bool = False) -> None:
    if output == "json":
        out(render.dumps({"schedulingPolicies": [render.policy_json(p) for p in policies]}))
        return
    if detail:
        for policy in policies:
            fp = policy.fairshare_policy
            lines = [
                f"Name:                 {policy.name}",
                f"Share decay:          {fp.share_decay_seconds}s" + (" (current usage only)" if not fp.share_decay_seconds else ""),
                f"Compute reservation:  {fp.compute_reservation}%",
                "Shares (lower weight gets more; unlisted identifiers weigh 1):",
            ]
            lines += [f"  {s.share_identifier:<30} {render.num(s.weight_factor)}" for s in fp.share_distribution]
            out("\n".join(lines))
        return
    rows = [
        (
            p.name,
            f"{p.fairshare_policy.share_decay_seconds}s",
            f"{p.fairshare_policy.compute_reservation}%",
            _shares_text(p.fairshare_policy),
            render.age(p.created_at),
        )
        for p in policies
    ]
    out(render.table(("NAME", "DECAY", "RESERVATION", "SHARES", "AGE"), rows))


def run_create(args: argparse.Namespace) -> int:
    with connect(args) as client:
        policy = client.create_scheduling_policy(
            args.name, args.share, share_decay_seconds=args.decay_seconds, compute_reservation=args.compute_reservation
        )
    _print([policy], args.output)
    return EXIT_OK


def run_update(args: argparse.Namespace) -> int:
    with connect(args) as client:
        policy = client.update_scheduling_policy(
            args.name, args.share, share_decay_seconds=args.decay_seconds, compute_reservation=args.compute_reservation
        )
    _print([policy], args.output)
    return EXIT_OK


def run_list(args: argparse.Namespace) -> int:
    with connect(args) as client:
        policies = client.describe_scheduling_policies(args.names)
    _print(policies, args.output)
    return EXIT_OK


def run_describe(args: argparse.Namespace) -> int:
    with connect(args) as client:
        policies = client.describe_scheduling_policies(args.names)
    found = {p.name for p in policies}
    missing = [n for n in args.names if n not in found]
    _print(policies, args.output, detail=True)
    if missing:
        raise NotFound(f"scheduling policy '{missing[0]}' does not exist")
    return EXIT_OK


def run_delete(args: argparse.Namespace) -> int:
    with connect(args) as client:
        client.delete_scheduling_policy(args.name)
    note(f"policy {args.name} deleted")
    return EXIT_OK
