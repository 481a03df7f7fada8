"""The process runtime: each attempt is a plain host process in its own session.

The attempt's main process leads a new session (and so a new process group); everything it
starts stays in that group unless it calls setsid itself, so killing the group kills the job's
grandchildren too. The output goes straight into the log file (no pipe through the agent), so a
chatty job costs the agent nothing and orphans holding stdout never block it.

Child exits are observed through a pidfd (Linux >= 5.3), falling back to polling: no thread per
attempt, and no reliance on asyncio's child watcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from agent.runtime.base import AttemptHandle, AttemptSpec, CannotStart, ExitStatus
from shoal import log

_log = log.get("agent.runtime.process")

# Environment the agent passes on when the job did not set it.
INHERITED_ENV = ("PATH", "HOME", "LANG")

_POLL_SECONDS = 0.05
# After SIGKILL a group needs only the kernel to tear it down; this bounds the wait for that.
_SIGKILL_SETTLE_SECONDS = 5.0
# psutil's create_time is derived from boot time + clock ticks; identical across reads of one
# process, but allow for float rounding.
_START_TIME_SLACK = 0.05


class ProcessRuntime:
    """Runs attempts as process groups on the host. No image support, no resource limits yet."""

    name = "process"

    def __init__(self) -> None:
        # pid -> future of its wait status, for children this runtime instance spawned.
        self._exits: dict[int, asyncio.Future[int]] = {}
        self._reapers: dict[int, asyncio.Task[None]] = {}

    async def start(self, spec: AttemptSpec, log_path: Path) -> AttemptHandle:
        if spec.image:
            raise CannotStart(f"the process runtime cannot run container images (image {spec.image!r})")
        argv = list(spec.command)
        if not argv:
            raise CannotStart("no command given (the process runtime needs a command)")
        env = dict(spec.environment)
        for key in INHERITED_ENV:
            if key not in env and key in os.environ:
                env[key] = os.environ[key]
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        try:
            with _core_dumps_disabled():
                popen = subprocess.Popen(  # noqa: ASYNC220 - fork+exec is quick; see _core_dumps_disabled
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log_fd,
                    stderr=log_fd,
                    cwd=spec.work_dir,
                    env=env,
                    start_new_session=True,
                    close_fds=True,
                )
        except OSError as err:
            raise CannotStart(_explain_exec_error(err, argv[0], spec.work_dir)) from err
        finally:
            os.close(log_fd)
        try:
            start_time = psutil.Process(popen.pid).create_time()
        except psutil.Error:
            start_time = time.time()
        loop = asyncio.get_running_loop()
        self._exits[popen.pid] = loop.create_future()
        self._reapers[popen.pid] = loop.create_task(self._reap(popen), name=f"reap-{popen.pid}")
        return AttemptHandle(runtime=self.name, pid=popen.pid, pgid=popen.pid, start_time=start_time)

    async def wait(self, handle: AttemptHandle) -> ExitStatus:
        exit_future = self._exits.get(handle.pid)
        if exit_future is None:
            # Not our child (a handle from an earlier agent): we can see it end, not its status.
            while self._leader_alive(handle):  # noqa: ASYNC110 - no event exists for a foreign pid
                await asyncio.sleep(0.2)
            return ExitStatus(exit_code=None)
        returncode = await asyncio.shield(exit_future)
        if returncode < 0:
            return ExitStatus(exit_code=128 - returncode, signal=-returncode)
        return ExitStatus(exit_code=returncode)

    async def kill(self, handle: AttemptHandle, grace: float) -> None:
        if not self.is_alive(handle):
            return
        if grace > 0:
            _signal_group(handle.pgid, signal.SIGTERM)
        deadline = time.monotonic() + max(grace, 0.0)
        while time.monotonic() < deadline:
            await asyncio.sleep(min(_POLL_SECONDS, max(deadline - time.monotonic(), 0.0)))
            if not self.is_alive(handle):
                return
        await self._sigkill_group(handle)

    async def cleanup(self, handle: AttemptHandle) -> None:
        if self.is_alive(handle):
            await self._sigkill_group(handle)
        self._exits.pop(handle.pid, None)
        reaper = self._reapers.pop(handle.pid, None)
        if reaper is not None and not reaper.done():
            reaper.cancel()

    def is_alive(self, handle: AttemptHandle) -> bool:
        if self._leader_alive(handle):
            return True
        return bool(_group_members(handle.pgid, not_before=handle.start_time - _START_TIME_SLACK))

    async def _sigkill_group(self, handle: AttemptHandle) -> None:
        _signal_group(handle.pgid, signal.SIGKILL)
        deadline = time.monotonic() + _SIGKILL_SETTLE_SECONDS
        while self.is_alive(handle):
            if time.monotonic() > deadline:
                _log.warning("process group survived SIGKILL", pgid=handle.pgid)
                return
            await asyncio.sleep(_POLL_SECONDS)

    def _leader_alive(self, handle: AttemptHandle) -> bool:
        exit_future = self._exits.get(handle.pid)
        if exit_future is not None:
            return not exit_future.done()
        try:
            proc = psutil.Process(handle.pid)
            if abs(proc.create_time() - handle.start_time) > _START_TIME_SLACK:
                return False  # the pid was recycled
            return proc.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    async def _reap(self, popen: subprocess.Popen[bytes]) -> None:
        exit_future = self._exits[popen.pid]
        try:
            await _wait_for_exit(popen)
        finally:
            if not exit_future.done() and popen.returncode is not None:
                exit_future.set_result(popen.returncode)


async def _wait_for_exit(popen: subprocess.Popen[bytes]) -> None:
    loop = asyncio.get_running_loop()
    try:
        pidfd = os.pidfd_open(popen.pid)
    except (AttributeError, OSError):
        while popen.poll() is None:  # noqa: ASYNC110 - no pidfd on this kernel: poll
            await asyncio.sleep(0.1)
        return
    try:
        while popen.poll() is None:
            readable = loop.create_future()
            loop.add_reader(pidfd, lambda fut=readable: fut.done() or fut.set_result(None))
            try:
                await readable
            finally:
                loop.remove_reader(pidfd)
    finally:
        os.close(pidfd)


def _group_members(pgid: int, *, not_before: float) -> list[psutil.Process]:
    """Live (non-zombie) processes of group `pgid` created at or after `not_before`."""
    if pgid <= 0:
        return []
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return []
    except PermissionError:
        pass  # exists, but not ours to signal; look closer below
    members = []
    for proc in psutil.process_iter(["status", "create_time"]):
        try:
            if os.getpgid(proc.pid) != pgid:
                continue
        except OSError:
            continue
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if (proc.info["create_time"] or 0.0) < not_before:
            continue  # an older group that reused the id: not ours
        members.append(proc)
    return members


def _signal_group(pgid: int, signum: int) -> None:
    if pgid <= 0:
        return
    with contextlib.suppress(ProcessLookupError):
        try:
            os.killpg(pgid, signum)
        except PermissionError:
            _log.warning("not allowed to signal process group", pgid=pgid, signal=signum)


@contextlib.contextmanager
def _core_dumps_disabled() -> Iterator[None]:
    """Lower this process's RLIMIT_CORE to 0 while spawning, so the child inherits 0.

    Avoids preexec_fn (unsafe with gRPC's threads). Safe against other coroutines because the
    spawn inside is synchronous; the soft limit only goes back up to what it was (<= hard).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    if soft == 0:
        yield
        return
    resource.setrlimit(resource.RLIMIT_CORE, (0, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_CORE, (soft, hard))


def _explain_exec_error(err: OSError, program: str, work_dir: Path | None) -> str:
    if work_dir is not None and err.filename is not None and os.fsdecode(err.filename) == str(work_dir):
        return f"working directory {str(work_dir)!r}: {err.strerror or err}"
    if isinstance(err, FileNotFoundError):
        if os.sep in program:
            return f"exec: {program!r}: no such file or directory"
        return f"exec: {program!r}: executable file not found in $PATH"
    if isinstance(err, PermissionError):
        return f"exec: {program!r}: permission denied"
    return f"exec: {program!r}: {err.strerror or err}"
