"""Helpers for handles written by an earlier agent process: processes that are not our children.

A restarted agent is not the parent of the attempts it re-attaches to: it cannot waitpid them.
It watches them through a pidfd (Linux >= 5.3: readable once the process exited, also for a
non-child), falling back to polling, and always checks the process's creation time so that a
recycled pid is never mistaken for the attempt's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from pathlib import Path
from typing import Any

import psutil

from agent.runtime.base import AttemptHandle
from agent.runtime.cgroups import AttemptCgroup
from agent.runtime.fence import CONTAINER, PROCESS, Target

# psutil's create_time is derived from boot time + clock ticks; identical across reads of one
# process, but allow for float rounding.
START_TIME_SLACK = 0.05
POLL_SECONDS = 0.2


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_boot_time: float | None = None


def start_time_of(pid: int) -> float:
    """`psutil.Process(pid).create_time()` (the same number), from one read of /proc/PID/stat:
    on the path of every attempt start, where psutil's general machinery was most of the cost.
    psutil.Error if there is no such process."""
    global _boot_time
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()
        ticks = int(fields[19])  # field 22, starttime; fields[0] is field 3 (state)
    except FileNotFoundError as err:
        raise psutil.NoSuchProcess(pid) from err
    except (OSError, ValueError, IndexError):
        return float(psutil.Process(pid).create_time())
    if _boot_time is None:
        _boot_time = psutil.boot_time()
    return ticks / _CLOCK_TICKS + _boot_time


def process_alive(pid: int, start_time: float) -> bool:
    """Whether `pid` runs (not a zombie) and is the process created at `start_time`."""
    if pid <= 0:
        return False
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - start_time) > START_TIME_SLACK:
            return False  # the pid was recycled
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


async def wait_gone(pid: int, start_time: float, *, poll: float = POLL_SECONDS) -> None:
    """Until process `pid` (created at `start_time`) has exited; works for non-children."""
    pidfd = -1
    with contextlib.suppress(AttributeError, OSError):
        pidfd = os.pidfd_open(pid)
    try:
        # Checked after opening the pidfd: the fd cannot refer to a later process of that pid.
        if not process_alive(pid, start_time):
            return
        if pidfd < 0:
            while process_alive(pid, start_time):  # noqa: ASYNC110 - no pidfd on this kernel: poll
                await asyncio.sleep(poll)
            return
        loop = asyncio.get_running_loop()
        readable = loop.create_future()
        loop.add_reader(pidfd, lambda: readable.done() or readable.set_result(None))
        try:
            # The pidfd is readable once the process exited; the timeout guards against a
            # kernel that does not say so for a non-child.
            while not readable.done() and process_alive(pid, start_time):
                await asyncio.wait({readable}, timeout=5.0)
        finally:
            loop.remove_reader(pidfd)
            if not readable.done():
                readable.cancel()
    finally:
        if pidfd >= 0:
            os.close(pidfd)


def output_written(done_file: str, writer_pid: int, writer_start_time: float) -> bool:
    """Whether an attempt's output is completely in its log: the log writer created the attempt's
    marker, or the writer is gone (then nothing more will be written either)."""
    return os.path.exists(done_file) or not process_alive(writer_pid, writer_start_time)


async def wait_writer(handle: AttemptHandle) -> None:
    """Until the attempt's output is completely in its log (a handle of an earlier agent process).

    The agent's shared writer creates the attempt's `writer_done_file` then; if the writer is
    gone without it (it died), nothing more will be written either. A handle of an older agent
    names a writer of the attempt's own, which exits once it wrote everything.
    """
    if handle.writer_done_file:
        while not output_written(handle.writer_done_file, handle.writer_pid, handle.writer_start_time):  # noqa: ASYNC110
            await asyncio.sleep(0.05)  # no connection to the writer tells this agent: poll
    elif handle.writer_pid > 0:
        await wait_gone(handle.writer_pid, handle.writer_start_time, poll=0.05)


def cgroup_of(handle: AttemptHandle) -> AttemptCgroup | None:
    """The attempt's cgroup as recorded in its handle, if it has one."""
    if not handle.cgroup_version or not handle.cgroup_memory:
        return None
    return AttemptCgroup(handle.cgroup_version, Path(handle.cgroup_memory),
                         Path(handle.cgroup_cpu) if handle.cgroup_cpu else None)


def cgroup_fields(cgroup: AttemptCgroup | None) -> dict[str, Any]:
    """`AttemptHandle` fields recording `cgroup`."""
    if cgroup is None:
        return {}
    return {"cgroup_version": cgroup.version, "cgroup_memory": str(cgroup.memory),
            "cgroup_cpu": str(cgroup.cpu) if cgroup.cpu else ""}


def read_exit_file(path: str) -> int | None:
    """The exit status a gate wrote (one line, newline-terminated), or None if none (yet)."""
    if not path:
        return None
    try:
        with open(path, "rb") as source:
            text = source.read(64)
    except OSError:
        return None
    if not text.endswith(b"\n"):
        return None  # not written (or, in theory, half written: the gate writes it in one call)
    try:
        return int(text.strip())
    except ValueError:
        return None


def fence_target(handle: AttemptHandle) -> Target | None:
    """What the host's fence stops for a re-attached attempt (None: a runtime it cannot stop).

    A container's init pid is not in the handle: a fence that did not know the attempt stops it
    through the CLI."""
    if handle.runtime == PROCESS:
        return Target(kind=PROCESS, pid=handle.pid, pid_start=handle.start_time, pgid=handle.pgid)
    if handle.container_id:
        return Target(kind=CONTAINER, pgid=handle.pgid, binary=shutil.which(handle.runtime) or handle.runtime,
                      container_id=handle.container_id)
    return None
