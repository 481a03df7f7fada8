"""What every `shoal` command shares and the fast path needs too: exit codes, usage errors, output.

Kept free of imports on purpose: `shoal submit` in a shell loop loads this module on every call.
"""

ADDRESS_ENV = "SHOAL_ADDR"
"""Controller address(es), comma-separated (the SDK reads the same variable)."""
DEFAULT_ADDRESS = "127.0.0.1:50051"
"""Where `shoal up` and a controller without --listen serve gRPC (shoal.client's default too)."""

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


def out(text: str) -> None:
    """One block of output to stdout."""
    import sys

    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def note(text: str) -> None:
    """A line for the person at the terminal (stderr, so stdout stays parseable)."""
    import sys

    sys.stderr.write(text + "\n")
    sys.stderr.flush()
