"""What the dashboard's buttons do: each is one API call, made only after the CSRF and Origin
checks, as the session's principal (so ApiCaller's role check and the job service's owner check
apply exactly as on the gRPC API)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from controller.http.server import API
from controller.http.ui import encode
from controller.http.ui.access import (
    caller,
    check_action,
    json_endpoint,
    json_response,
    peer,
    read_json,
    text_field,
)
from shoal import errors
from shoal.v1 import batch_pb2, types_pb2


def _guard(request: web.Request, name: str) -> None:
    """Refuse before reading the request: no session, no CSRF token, another origin, or a role
    that may not call `name` (the same check ApiCaller.call makes again)."""
    session, principal = caller(request)
    check_action(request, session)
    request.app[API].authorize(name, principal)


async def _act(request: web.Request, name: str, message: Any) -> Any:
    _, principal = caller(request)
    return await request.app[API].call(name, message, principal, peer(request))


def _who(request: web.Request) -> str:
    _, principal = caller(request)
    return f" by {principal.name}" if principal.name else ""


@json_endpoint
async def stop_job(request: web.Request) -> web.StreamResponse:
    job_id, verb = request.match_info["job_id"], request.match_info["verb"]
    _guard(request, "CancelJob" if verb == "cancel" else "TerminateJob")
    body = await read_json(request)
    reason = text_field(body, "reason").strip()
    if verb == "cancel":
        await _act(request, "CancelJob", batch_pb2.CancelJobRequest(
            job_id=job_id, reason=reason or f"Cancelled from the dashboard{_who(request)}"))  # fmt: skip
    else:
        await _act(request, "TerminateJob", batch_pb2.TerminateJobRequest(
            job_id=job_id, reason=reason or f"Terminated from the dashboard{_who(request)}"))  # fmt: skip
    return json_response({"ok": True})


@json_endpoint
async def node_action(request: web.Request) -> web.StreamResponse:
    node_id, verb = request.match_info["node_id"], request.match_info["verb"]
    _guard(request, "DrainNode" if verb == "drain" else "UndrainNode")
    body = await read_json(request)
    if verb == "drain":
        deadline = body.get("deadline_seconds", 0)
        if not isinstance(deadline, int) or isinstance(deadline, bool) or deadline < 0:
            raise errors.InvalidArgument("deadline_seconds: expected a whole number of seconds >= 0")
        interrupt = body.get("interrupt", False)
        if not isinstance(interrupt, bool):
            raise errors.InvalidArgument("interrupt: expected true or false")
        reason = text_field(body, "reason").strip() or f"Drained from the dashboard{_who(request)}"
        done = await _act(request, "DrainNode", batch_pb2.DrainNodeRequest(
            node_id=node_id, reason=reason, deadline_seconds=deadline, interrupt=interrupt))  # fmt: skip
    else:
        done = await _act(request, "UndrainNode", batch_pb2.UndrainNodeRequest(node_id=node_id))
    return json_response({"node": encode.node(done.node)})


@json_endpoint
async def queue_state(request: web.Request) -> web.StreamResponse:
    name = request.match_info["queue"]
    _guard(request, "UpdateJobQueue")
    body = await read_json(request)
    state = text_field(body, "state")
    if state not in ("ENABLED", "DISABLED"):
        raise errors.InvalidArgument(f"state: ENABLED or DISABLED (got {state[:40]!r})")
    updated = await _act(request, "UpdateJobQueue", batch_pb2.UpdateJobQueueRequest(
        job_queue_name=name, state=types_pb2.EntityState.Value("ENTITY_STATE_" + state)))  # fmt: skip
    return json_response({"queue": encode.queue(updated)})
