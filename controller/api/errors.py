"""The gRPC edge for domain errors: one decorator per method shape."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from shoal import errors, log

logger = log.get("controller.api")
MAX_DETAILS = 1024


async def abort(context: grpc.aio.ServicerContext, err: errors.ShoalError) -> None:
    code, details, trailing = errors.to_status(err)
    if len(details) > MAX_DETAILS:
        # Messages quote the offending value; a huge one would overflow gRPC's 8 KiB metadata
        # limit and reach the client as a misleading RESOURCE_EXHAUSTED instead.
        details = details[:MAX_DETAILS] + "... (truncated)"
    if trailing:
        context.set_trailing_metadata(trailing)
    await context.abort(code, details)


def unary(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(fn)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await fn(self, request, context)
        except errors.ShoalError as err:
            await abort(context, err)

    return wrapper


def stream(fn: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
    @functools.wraps(fn)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        try:
            async for item in fn(self, request, context):
                yield item
        except errors.ShoalError as err:
            await abort(context, err)

    return wrapper
