"""shoal: an AWS-Batch-style batch system. This package is what clients and both daemons share.

For programs, the entry point is the SDK::

    from shoal import Client

    with Client("10.0.0.1:50051,10.0.0.2:50051") as client:
        job = client.submit_job("hello", command=["echo", "hello"])
        final = client.wait([job.job_id])

Errors raised by the SDK are the classes re-exported here (all subclasses of ShoalError).
"""

from shoal.client import Client, WaitTimeout
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
