"""One exception root for shoal, and the single table that maps it to gRPC status codes.

Domain code raises these; the gRPC edge (controller/api) turns them into status codes with
`to_status`, and the SDK turns a failed call back into the same class with `from_rpc_error`,
so a caller of `shoal.Client` catches `shoal.NotFound` whether the error was raised locally or
by a controller three hops away.

Each class names its status code as a string (`code_name`, gRPC's name: "NOT_FOUND"); `code`,
the grpc.StatusCode itself, is looked up on first use. So importing this module does not import
grpc (~100 ms), which the CLI's HTTP path never needs (shoal/cli/wire.py maps the same names).
"""

from __future__ import annotations

# typing itself costs a short-lived CLI process milliseconds; type checkers read this constant.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    import grpc

LEADER_METADATA_KEY = "shoal-leader"
#: Sent by an agent to a follower: "I could not reach the leader you named, hold me until you
#: know another one" (controller/api/agent_gateway.py).
STALE_LEADER_METADATA_KEY = "shoal-stale-leader"


class _StatusCode:
    """`cls.code` / `err.code`: grpc.StatusCode[code_name], imported only when asked for.

    A non-data descriptor, so an instance may still carry a code of its own (`err.code = ...`).
    """

    def __get__(self, obj: object, owner: type[ShoalError]) -> grpc.StatusCode:
        import grpc

        name = obj.__dict__.get("code_name", owner.code_name) if obj is not None else owner.code_name
        return grpc.StatusCode[name]


class ShoalError(Exception):
    """Root of every error shoal raises on purpose."""

    code_name: str = "INTERNAL"
    """The gRPC status code's name this error travels as."""
    code: Any = _StatusCode()

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(ShoalError):
    """The request is malformed; nothing was changed."""

    code_name = "INVALID_ARGUMENT"


class NotFound(ShoalError):
    code_name = "NOT_FOUND"


class AlreadyExists(ShoalError):
    code_name = "ALREADY_EXISTS"


class FailedPrecondition(ShoalError):
    """The request is valid but the current state forbids it."""

    code_name = "FAILED_PRECONDITION"


class Conflict(ShoalError):
    """A concurrent change won; the caller may re-read and try again."""

    code_name = "ABORTED"


class ResourceExhausted(ShoalError):
    code_name = "RESOURCE_EXHAUSTED"


class Unavailable(ShoalError):
    """The service (or etcd behind it) cannot answer now; retry later."""

    code_name = "UNAVAILABLE"


class NotLeader(Unavailable):
    """This replica is not the leader; `leader` is the leader's address when known."""

    def __init__(self, message: str, leader: str = "") -> None:
        super().__init__(message)
        self.leader = leader


class FencedOut(Unavailable):
    """This replica lost leadership in the middle of a write; the write was not applied."""


class DeadlineExceeded(ShoalError):
    code_name = "DEADLINE_EXCEEDED"


class WaitTimeout(DeadlineExceeded):
    """`Client.wait` ran out of time before every job reached SUCCEEDED or FAILED.

    `done` holds the jobs that finished, `pending` the last known state of the others (by job
    id: shoal.v1 Job messages from the SDK, their JSON dicts in the CLI), so a caller can report
    what is still running.
    """

    def __init__(self, message: str, done: dict[str, Any], pending: dict[str, Any]):
        super().__init__(message)
        self.done = done
        self.pending = pending


class Unauthenticated(ShoalError):
    code_name = "UNAUTHENTICATED"


class PermissionDenied(ShoalError):
    code_name = "PERMISSION_DENIED"


_BY_NAME: dict[str, type[ShoalError]] = {
    cls.code_name: cls
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


def from_status(code_name: str, details: str, leader: str = "") -> ShoalError:
    """The shoal error for a status code's name and message, from any transport.

    INTERNAL, UNKNOWN and other codes without a class of their own become a ShoalError whose
    message starts with the code's name.
    """
    code_name = code_name.upper()
    details = details or code_name
    if code_name == "UNAVAILABLE" and leader:
        return NotLeader(details, leader)
    cls = _BY_NAME.get(code_name)
    if cls is None:
        err = ShoalError(f"{code_name}: {details}")
        err.code_name = code_name
        return err
    return cls(details)


def from_rpc_error(rpc_error: grpc.RpcError) -> ShoalError:
    """The shoal error a failed call stands for (INTERNAL/UNKNOWN become ShoalError)."""
    code = rpc_error.code()  # type: ignore[attr-defined]
    return from_status(code.name, rpc_error.details() or code.name, leader_hint(rpc_error))  # type: ignore[attr-defined]
