"""Runtimes run job attempts behind one seam (`agent.runtime.base.Runtime`)."""

from __future__ import annotations

from agent.runtime.base import AttemptHandle, AttemptSpec, CannotStart, ExitStatus, Runtime
from agent.runtime.process import ProcessRuntime
from shoal.errors import InvalidArgument

__all__ = [
    "AttemptHandle",
    "AttemptSpec",
    "CannotStart",
    "ExitStatus",
    "ProcessRuntime",
    "Runtime",
    "make_runtime",
    "RUNTIMES",
]

# Runtimes this agent build can run, by the name jobs and the --runtime flag use.
RUNTIMES: tuple[str, ...] = ("process",)


def make_runtime(name: str) -> Runtime:
    """A runtime by name; InvalidArgument if this agent has no such runtime."""
    if name == "process":
        return ProcessRuntime()
    raise InvalidArgument(f"unknown runtime {name!r} (available: {', '.join(RUNTIMES)})")
