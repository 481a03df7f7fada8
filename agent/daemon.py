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
from agent.runtime.output import FenceSettings, configure_fence
from agent.session import Session
from shoal import log

_log = log.get("agent")

# Exit leaving every attempt running, for the next agent process to re-attach to (upgrades).
KEEP_JOBS_SIGNAL = signal.SIGUSR2


async def run_agent(
    config: AgentConfig,
    stop: asyncio.Event,
    *,
    on_session: Callable[[Session], None] | None = None,
    keep_jobs: Callable[[], bool] | None = None,
) -> None:
    """Run one agent until `stop` is set, then shut down.

    On start, attempts a previous agent process left (its state file) are re-attached to.

    Graceful shutdown (the default): Interrupted is sent to the controller, every attempt gets
    SIGTERM, the kill grace, SIGKILL; their results are reported if a controller is connected
    (and kept in the state file otherwise). No attempt process outlives this coroutine.

    If `keep_jobs()` says so when `stop` is set (SIGUSR2, or `--keep-jobs-on-exit`), or if this
    coroutine ends any other way (cancelled, a bug), the attempts are left running instead,
    for the next agent process to re-attach to.
    """
    lock = lock_state_dir(config.state_dir)
    structlog.contextvars.bind_contextvars(node_id=config.node_id)
    configure_fence(FenceSettings(window=config.fence_window, grace=config.fence_kill_grace))
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
            reattached=len(attempts.running()),
        )
        session.start()
        keep = True  # unless told to stop: a crash must not take the jobs with it
        try:
            await stop.wait()
            keep = keep_jobs() if keep_jobs is not None else False
        finally:
            _log.info("agent stopping", keep_jobs=keep)
            await session.shutdown(keep_attempts=keep)
        _log.info("agent stopped")
    finally:
        lock.close()


async def run_until_signalled(config: AgentConfig, *, on_session: Callable[[Session], None] | None = None) -> None:
    """`run_agent` until a signal: SIGINT/SIGTERM stop the attempts (unless the config keeps
    them), SIGUSR2 always leaves them running for the next agent process."""
    stop = asyncio.Event()
    keep = [config.keep_jobs_on_exit]

    def leave_running() -> None:
        keep[0] = True
        stop.set()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(KEEP_JOBS_SIGNAL, leave_running)
    try:
        await run_agent(config, stop, on_session=on_session, keep_jobs=lambda: keep[0])
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, KEEP_JOBS_SIGNAL):
            loop.remove_signal_handler(signum)
