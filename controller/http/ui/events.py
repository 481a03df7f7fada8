"""Server-sent events for the pages: job changes (WatchJobs), one job's changes, an attempt's log
lines (GetJobLogs with follow) and the overview's numbers, each through ApiCaller.stream as the
session's principal.

One `EventStream` per open page: the API stream is pumped by a task into a queue, and the
response loop writes what arrives, a keep-alive comment when nothing did (that is also how a
closed browser tab is noticed: the write fails), and stops when the session ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from controller.http.server import API
from controller.http.ui import encode
from controller.http.ui.access import SESSIONS, caller, error_response, peer
from controller.http.ui.reads import overview_data
from controller.http.ui.sessions import Session
from shoal import errors, log
from shoal.cli.render import LogRenderer
from shoal.v1 import batch_pb2

logger = log.get("controller.http.ui")

KEEPALIVE_SECONDS = 15.0
# Job changes are sent at most this often, the latest state per job (a busy cluster changes
# thousands of jobs a second; a page shows 50).
COALESCE_SECONDS = 0.25
# More changes than this in one interval: the page is told to reload its list instead.
MAX_CHANGES_PER_MESSAGE = 500
OVERVIEW_MIN_SECONDS = 1.0
OVERVIEW_MAX_SECONDS = 5.0

_END = object()


class EventStream:
    def __init__(self, request: web.Request, session: Session | None) -> None:
        self.request = request
        self.session = session
        self.response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )

    async def open(self) -> None:
        await self.response.prepare(self.request)

    @property
    def alive(self) -> bool:
        return self.session is None or self.request.app[SESSIONS].alive(self.session)

    async def send(self, event: str, data: Any) -> None:
        payload = json.dumps(data, separators=(",", ":"))
        await self.response.write(f"event: {event}\ndata: {payload}\n\n".encode())

    async def keepalive(self) -> None:
        await self.response.write(b": keep-alive\n\n")


async def _pump(source: AsyncIterator[Any], queue: asyncio.Queue[Any]) -> None:
    try:
        async for item in source:
            queue.put_nowait(item)
        queue.put_nowait(_END)
    except errors.ShoalError as err:
        queue.put_nowait(err)
    except Exception as err:  # noqa: BLE001 - a bug must end the page's stream, not hang it
        logger.exception("ui.stream_failed")
        queue.put_nowait(errors.ShoalError(f"internal error: {type(err).__name__}"))


async def _serve(
    request: web.Request, name: str, message: Any, handle: Any, *,
    coalesce: float = 0.0, tick: float = KEEPALIVE_SECONDS, on_open: bool = False,
) -> web.StreamResponse:  # fmt: skip
    """Open `name` as a stream, then call `handle(stream, items)` with what arrives (batched for
    `coalesce` seconds); `handle(stream, None)` after `tick` seconds without any (and once at
    the start with `on_open`). A handler returning False ends the stream."""
    try:
        session, principal = caller(request)
        request.app[API].authorize(name, principal)
    except errors.ShoalError as err:
        return error_response(err)
    out = EventStream(request, session)
    await out.open()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    source = request.app[API].stream(name, message, principal, peer(request))
    pump = asyncio.create_task(_pump(source, queue), name=f"ui-sse-{name}")
    # Let the pump subscribe (WatchJobs registers its listener before it first waits) before
    # the page is told it may load what the stream will keep up to date.
    for _ in range(3):
        await asyncio.sleep(0)
    try:
        await out.send("ready", {})
        if on_open and await handle(out, None) is False:
            return out.response
        while out.alive:
            try:
                first = await asyncio.wait_for(queue.get(), tick)
            except TimeoutError:
                await out.keepalive()
                if await handle(out, None) is False:
                    break
                continue
            items = [first]
            if coalesce:
                await asyncio.sleep(coalesce)
            while not queue.empty():
                items.append(queue.get_nowait())
            ended = next((i for i in items if i is _END or isinstance(i, errors.ShoalError)), None)
            data = [i for i in items if i is not _END and not isinstance(i, errors.ShoalError)]
            if data and await handle(out, data) is False:
                break
            if isinstance(ended, errors.ShoalError):
                await out.send("failed", {"error": ended.message})
                break
            if ended is _END:
                await out.send("end", {})
                break
        if not out.alive:
            await out.send("failed", {"error": "the session ended: log in again"})
    except ConnectionError:
        pass  # the browser went away (a write failed)
    finally:
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await pump
        with contextlib.suppress(Exception):
            await source.aclose()  # type: ignore[attr-defined]
    return out.response


async def job_changes(request: web.Request) -> web.StreamResponse:
    """Changes of jobs matching the Jobs page's filters (queue and name prefix here; the page
    decides about status and times, since a job leaving a status must still update its row)."""
    queue = request.query.get("queue", "")
    prefix = request.query.get("prefix", "")
    array = request.query.get("array", "")

    async def handle(out: EventStream, events: list[batch_pb2.JobEvent] | None) -> None:
        if events is None:
            return
        latest: dict[str, dict[str, Any]] = {}
        for ev in events:
            j = ev.job
            if prefix and not j.job_name.startswith(prefix):
                continue
            if array and not j.job_id.startswith(array + ":"):
                continue
            latest[j.job_id] = encode.job_summary(j)
        if len(latest) > MAX_CHANGES_PER_MESSAGE:
            await out.send("resync", {"changes": len(latest)})
        elif latest:
            await out.send("jobs", {"jobs": list(latest.values())})

    message = batch_pb2.WatchJobsRequest(job_queue=queue, changes_only=True)
    return await _serve(request, "WatchJobs", message, handle, coalesce=COALESCE_SECONDS)


async def job_watch(request: web.Request) -> web.StreamResponse:
    job_id = request.match_info["job_id"]

    async def handle(out: EventStream, events: list[batch_pb2.JobEvent] | None) -> None:
        if events:
            await out.send("job", encode.job(events[-1].job))

    return await _serve(request, "WatchJobs", batch_pb2.WatchJobsRequest(job_ids=[job_id]), handle,
                        coalesce=COALESCE_SECONDS)  # fmt: skip


async def job_logs(request: web.Request) -> web.StreamResponse:
    """An attempt's output as lines [time, stream, text]; with follow=1 until the attempt ends."""
    job_id = request.match_info["job_id"]
    try:
        attempt = int(request.query.get("attempt", "0"))
    except ValueError:
        return error_response(errors.InvalidArgument("attempt: expected a number"))
    follow = request.query.get("follow", "1") == "1"
    renderer = LogRenderer(timestamps=True)
    sent_attempt = {"n": 0}

    async def handle(out: EventStream, chunks: list[batch_pb2.LogChunk] | None) -> None:
        if not chunks:
            return
        if chunks[0].attempt != sent_attempt["n"]:
            sent_attempt["n"] = chunks[0].attempt
            await out.send("attempt", {"attempt": chunks[0].attempt, "node_id": chunks[0].node_id})
        text = b"".join(renderer.feed(c.data) for c in chunks)
        lines = [_record(line) for line in text.decode("utf-8", errors="replace").splitlines()]
        if lines:
            await out.send("lines", {"lines": lines})

    message = batch_pb2.GetJobLogsRequest(job_id=job_id, attempt=max(0, attempt), follow=follow)
    return await _serve(request, "GetJobLogs", message, handle)


def _record(line: str) -> list[str]:
    stamp, _, rest = line.partition(" ")
    stream, _, text = rest.partition(" ")
    if stamp.endswith("Z") and stream in ("stdout", "stderr", "shoal"):
        return [stamp, stream, text]
    return ["", "", line]


async def overview(request: web.Request) -> web.StreamResponse:
    """The overview's numbers after job changes (at most once a second) and every few seconds
    (node heartbeats, capacity) even without any."""
    state = {"sent": 0.0}

    async def handle(out: EventStream, events: list[batch_pb2.JobEvent] | None) -> bool:
        now = time.monotonic()
        if events is not None and now - state["sent"] < OVERVIEW_MIN_SECONDS:
            return True
        try:
            data = await overview_data(request)
        except errors.ShoalError as err:
            await out.send("failed", {"error": err.message})
            return False
        state["sent"] = now
        await out.send("overview", data)
        return True

    message = batch_pb2.WatchJobsRequest(changes_only=True)
    return await _serve(request, "WatchJobs", message, handle, coalesce=COALESCE_SECONDS,
                        tick=OVERVIEW_MAX_SECONDS, on_open=True)  # fmt: skip
