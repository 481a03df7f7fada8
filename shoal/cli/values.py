"""Converters of command-line values, shared by the argparse parser and the quick one.

Each raises ValueError with the message a user sees; shoal/cli/options.py turns that into
argparse's ArgumentTypeError, shoal/cli/quick.py into "let argparse say it". No imports: the
quick path loads this on every call.
"""


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise ValueError(f"expected a number > 0, got {value}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise ValueError(f"expected a number >= 0, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise ValueError(f"expected a number > 0, got {text}")
    return value


def key_value(text: str) -> tuple[str, str]:
    """NAME=VALUE (--env, --parameter)."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise ValueError(f"expected NAME=VALUE, got {text!r}")
    return name, value


# The enum names the CLI accepts without loading the generated protobuf code (which costs a
# short-lived process tens of milliseconds). tests/unit/cli/test_quick.py checks them against
# shoal.v1.types_pb2, so a new status cannot be forgotten here.
JOB_STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")
DEPENDENCY_TYPES = ("N_TO_N", "SEQUENTIAL", "AFTER_ANY", "AFTER_NOT_OK")
FINAL_STATUSES = ("SUCCEEDED", "FAILED")


def job_status(text: str) -> str:
    """'runnable', 'RUNNABLE', 'JOB_STATUS_RUNNABLE' -> 'RUNNABLE'."""
    wanted = text.strip().upper().replace("-", "_").removeprefix("JOB_STATUS_")
    if wanted not in JOB_STATUSES:
        raise ValueError(f"unknown status {text!r} (expected one of {', '.join(JOB_STATUSES)})")
    return wanted
