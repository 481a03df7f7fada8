"""What every `shoal` subcommand shares: exit codes, the argument parser, --addr and --output.

Exit codes (also in `shoal --help`):
  0  success
  1  a job FAILED (`shoal wait`, `shoal submit --wait`)
  2  usage error, an unsupported flag, or `wait` timed out
  3  the server refused the request (invalid argument, not found, already exists, ...)
  4  cannot reach a controller / the cluster is unavailable
  70 an unexpected exception (a bug in shoal)
  130 interrupted (Ctrl-C)
"""

from __future__ import annotations

import argparse

from shoal.cli import values
from shoal.cli.console import (  # noqa: F401 - re-exported: every noun module imports them from here
    ADDRESS_ENV,
    DEFAULT_ADDRESS,
    EXIT_BUG,
    EXIT_CODES_HELP,
    EXIT_INTERRUPTED,
    EXIT_JOB_FAILED,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    UsageError,
    note,
    out,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

    from shoal.client import Client


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (`shoal: ...`) and an exception, not an exit.

    Raising keeps `main(argv)` callable from tests and scripts without SystemExit.
    """

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def addr_parent() -> Parser:
    """--addr, accepted by every command that talks to a controller."""
    parent = Parser(add_help=False)
    parent.add_argument(
        "--addr",
        metavar="ADDR[,...]",
        default=None,
        help=f"controller address(es), comma-separated: HOST:PORT for gRPC, http(s)://HOST:PORT for "
        f"its HTTP edge (default: ${ADDRESS_ENV}, else {DEFAULT_ADDRESS})",
    )
    return parent


def output_parent() -> Parser:
    """--output table|json, for commands that print records."""
    parent = Parser(add_help=False)
    parent.add_argument(
        "-o",
        "--output",
        type=str.lower,
        choices=("table", "json"),
        default="table",
        help="table for people (default), json for scripts",
    )
    return parent


def connect(args: argparse.Namespace) -> Client:
    """A gRPC Client for the gRPC addresses of --addr (else $SHOAL_ADDR, else the default)."""
    from shoal.cli import transport

    return transport.grpc_client(args)


def enum_type(enum_name: str, what: str) -> Any:
    """An argparse `type=` that accepts bare, case-insensitive names ("runnable") of the
    shoal.v1 enum `enum_name` (e.g. "EntityState"), loaded only when a value is converted."""

    def convert(text: str) -> int:
        from shoal.client import enum_value
        from shoal.errors import InvalidArgument
        from shoal.v1 import types_pb2

        try:
            return int(enum_value(getattr(types_pb2, enum_name), text, what=what))
        except InvalidArgument as err:
            raise argparse.ArgumentTypeError(err.message) from None

    convert.__name__ = what  # argparse names the type in its "invalid <type> value" message
    return convert


def _argparse_type(convert: Any) -> Any:
    def wrapped(text: str) -> Any:
        try:
            return convert(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    wrapped.__name__ = convert.__name__
    return wrapped


positive_int = _argparse_type(values.positive_int)
non_negative_int = _argparse_type(values.non_negative_int)
positive_float = _argparse_type(values.positive_float)
key_value = _argparse_type(values.key_value)
job_status = _argparse_type(values.job_status)
