"""`shoal certs init|issue`: the cluster CA and the certificates signed by it (no server needed)."""

from __future__ import annotations

import argparse

from shoal.cli.options import EXIT_OK, EXIT_USAGE, formatter, note, out, positive_int

DESCRIPTION = """\
Create the cluster's certificate authority and certificates for controllers, etcd members,
agents and etcd clients. Keys are written 0600 next to their certificates.

  shoal certs init  --dir certs                                   # certs/ca.pem, certs/ca-key.pem
  shoal certs issue --dir certs --name ctl1 --kind server --host ctl1.example.org --host 10.0.0.1
  shoal certs issue --dir certs --name node-7 --kind agent        # the agent's --node-id
  shoal certs issue --dir certs --name controller --kind client   # controller -> etcd

Keep ca-key.pem off the cluster's hosts: it can mint an identity for any node.
"""


def register(sub: argparse._SubParsersAction, *, detailed: bool = True) -> None:  # type: ignore[type-arg]
    """`detailed=False` adds only the command's name and help: its flags' defaults come from
    shoal.certs, whose import (the cryptography package) costs more than all other commands'
    parsers, so main builds them only when the command line is a `certs` one."""
    p = sub.add_parser("certs", help="create the cluster CA and TLS certificates",
                       description=DESCRIPTION, formatter_class=formatter)
    p.set_defaults(func=lambda args: _noun_help(p))
    if not detailed:
        return
    from pathlib import Path

    from shoal import certs

    certs_sub = p.add_subparsers(title="commands", metavar="COMMAND")

    i = certs_sub.add_parser("init", help="create DIR/ca.pem and DIR/ca-key.pem", formatter_class=formatter,
                             description="Create a new cluster CA in DIR (refused if one exists, unless --force).")
    i.add_argument("--dir", required=True, type=Path, metavar="DIR")
    i.add_argument("--days", type=positive_int, default=certs.DEFAULT_CA_DAYS, help="validity (default %(default)s)")
    i.add_argument("--force", action="store_true", help="replace an existing CA (every certificate must be reissued)")
    i.set_defaults(func=run_init)

    s = certs_sub.add_parser("issue", help="sign DIR/NAME.pem and DIR/NAME-key.pem with the CA in DIR",
                             formatter_class=formatter,
                             description="Issue a certificate signed by the CA in DIR. server: controllers and "
                             "etcd members (every --host becomes a name or IP clients may dial); agent: NAME is "
                             "the node id; client: etcd client auth (the controller towards etcd).")
    s.add_argument("--dir", required=True, type=Path, metavar="DIR")
    s.add_argument("--name", required=True, metavar="NAME")
    s.add_argument("--kind", required=True, choices=certs.KINDS)
    s.add_argument("--host", action="append", default=[], metavar="H", help="DNS name or IP (repeatable)")
    s.add_argument("--days", type=positive_int, default=certs.DEFAULT_DAYS, help="validity (default %(default)s)")
    s.add_argument("--force", action="store_true", help="replace an existing certificate")
    s.set_defaults(func=run_issue)


def _noun_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return EXIT_USAGE


def run_init(args: argparse.Namespace) -> int:
    from shoal import certs

    try:
        issued = certs.init_ca(args.dir, days=args.days, force=args.force)
    except certs.CertError as err:
        note(f"shoal: {err.message}")
        return EXIT_USAGE
    out(f"{issued.cert}\n{issued.key}")
    return EXIT_OK


def run_issue(args: argparse.Namespace) -> int:
    from shoal import certs

    try:
        issued = certs.issue(args.dir, args.name, args.kind, hosts=args.host, days=args.days, force=args.force)
    except certs.CertError as err:
        note(f"shoal: {err.message}")
        return EXIT_USAGE
    out(f"{issued.cert}\n{issued.key}")
    return EXIT_OK
