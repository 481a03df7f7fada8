"""One exception root for shoal, and the single table that maps it to gRPC status codes.

Domain code raises these; the gRPC edge (controller/api) turns them into status codes with
`to_status`, and the SDK turns a failed call back into the same class with `from_rpc_error`,
so a caller of `shoal.Client` catches `shoal.NotFound` whether the error was raised locally or
by a controller three hops away.
"""

from __future__ import annotations

import grpc

LEADER_METADATA_KEY = "shoal-leader"
#: Sent by an agent to a follower: "I could not reach the leader you named, hold me until you
#: know another one" (controller/api/agent_gateway.py).
STALE_LEADER_METADATA_KEY = "shoal-stale-leader"


class ShoalError(Exception):
    """Root of every error shoal raises on purpose."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(ShoalError):
    """The request is malformed; nothing was changed."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(ShoalError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(ShoalError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(ShoalError):
    """The request is valid but the current state forbids it."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class Conflict(ShoalError):
    """A concurrent change won; the caller may re-read and try again."""

    code = grpc.StatusCode.ABORTED


class ResourceExhausted(ShoalError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(ShoalError):
    """The service (or etcd behind it) cannot answer now; retry later."""

    code = grpc.StatusCode.UNAVAILABLE


class NotLeader(Unavailable):
    """This replica is not the leader; `leader` is the leader's address when known."""

    def __init__(self, message: str, leader: str = "") -> None:
        super().__init__(message)
        self.leader = leader


class FencedOut(Unavailable):
    """This replica lost leadership in the middle of a write; the write was not applied."""


class DeadlineExceeded(ShoalError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Unauthenticated(ShoalError):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(ShoalError):
    code = grpc.StatusCode.PERMISSION_DENIED


_BY_CODE: dict[grpc.StatusCode, type[ShoalError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        NotFound,
        AlreadyExists,
        FailedPrecondition,
        Conflict,
        ResourceExhausted,
        Unavailable,
        DeadlineExceeded,
        Unauthenticated,
        PermissionDenied,
    )
}


def to_status(err: ShoalError) -> tuple[grpc.StatusCode, str, tuple[tuple[str, str], ...]]:
    """(code, details, trailing metadata) for a domain error at the gRPC edge."""
    trailing: tuple[tuple[str, str], ...] = ()
    if isinstance(err, NotLeader) and err.leader:
        trailing = ((LEADER_METADATA_KEY, err.leader),)
    return err.code, err.message, trailing


def leader_hint(rpc_error: grpc.RpcError) -> str:
    """The leader address a follower put in the trailing metadata, or ''."""
    try:
        trailing = rpc_error.trailing_metadata() or ()  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - some RpcErrors carry no metadata at all
        return ""
    for key, value in trailing:
        if key == LEADER_METADATA_KEY:
            return value if isinstance(value, str) else value.decode()
    return ""


def from_rpc_error(rpc_error: grpc.RpcError) -> ShoalError:
    """The shoal error a failed call stands for (INTERNAL/UNKNOWN become ShoalError)."""
    code = rpc_error.code()  # type: ignore[attr-defined]
    details = rpc_error.details() or code.name  # type: ignore[attr-defined]
    leader = leader_hint(rpc_error)
    if code == grpc.StatusCode.UNAVAILABLE and leader:
        return NotLeader(details, leader)
    cls = _BY_CODE.get(code)
    if cls is None:
        err = ShoalError(f"{code.name}: {details}")
        err.code = code
        return err
    return cls(details)
