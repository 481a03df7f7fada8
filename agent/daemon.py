"""The agent process: wires the runtime, the attempts and the session; runs until told to stop."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

import structlog

from agent.attempts import Attempts
from agent.config import AgentConfig
from agent.identity import lock_state_dir
from agent.runtime import make_runtime
from agent.session import Session
from shoal import log

_log = log.get("agent")


async def run_agent(
    config: AgentConfig, stop: asyncio.Event, *, on_session: Callable[[Session], None] | None = None
) -> None:
    """Run one agent until `stop` is set, then shut down gracefully.

    Graceful shutdown: Interrupted is sent to the controller, every attempt gets SIGTERM, the
    kill grace, SIGKILL; their results are reported if a controller is connected (and kept in
    the state file otherwise). No attempt process outlives this coroutine.
    """
    lock = lock_state_dir(config.state_dir)
    structlog.contextvars.bind_contextvars(node_id=config.node_id)
    try:
        attempts = Attempts(make_runtime(config.runtime), config.state_dir, kill_grace=config.kill_grace)
        await attempts.recover()
        session = Session(config, attempts)
        if on_session is not None:  # e.g. the metrics endpoint (agent/metrics.py)
            on_session(session)
        _log.info(
            "agent starting",
            controllers=",".join(config.controllers),
            compute_environment=config.compute_environment,
            vcpus=config.vcpus,
            memory_mib=config.memory_mib,
            state_dir=str(config.state_dir),
        )
        session.start()
        try:
            await stop.wait()
        finally:
            _log.info("agent stopping")
            await session.shutdown()
        _log.info("agent stopped")
    finally:
        lock.close()


async def run_until_signalled(config: AgentConfig, *, on_session: Callable[[Session], None] | None = None) -> None:
    """`run_agent` with SIGINT and SIGTERM as the stop signal."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await run_agent(config, stop, on_session=on_session)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
