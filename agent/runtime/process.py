"""The process runtime: each attempt is a plain host process in its own session.

The attempt's main process leads a new session (and so a new process group); everything it
starts stays in that group unless it calls setsid itself, so killing the group kills the job's
grandchildren too. The output goes through pipes to the agent's log writer process (one per
agent, shared by its attempts, in a session of its own: `agent.runtime.output`,
`agent.runtime.logwriter`), never through the agent, so a chatty job costs the agent nothing.

Resource limits: with cgroups the agent may create (v2 or v1, see `agent.runtime.cgroups`), each
attempt gets its own cgroup with `memory_mib` as a hard memory limit (no swap) and `vcpus` as a
CPU quota; an OOM kill is read from the cgroup's counters. Without cgroups, memory is limited
with RLIMIT_AS (address space): a job exceeding it sees failed allocations (and usually exits
with an error of its own) instead of an OOM kill, programs that reserve much more address space
than they use (JVMs, Go) may fail early, and CPU is not limited.

The gate. The attempt's main process (the handle's pid, leader of the attempt's session) is a
small `sh` that runs the job's command as its child and outlives it:

    sh -c 'read -r _ || exit 125; trap : HUP INT QUIT TERM USR1 USR2 ALRM;
           ( exec "$@" ) </dev/null; s=$?; printf "%s\\n" $s > EXIT_FILE; exit $s' shoal-attempt EXIT_FILE CMD...

- The `read` waits until the agent set rlimits and the cgroup on the gate, which the command
  inherits (no preexec_fn: unsafe with gRPC's threads), and until the host's fence (the log
  writer, agent/runtime/fence.py) knows the gate's pid and group: an agent killed before that
  closes the pipe with its death, and the gate exits 125 without running anything, so no job
  runs that the fence could not stop.
- The command runs in a subshell that `exec`s it: always the program named (never a shell
  builtin of the same name), with the default disposition of every signal (traps are reset in
  subshells), in the attempt's process group. A SIGTERM (or SIGINT, ...) to the group reaches
  the command as before; the gate catches it and keeps waiting (POSIX defers its trap until the
  foreground command ended), so the command may checkpoint and exit 0 within its grace.
- The gate writes the command's status to the exit file in one write (newline-terminated: a
  reader never takes a partial write for a status) and exits with the same status: 128+N when
  the command died of signal N. The agent that started it reads the gate's own exit status; an
  agent restarted meanwhile (not the gate's parent, so it cannot waitpid it) reads the exit file.
  Only a SIGKILL to the whole group (the agent's own escalation) kills the gate too: then its
  parent sees 128+9, and a re-attached agent, finding no exit file, reports the attempt as lost.
- The gate's own stderr goes to /dev/null (the shell's "Killed" notes never reach the log).
- Known gap: a signal that reaches the group in the instant between the gate's fork of the
  subshell and its exec of the command (microseconds, right after the start) is taken by the
  subshell's inherited trap and lost for the command. A kill then still ends it: `kill`
  escalates to SIGKILL after the grace. (Closing it needs a gate that blocks signals around
  the spawn, e.g. posix_spawn with setsigmask/setsigdef: not something sh can do.)
- Costs: one more small process (the gate) per attempt for the attempt's lifetime; the
  command's RLIMIT_NPROC counts the gate too.

Exits of our own children are observed through a pidfd (Linux >= 5.3), falling back to polling:
no thread per attempt, and no reliance on asyncio's child watcher. Attempts of an earlier agent
process are watched the same way (agent/runtime/reattach.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import resource
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from agent.runtime.base import AttemptHandle, AttemptSpec, CannotStart, ExitStatus, Ulimit
from agent.runtime.cgroups import AttemptCgroup, Cgroups, attempt_cgroup_name
from agent.runtime.cgroups import detect as detect_cgroups
from agent.runtime.fence import PROCESS, Target
from agent.runtime.output import LogLimits, Output, open_output
from agent.runtime.reattach import (
    START_TIME_SLACK,
    cgroup_fields,
    cgroup_of,
    process_alive,
    read_exit_file,
    start_time_of,
    wait_gone,
    wait_writer,
)
from shoal import log

_log = log.get("agent.runtime.process")

# Environment the agent passes on when the job did not set it.
INHERITED_ENV = ("PATH", "HOME", "LANG")

_POLL_SECONDS = 0.05
# After SIGKILL a group needs only the kernel to tear it down; this bounds the wait for that.
_SIGKILL_SETTLE_SECONDS = 5.0
_START_TIME_SLACK = START_TIME_SLACK


# The gate (see the module docstring): argv[1] is the exit file, then the job's argv. It first
# waits for the agent's go (a line on stdin; EOF = give up): limits applied, the fence told.
_GATE_RUN = (
    'exec 3>&2 2>/dev/null; trap : HUP INT QUIT TERM USR1 USR2 ALRM; '
    '( exec "$@" 2>&3 3>&- ) </dev/null; s=$?; printf "%s\\n" "$s" >"$f"; exit "$s"'
)
_GATE_WAITING = ("/bin/sh", "-c", 'f=$1; shift; read -r _ || exit 125; ' + _GATE_RUN, "shoal-attempt")
EXIT_FILE_SUFFIX = ".exit"
# ulimit names (docker's) -> resource constants.
RLIMITS: dict[str, int] = {
    "core": resource.RLIMIT_CORE,
    "cpu": resource.RLIMIT_CPU,
    "data": resource.RLIMIT_DATA,
    "fsize": resource.RLIMIT_FSIZE,
    "locks": 10,  # RLIMIT_LOCKS (Linux); the resource module does not name it
    "memlock": resource.RLIMIT_MEMLOCK,
    "msgqueue": resource.RLIMIT_MSGQUEUE,
    "nice": resource.RLIMIT_NICE,
    "nofile": resource.RLIMIT_NOFILE,
    "nproc": resource.RLIMIT_NPROC,
    "rss": resource.RLIMIT_RSS,
    "rtprio": resource.RLIMIT_RTPRIO,
    "rttime": resource.RLIMIT_RTTIME,
    "sigpending": resource.RLIMIT_SIGPENDING,
    "stack": resource.RLIMIT_STACK,
}
_ALL_RLIMITS = {**RLIMITS, "as": resource.RLIMIT_AS}


class ProcessRuntime:
    """Runs attempts as process groups on the host, in a cgroup of their own where possible."""

    name = "process"

    def __init__(self, *, cgroups: Cgroups | None | bool = True, log_limits: LogLimits | None = None) -> None:
        """`cgroups`: True = detect, False/None = never (rlimits only), or a `Cgroups`."""
        # pid -> future of its wait status, for children this runtime instance spawned.
        self._exits: dict[int, asyncio.Future[int]] = {}
        self._reapers: dict[int, asyncio.Task[None]] = {}
        self._outputs: dict[int, Output] = {}
        self._cgroups_of: dict[int, AttemptCgroup] = {}
        self.cgroups: Cgroups | None = detect_cgroups() if cgroups is True else (cgroups or None)
        self.log_limits = log_limits or LogLimits()

    def describe_limits(self) -> str:
        if self.cgroups is not None:
            return self.cgroups.describe()
        return "rlimits (RLIMIT_AS) only: no cgroup the agent may create"

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
        cwd = Path(spec.working_dir) if spec.working_dir else spec.work_dir
        _check_before_spawn(spec, argv[0], env, cwd)
        user, group = _parse_user(spec.user)
        limits = _rlimits(spec, use_address_space=self.cgroups is None and spec.memory_mib > 0)
        cgroup = None
        if self.cgroups is not None and (spec.memory_mib > 0 or spec.vcpus > 0):
            try:
                cgroup = self.cgroups.create(
                    attempt_cgroup_name(spec.job_id, spec.attempt, os.getpid()),
                    memory_mib=spec.memory_mib, vcpus=spec.vcpus,
                )
            except OSError as err:
                raise CannotStart(f"cannot create the attempt's cgroup: {err}") from err
        exit_file = exit_file_for(log_path)
        try:
            _prepare_exit_file(exit_file, user)
        except (OSError, CannotStart) as err:
            if cgroup is not None:
                cgroup.remove()
            if isinstance(err, CannotStart):
                raise
            raise CannotStart(f"cannot create the attempt's exit file {str(exit_file)!r}: {err}") from err
        try:
            output = await open_output(log_path, self.log_limits)
        except OSError as err:
            if cgroup is not None:
                cgroup.remove()
            raise CannotStart(f"cannot hand the attempt's output to the log writer: {err}") from err
        gate_r = gate_w = -1
        try:
            gate_r, gate_w = os.pipe2(os.O_CLOEXEC)
            with _core_dumps_disabled():
                popen = subprocess.Popen(  # noqa: ASYNC220 - fork+exec is quick; see _core_dumps_disabled
                    [*_GATE_WAITING, str(exit_file), *argv],
                    stdin=gate_r,
                    stdout=output.stdout,
                    stderr=output.stderr,
                    cwd=cwd,
                    env=env,
                    start_new_session=True,
                    close_fds=True,
                    user=user,
                    group=group,
                )
        except OSError as err:
            _close(gate_w)
            if cgroup is not None:
                cgroup.remove()
            raise CannotStart(_explain_exec_error(err, argv[0], cwd)) from err
        finally:
            _close(gate_r)
            output.close_job_ends()
        try:
            start_time = start_time_of(popen.pid)
        except psutil.Error:
            start_time = time.time()
        step = "apply the attempt's limits"
        try:
            for name, (soft, hard) in limits.items():
                resource.prlimit(popen.pid, _ALL_RLIMITS[name], (soft, hard))
            if cgroup is not None:
                cgroup.add(popen.pid)
            step = "register the attempt with the host's fence (the log writer)"
            await output.watch(Target(kind=PROCESS, pid=popen.pid, pid_start=start_time, pgid=popen.pid))
            step = "start the attempt"
            os.write(gate_w, b"go\n")
        except OSError as err:
            _close(gate_w)  # the gate reads EOF and exits 125 without running anything
            gate_w = -1
            popen.wait()
            await output.wait_writer()
            if cgroup is not None:
                cgroup.remove()
            raise CannotStart(f"cannot {step}: {err}") from err
        finally:
            _close(gate_w)
        loop = asyncio.get_running_loop()
        self._exits[popen.pid] = loop.create_future()
        self._reapers[popen.pid] = loop.create_task(self._reap(popen), name=f"reap-{popen.pid}")
        self._outputs[popen.pid] = output
        if cgroup is not None:
            self._cgroups_of[popen.pid] = cgroup
        return AttemptHandle(runtime=self.name, pid=popen.pid, pgid=popen.pid, start_time=start_time,
                             exit_file=str(exit_file), **output.handle_fields, **cgroup_fields(cgroup))

    async def wait(self, handle: AttemptHandle) -> ExitStatus:
        exit_future = self._exits.get(handle.pid)
        if exit_future is None:
            return await self._wait_foreign(handle)
        returncode = await asyncio.shield(exit_future)
        # The gate exits with the command's status (128+N for signal N); only a SIGKILL of the
        # whole group kills the gate itself (returncode -9).
        exit_code = 128 - returncode if returncode < 0 else returncode
        cgroup = self._cgroups_of.get(handle.pid)
        oom = cgroup is not None and cgroup.killed_for_memory(_signal_of(exit_code))
        output = self._outputs.get(handle.pid)
        if output is not None:
            # Orphans of the group may still hold the pipes: the writer ends with the last one.
            if not _group_members(handle.pgid, not_before=handle.start_time - _START_TIME_SLACK):
                await output.wait_writer()
        return ExitStatus(exit_code=exit_code, signal=_signal_of(exit_code), oom_killed=oom)

    async def _wait_foreign(self, handle: AttemptHandle) -> ExitStatus:
        """Re-attached: a handle of an earlier agent. Its gate is not our child: we watch it
        end, then read the status the gate left in the exit file (None if it left none)."""
        await wait_gone(handle.pid, handle.start_time)
        if not _group_members(handle.pgid, not_before=handle.start_time - _START_TIME_SLACK):
            await wait_writer(handle)
        exit_code = read_exit_file(handle.exit_file)
        if exit_code is None:
            return ExitStatus(exit_code=None)
        cgroup = cgroup_of(handle)
        oom = cgroup is not None and cgroup.killed_for_memory(_signal_of(exit_code))
        return ExitStatus(exit_code=exit_code, signal=_signal_of(exit_code), oom_killed=oom)

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
        output = self._outputs.pop(handle.pid, None)
        if output is not None:
            await output.wait_writer()
        elif handle.pid not in self._exits:
            await wait_writer(handle)  # re-attached: the writer of an earlier agent
        cgroup = self._cgroups_of.pop(handle.pid, None) or (
            cgroup_of(handle) if handle.pid not in self._exits else None
        )
        if cgroup is not None:
            cgroup.remove()
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
        return process_alive(handle.pid, handle.start_time)

    async def _reap(self, popen: subprocess.Popen[bytes]) -> None:
        exit_future = self._exits[popen.pid]
        try:
            await _wait_for_exit(popen)
        finally:
            if not exit_future.done() and popen.returncode is not None:
                exit_future.set_result(popen.returncode)


def exit_file_for(log_path: Path) -> Path:
    """Where the gate of the attempt logging to `log_path` writes its exit status."""
    return log_path.with_name(log_path.stem + EXIT_FILE_SUFFIX)


def _prepare_exit_file(path: Path, user: str | int | None) -> None:
    """No stale status at the exit file's path, and, for a job of another user, an empty exit
    file that user's gate can write (the gate only opens it, O_TRUNC: it needs no write access
    to the directory). A gate of the agent's own user creates the file itself when it writes
    the status: one file creation fewer on the agent's path per attempt."""
    if user is None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # an earlier attempt's, if the path is used again
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        uid = user if isinstance(user, int) else pwd.getpwnam(user).pw_uid
        os.fchown(fd, uid, -1)
    except KeyError as err:
        raise CannotStart(f"user {user!r}: no such user on this node") from err
    finally:
        os.close(fd)


def _signal_of(exit_code: int) -> int | None:
    """The signal an exit status 128+N stands for (shells and container runtimes report death
    by signal N so; an exit(128+N) of the command itself cannot be told apart)."""
    return exit_code - 128 if 128 < exit_code < 128 + 65 else None


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


def _close(fd: int) -> None:
    if fd >= 0:
        with contextlib.suppress(OSError):
            os.close(fd)


def _check_before_spawn(spec: AttemptSpec, program: str, env: dict[str, str], cwd: Path | None) -> None:
    """What the gate's exec would only report as exit 127: say it now, as CannotStart."""
    for mount in spec.mounts:
        if not os.path.exists(mount.source_path):
            raise CannotStart(f"mount source {mount.source_path!r} does not exist on this node")
    if cwd is not None and not cwd.is_dir():
        raise CannotStart(f"working directory {str(cwd)!r}: no such directory")
    if os.sep in program:
        path = program if os.path.isabs(program) or cwd is None else str(cwd / program)
        if not os.path.exists(path):
            raise CannotStart(f"exec: {program!r}: no such file or directory")
        if not os.access(path, os.X_OK) or os.path.isdir(path):
            raise CannotStart(f"exec: {program!r}: permission denied")
    elif shutil.which(program, path=env.get("PATH", os.defpath)) is None:
        raise CannotStart(f"exec: {program!r}: executable file not found in $PATH")


def _parse_user(user: str) -> tuple[str | int | None, str | int | None]:
    if not user:
        return None, None
    name, _, group = user.partition(":")
    uid: str | int = int(name) if name.isdigit() else name
    gid: str | int | None = (int(group) if group.isdigit() else group) if group else None
    if os.geteuid() != 0:
        raise CannotStart(f"user {user!r}: the agent does not run as root, so it cannot switch users")
    return uid, gid


def _rlimits(spec: AttemptSpec, *, use_address_space: bool) -> dict[str, tuple[int, int]]:
    """name -> (soft, hard) to set on the attempt; RLIMIT_AS stands in for a missing cgroup."""
    wanted: dict[str, tuple[int, int]] = {}
    for ulimit in spec.ulimits:
        if ulimit.name not in RLIMITS:
            raise CannotStart(f"ulimit {ulimit.name!r} is not known (known: {', '.join(sorted(RLIMITS))})")
        wanted[ulimit.name] = _capped(ulimit)
    if use_address_space:
        limit = spec.memory_mib * 1024 * 1024
        wanted["as"] = (limit, limit)
    return wanted


def _capped(ulimit: Ulimit) -> tuple[int, int]:
    soft, hard = ulimit.soft, ulimit.hard or ulimit.soft
    infinity = resource.RLIM_INFINITY
    return (infinity if soft >= 2**63 - 1 else soft, infinity if hard >= 2**63 - 1 else hard)


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
