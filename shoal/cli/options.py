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
import os
import sys
from typing import Any, NoReturn

from shoal.client import ADDRESS_ENV, DEFAULT_ADDRESS, Client, enum_value
from shoal.errors import InvalidArgument

EXIT_OK = 0
EXIT_JOB_FAILED = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_UNAVAILABLE = 4
EXIT_BUG = 70  # EX_SOFTWARE: an unexpected exception
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = """\
exit codes:
  0    success
  1    a job FAILED (wait, submit --wait)
  2    usage error, an unsupported flag, or wait timed out
  3    the server refused the request (invalid argument, not found, already exists,
       failed precondition)
  4    cannot reach a controller, or the cluster is unavailable
  70   a bug in shoal (set SHOAL_DEBUG=1 for the traceback)
  130  interrupted
"""


class UsageError(Exception):
    """The command line is wrong or asks for something this release cannot do (exit 2)."""


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
        metavar="HOST:PORT[,...]",
        default=None,
        help=f"controller address(es), comma-separated (default: ${ADDRESS_ENV}, else {DEFAULT_ADDRESS})",
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
    """A Client for --addr (else $SHOAL_ADDR, else the default address)."""
    addresses = args.addr if args.addr else os.environ.get(ADDRESS_ENV) or DEFAULT_ADDRESS
    return Client(addresses)


def enum_type(enum: Any, what: str) -> Any:
    """An argparse `type=` that accepts bare, case-insensitive enum names ("runnable")."""

    def convert(text: str) -> int:
        try:
            return int(enum_value(enum, text, what=what))
        except InvalidArgument as err:
            raise argparse.ArgumentTypeError(err.message) from None

    convert.__name__ = what  # argparse names the type in its "invalid <type> value" message
    return convert


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {value}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def out(text: str) -> None:
    """One block of output to stdout."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def note(text: str) -> None:
    """A line for the person at the terminal (stderr, so stdout stays parseable)."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()
