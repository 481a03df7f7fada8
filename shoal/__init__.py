"""shoal: an AWS-Batch-style batch system. This package is what clients and both daemons share.

For programs, the entry point is the SDK::

    from shoal import Client

    with Client("10.0.0.1:50051,10.0.0.2:50051") as client:
        job = client.submit_job("hello", command=["echo", "hello"])
        final = client.wait([job.job_id])

Errors raised by the SDK are the classes re-exported here (all subclasses of ShoalError).

`Client` and `WaitTimeout` are loaded on first use (PEP 562 module `__getattr__`): importing
`shoal` (every `shoal` command does, and the daemons) must not import grpc unless it is used.
"""

from shoal.errors import (
    AlreadyExists,
    Conflict,
    DeadlineExceeded,
    FailedPrecondition,
    FencedOut,
    InvalidArgument,
    NotFound,
    NotLeader,
    PermissionDenied,
    ResourceExhausted,
    ShoalError,
    Unauthenticated,
    Unavailable,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from shoal.client import Client, WaitTimeout

_LAZY = {"Client", "WaitTimeout"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        from shoal import client

        return getattr(client, name)
    raise AttributeError(f"module 'shoal' has no attribute {name!r}")


__all__ = [
    "AlreadyExists",
    "Client",
    "Conflict",
    "DeadlineExceeded",
    "FailedPrecondition",
    "FencedOut",
    "InvalidArgument",
    "NotFound",
    "NotLeader",
    "PermissionDenied",
    "ResourceExhausted",
    "ShoalError",
    "Unauthenticated",
    "Unavailable",
    "WaitTimeout",
]
