"""The container runtimes: the docker-compatible CLIs `podman` and `docker` (same flags).

An attempt is two CLI calls: `create` (synchronous: a missing image, a bad mount or a bad
option is a `CannotStart` with the CLI's own words), then `start --attach` as a child in its
own session whose stdout/stderr go to the agent's log writer. Attaching before starting means
no output is lost. Exit code and OOM kill come from `inspect` (State.ExitCode,
State.OOMKilled), never from the CLI's exit status; a container that never left "created"
could not run its command, and the CLI's last error line says why.

Every container gets the labels `shoal.managed=1`, `shoal.job-id=<job>` and
`shoal.attempt=<n>`, and a name `shoal-<job>-<n>-<random>`. The runtime only ever stops,
inspects or removes containers by the id its own `create` returned (kept in the handle, also
across agent restarts): a container the agent did not start is never touched.

Agent restarts: `start --attach` and the log writer run in sessions of their own, so the
container, its output and its log go on while no agent runs. A restarted agent re-attaches from
the handle: it waits for the old `start --attach` to end (pidfd), then until `inspect` no longer
says Running, and takes exit code and OOM kill from `inspect` as usual.

Host quirks handled here:
- nofile/nproc: podman's defaults (1048576) can exceed the hard limits of a sandboxed host
  ("error setting rlimit ... operation not permitted"); unless the job sets them, containers
  get the agent's own limits, which the host always allows. A job asking for more than the
  host's hard limit gets a CannotStart that says so.
- OCI runtime: podman may default to `crun`, which fails on some hosts (cgroup v1 hybrids) or
  is not installed; when a create fails naming crun and `runc` is installed, the runtime
  switches to `--runtime runc` for good (or use `shoal agent --oci-runtime runc`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import re
import resource
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

import psutil

from agent.runtime.base import AttemptHandle, AttemptSpec, CannotStart, ExitStatus
from agent.runtime.cgroups import AttemptCgroup, Cgroups
from agent.runtime.cgroups import detect as detect_cgroups
from agent.runtime.fence import CONTAINER, Target
from agent.runtime.output import LogLimits, Output, open_output
from agent.runtime.reattach import cgroup_fields, cgroup_of, process_alive, wait_gone, wait_writer
from shoal import log

_log = log.get("agent.runtime.container")

CONTAINER_RUNTIMES = ("podman", "docker")
LABEL_MANAGED = "shoal.managed"
LABEL_JOB = "shoal.job-id"
LABEL_ATTEMPT = "shoal.attempt"
# A CLI call (create, inspect, stop, rm) that takes longer than this is treated as failed.
CLI_TIMEOUT_SECONDS = 120.0
_POLL_SECONDS = 0.1
# Re-attached containers whose CLI is gone: how often `inspect` asks whether they still run.
_FOREIGN_POLL_SECONDS = 0.5


@functools.cache
def podman_info(binary: str) -> tuple[str, ...] | None:
    """(OCI runtime, cgroup manager, cgroups version) from `podman info`; None if it fails."""
    try:
        info = subprocess.run(
            [binary, "info", "--format", "{{.Host.OCIRuntime.Name}} {{.Host.CgroupManager}} {{.Host.CgroupsVersion}}"],
            capture_output=True, text=True, timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return tuple(info.stdout.split()) if info.returncode == 0 else None


@functools.cache
def oom_cgroups_for(name: str, binary: str) -> Cgroups | None:
    """Cgroups for the parent-cgroup OOM detection: podman, cgroupfs manager, cgroup v1 only."""
    if name != "podman":
        return None
    info = podman_info(binary)
    if info is None or info[1:] != ("cgroupfs", "v1"):
        return None
    cgroups = detect_cgroups()
    return cgroups if cgroups is not None and cgroups.version == 1 else None


def cli_works(name: str) -> bool:
    """Whether `name` (podman or docker) is installed and can run containers here."""
    binary = shutil.which(name)
    if binary is None:
        return False
    if name == "podman":
        return podman_info(binary) is not None
    if not os.environ.get("DOCKER_HOST") and not any(
        os.path.exists(sock) for sock in ("/var/run/docker.sock", "/run/docker.sock")
    ):
        return False  # no daemon to talk to (a bare CLI, e.g. in a podman-only host)
    try:
        version = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
        if "podman" in version.stdout.lower():
            return False  # podman-docker's shim: the agent uses podman itself
        probe = [binary, "version", "--format", "{{.Server.Version}}"]
        return subprocess.run(probe, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class ContainerCliRuntime:
    """Runs attempts as podman or docker containers through their CLI."""

    def __init__(
        self,
        name: str,
        *,
        binary: str | None = None,
        pull: str = "",
        oci_runtime: str = "",
        log_limits: LogLimits | None = None,
        oom_cgroups: Cgroups | None = None,
    ) -> None:
        """`pull`: "" (the CLI's default, missing), "never", "missing" or "always".

        `oom_cgroups`: cgroup v1 hierarchies the agent may create cgroups in, for podman with
        the cgroupfs manager, whose conmon does not see OOM kills on cgroup v1: each container
        then runs under a parent cgroup of the attempt (`--cgroup-parent`) holding the memory
        limit (the container's own limit is 1 MiB above it, so the parent's is hit first), and
        the OOM kill is read from the parent's counters. See `oom_cgroups_for`.
        """
        if name not in CONTAINER_RUNTIMES:
            raise ValueError(f"not a container runtime: {name!r}")
        self.name = name
        self.binary = binary or shutil.which(name) or name
        self.pull = pull
        self.oci_runtime = oci_runtime
        self.log_limits = log_limits or LogLimits()
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._outputs: dict[int, Output] = {}
        self._logs: dict[int, Path] = {}
        self.oom_cgroups = oom_cgroups
        self._parents: dict[int, AttemptCgroup] = {}

    # --- the contract --------------------------------------------------------------------------

    async def start(self, spec: AttemptSpec, log_path: Path) -> AttemptHandle:
        if not spec.image:
            raise CannotStart(f"the {self.name} runtime needs an image (the job has none)")
        _check_mounts(spec)
        name = container_name(spec.job_id, spec.attempt)
        parent = None
        if self.oom_cgroups is not None and spec.memory_mib > 0:
            try:
                parent = self.oom_cgroups.create(name, memory_mib=spec.memory_mib, vcpus=0)
            except OSError as err:
                _log.warning("cannot create a parent cgroup; OOM kills may go unreported", error=str(err))
        try:
            container_id = await self._create(spec, name, parent)
        except BaseException:
            if parent is not None:
                parent.remove()
            raise
        try:
            output = await open_output(log_path, self.log_limits)
        except OSError as err:
            await self._remove(container_id)
            if parent is not None:
                parent.remove()
            raise CannotStart(f"cannot hand the attempt's output to the log writer: {err}") from err
        try:
            # Before it starts: an agent killed from here on leaves a container the fence stops.
            await output.watch(self._target(container_id))
        except OSError as err:
            output.close_job_ends()
            await self._remove(container_id)
            if parent is not None:
                parent.remove()
            raise CannotStart(f"cannot register the attempt with the host's fence (the log writer): {err}") from err
        try:
            popen = subprocess.Popen(  # noqa: ASYNC220 - fork+exec is quick
                [self.binary, "start", "--attach", container_id],
                stdin=subprocess.DEVNULL,
                stdout=output.stdout,
                stderr=output.stderr,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as err:
            await self._remove(container_id)
            raise CannotStart(f"{self.name} start: {err}") from err
        finally:
            output.close_job_ends()
        try:
            start_time = psutil.Process(popen.pid).create_time()
        except psutil.Error:
            start_time = time.time()
        self._children[popen.pid] = popen
        self._outputs[popen.pid] = output
        self._logs[popen.pid] = log_path
        if parent is not None:
            self._parents[popen.pid] = parent
        try:
            await output.watch(self._target(container_id, cli_pid=popen.pid))
        except OSError as err:  # the fence still knows the container (it stops it through the CLI)
            _log.warning("cannot tell the fence the container's CLI", container=container_id, error=str(err))
        return AttemptHandle(runtime=self.name, pid=popen.pid, pgid=popen.pid, start_time=start_time,
                             container_id=container_id, **output.handle_fields, **cgroup_fields(parent))

    async def wait(self, handle: AttemptHandle) -> ExitStatus:
        popen = self._children.get(handle.pid)
        parent = self._parents.get(handle.pid)
        memory_hit = False
        if popen is not None:
            told_fence = False
            while popen.poll() is None:  # noqa: ASYNC110 - the CLI is our child; cheap poll
                # The container's own cgroup (inside the parent) is removed right after it
                # exits, so its "limit reached" counters are sampled while it runs.
                if parent is not None and not memory_hit:
                    memory_hit = _container_hit_memory(parent)
                if not told_fence:
                    told_fence = await self._tell_fence_init(handle)
                await asyncio.sleep(_POLL_SECONDS)
            output = self._outputs.get(handle.pid)
            if output is not None:
                await output.wait_writer()
        else:
            # Re-attached (a container of an earlier agent): its `start --attach` outlived that
            # agent (own session) and normally ends with the container; then make sure.
            parent = cgroup_of(handle)
            if parent is None:
                await wait_gone(handle.pid, handle.start_time)
            while _cli_alive(handle):  # noqa: ASYNC110 - sampling the OOM counters, as above
                if parent is not None and not memory_hit:
                    memory_hit = _container_hit_memory(parent)
                await asyncio.sleep(_POLL_SECONDS)
            while True:
                state = await self._state(handle.container_id)
                if state is None or not state.get("Running"):
                    break
                await asyncio.sleep(_FOREIGN_POLL_SECONDS)
            await wait_writer(handle)
        state = await self._state(handle.container_id)
        if state is None:
            return ExitStatus(exit_code=None)
        if state.get("Status") == "created" or not _started(state):
            return ExitStatus(exit_code=None, cannot_start=self._start_error(handle, state))
        exit_code = int(state.get("ExitCode", 0))
        signum = exit_code - 128 if exit_code > 128 else None
        oom = bool(state.get("OOMKilled")) or (
            parent is not None and (parent.killed_for_memory(signum) or memory_hit)
        )
        return ExitStatus(exit_code=exit_code, signal=signum, oom_killed=oom)

    async def kill(self, handle: AttemptHandle, grace: float) -> None:
        if not self.is_alive(handle):
            return
        seconds = max(int(grace + 0.999), 0)
        await self._cli("stop", "--time", str(seconds), handle.container_id,
                        timeout=seconds + CLI_TIMEOUT_SECONDS)
        # A container still starting when `stop` ran may come up right after: force it until
        # neither it nor our `start --attach` runs any more.
        deadline = time.monotonic() + CLI_TIMEOUT_SECONDS
        while self.is_alive(handle) and time.monotonic() < deadline:
            await self._cli("kill", handle.container_id)
            await asyncio.sleep(_POLL_SECONDS)

    async def cleanup(self, handle: AttemptHandle) -> None:
        popen = self._children.pop(handle.pid, None)
        if popen is not None and popen.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(handle.pgid, signal.SIGKILL)
            popen.wait()
        elif popen is None and _cli_alive(handle):  # re-attached: the CLI of an earlier agent
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(handle.pgid, signal.SIGKILL)
        output = self._outputs.pop(handle.pid, None)
        if output is not None:
            await output.wait_writer()
        elif popen is None:
            await wait_writer(handle)
        self._logs.pop(handle.pid, None)
        await self._remove(handle.container_id)
        parent = self._parents.pop(handle.pid, None) or (cgroup_of(handle) if popen is None else None)
        if parent is not None:
            parent.remove()

    def is_alive(self, handle: AttemptHandle) -> bool:
        popen = self._children.get(handle.pid)
        if popen is not None:
            if popen.poll() is None:
                return True
        elif _cli_alive(handle):  # the `start --attach` of an earlier agent: still starting?
            return True
        return bool(handle.container_id) and self._container_running(handle.container_id)

    # --- the fence ---------------------------------------------------------------------------

    def _target(self, container_id: str, *, cli_pid: int = 0, init_pid: int = 0, init_start: float = 0.0) -> Target:
        return Target(kind=CONTAINER, pid=init_pid, pid_start=init_start, pgid=cli_pid, binary=self.binary,
                      container_id=container_id)

    async def _tell_fence_init(self, handle: AttemptHandle) -> bool:
        """Once the container runs: give the fence its init's host pid, so that a dead agent's
        container is stopped by a signal (at once) rather than through the CLI (slow under
        load). True once done (or not to be done: the container is not running)."""
        output = self._outputs.get(handle.pid)
        state = await self._state(handle.container_id)
        if output is None or state is None:
            return True
        if state.get("Status") == "created":
            return False  # still starting: ask again
        pid = int(state.get("Pid") or 0)
        if not state.get("Running") or pid <= 0:
            return True
        try:
            start = psutil.Process(pid).create_time()
            await output.watch(self._target(handle.container_id, cli_pid=handle.pid, init_pid=pid, init_start=start))
        except (psutil.Error, OSError) as err:
            _log.warning("cannot tell the fence the container's pid", container=handle.container_id, error=str(err))
        return True

    # --- CLI calls ---------------------------------------------------------------------------

    def create_args(self, spec: AttemptSpec, name: str, parent: AttemptCgroup | None = None) -> list[str]:
        """The `create` command line for an attempt (without the binary)."""
        args = ["create", "--name", name,
                "--label", f"{LABEL_MANAGED}=1",
                "--label", f"{LABEL_JOB}={spec.job_id}",
                "--label", f"{LABEL_ATTEMPT}={spec.attempt}"]  # fmt: skip
        if self.name == "podman" and self.oci_runtime:
            args += ["--runtime", self.oci_runtime]
        if self.pull:
            args += ["--pull", self.pull]
        if spec.vcpus > 0:
            args += ["--cpus", f"{spec.vcpus:g}"]
        if parent is not None and self.oom_cgroups is not None:
            args += ["--cgroup-parent", "/" + str(parent.memory.relative_to(self.oom_cgroups.mount))]
        if spec.memory_mib > 0:
            # Swap = memory: exceeding the limit is an OOM kill, not a slow swap-out.
            memory = spec.memory_mib + (1 if parent is not None else 0)
            args += ["--memory", f"{memory}m", "--memory-swap", f"{memory}m"]
        environment = dict(spec.environment)
        if spec.gpu_ids:
            # Inside the container only its devices exist, numbered from 0: CUDA must count
            # them so. NVIDIA_VISIBLE_DEVICES keeps the host's ids (what --gpus asks for too).
            environment["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(len(spec.gpu_ids)))
        for key, value in environment.items():
            args += ["--env", f"{key}={value}"]
        if spec.gpu_ids:
            if self.name == "podman":  # CDI names, as `nvidia-ctk cdi generate` writes them
                for gpu_id in spec.gpu_ids:
                    args += ["--device", f"nvidia.com/gpu={gpu_id}"]
            else:  # docker: the quotes keep the comma list one value of --gpus
                args += ["--gpus", '"device=' + ",".join(spec.gpu_ids) + '"']
        if spec.working_dir:
            args += ["--workdir", spec.working_dir]
        if spec.user:
            args += ["--user", spec.user]
        for mount in spec.mounts:
            args += ["--volume", f"{mount.source_path}:{mount.container_path}" + (":ro" if mount.read_only else "")]
        if spec.privileged:
            args.append("--privileged")
        if spec.readonly_root_filesystem:
            args.append("--read-only")
        if spec.shared_memory_size_mib:
            args += ["--shm-size", f"{spec.shared_memory_size_mib}m"]
        ulimits = {u.name: (u.soft, u.hard or u.soft) for u in spec.ulimits}
        for limit_name, limit in host_default_ulimits().items():
            ulimits.setdefault(limit_name, limit)
        for limit_name, (soft, hard) in ulimits.items():
            args += ["--ulimit", f"{limit_name}={_rlim(soft)}:{_rlim(hard)}"]
        args.append(spec.image)
        args += list(spec.command)
        return args

    async def _create(self, spec: AttemptSpec, name: str, parent: AttemptCgroup | None) -> str:
        for _ in range(2):
            code, out, err = await self._cli(*self.create_args(spec, name, parent))
            if code == 0 and out.strip():
                return out.strip().splitlines()[-1]
            message = _cli_error(err) or f"{self.name} create exited {code}"
            if (self.name == "podman" and not self.oci_runtime and "crun" in message
                    and shutil.which("runc")):
                _log.warning("podman's default OCI runtime crun fails here; using runc", error=message)
                self.oci_runtime = "runc"
                continue
            raise CannotStart(_explain(message, spec))
        raise CannotStart(_explain(message, spec))

    async def _state(self, container_id: str) -> dict | None:
        code, out, err = await self._cli("inspect", "--type", "container", "--format", "{{json .State}}",
                                         container_id)
        if code != 0:
            _log.warning("cannot inspect container", container=container_id, error=_cli_error(err))
            return None
        try:
            state = json.loads(out)
        except ValueError:
            return None
        return state if isinstance(state, dict) else None

    def _container_running(self, container_id: str) -> bool:
        try:
            done = subprocess.run(
                [self.binary, "inspect", "--type", "container", "--format", "{{.State.Running}}", container_id],
                capture_output=True, text=True, timeout=CLI_TIMEOUT_SECONDS,
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        return done.returncode == 0 and done.stdout.strip() == "true"

    async def _remove(self, container_id: str) -> None:
        if container_id:
            code, _, err = await self._cli("rm", "--force", container_id)
            if code != 0 and "no such container" not in err.lower():
                _log.warning("cannot remove container", container=container_id, error=_cli_error(err))

    async def _cli(self, *args: str, timeout: float = CLI_TIMEOUT_SECONDS) -> tuple[int, str, str]:
        try:
            process = await asyncio.create_subprocess_exec(
                self.binary, *args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        except OSError as err:
            return 127, "", f"Error: {self.binary}: {err}"
        try:
            async with asyncio.timeout(timeout):
                out, err = await process.communicate()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            return 124, "", f"Error: {self.name} {args[0]} did not answer within {timeout:g}s"
        return process.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")

    def _start_error(self, handle: AttemptHandle, state: dict) -> str:
        if state.get("Error"):
            return _explain_start(str(state["Error"]))
        log_path = self._logs.get(handle.pid)
        if log_path is not None:
            for line in reversed(_tail(log_path)):
                text = line.split(" ", 3)[-1] if line.count(" ") >= 3 else line
                if "Error" in text or "error" in text:
                    return _explain_start(text)
        return f"the container never started (state {state.get('Status', '?')})"


_PROC_LIMIT_NAMES = {"nofile": "Max open files", "nproc": "Max processes"}


def host_default_ulimits() -> dict[str, tuple[int, int]]:
    """nofile/nproc every container gets unless the job sets them: limits the host allows.

    The lowest of the agent's own limits and those of pid 1 (the OCI runtime may run with
    pid 1's, e.g. under a sandbox's init), nproc also at most kernel.pid_max (more is
    meaningless, and some sandboxes refuse it), so that setting them is not refused.
    """
    pid1 = _proc_limits(Path("/proc/1/limits"))
    try:
        pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    except (OSError, ValueError):
        pid_max = 0
    if pid_max > 0:
        pid1["nproc"] = (*pid1.get("nproc", ()), pid_max)
    result = {}
    for name, rlimit in (("nofile", resource.RLIMIT_NOFILE), ("nproc", resource.RLIMIT_NPROC)):
        soft, hard = resource.getrlimit(rlimit)
        candidates = [v for v in (soft, hard, *pid1.get(name, ())) if v != resource.RLIM_INFINITY and v > 0]
        if candidates:
            value = min(candidates)
            result[name] = (value, value)
    return result


def _proc_limits(path: Path) -> dict[str, tuple[int, ...]]:
    try:
        text = path.read_text()
    except OSError:
        return {}
    found = {}
    for name, label in _PROC_LIMIT_NAMES.items():
        for line in text.splitlines():
            if line.startswith(label):
                values = line[len(label):].split()[:2]
                found[name] = tuple(int(v) for v in values if v.isdigit())
    return found


def _check_mounts(spec: AttemptSpec) -> None:
    for mount in spec.mounts:
        if not os.path.exists(mount.source_path):
            raise CannotStart(f"mount source {mount.source_path!r} does not exist on this node")


def container_name(job_id: str, attempt: int) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "-", job_id)[:100]
    return f"shoal-{safe}-{attempt}-{secrets.token_hex(3)}"


def _container_hit_memory(parent: AttemptCgroup) -> bool:
    """Whether the container's own cgroup (inside the attempt's parent) counted an OOM kill."""
    return any(AttemptCgroup(1, child, None).oom_killed() for child in parent.memory.glob("libpod-*"))


def _cli_alive(handle: AttemptHandle) -> bool:
    return process_alive(handle.pid, handle.start_time)


def _started(state: dict) -> bool:
    started = str(state.get("StartedAt", ""))
    return bool(started) and not started.startswith("0001-01-01")


def _rlim(value: int) -> str:
    return "-1" if value >= 2**63 - 1 or value == resource.RLIM_INFINITY else str(value)


def _cli_error(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error")]
    line = (errors or lines or [""])[-1]
    return re.sub(r"^Error(: |response from daemon: )", "", line)


def _explain(message: str, spec: AttemptSpec) -> str:
    lower = message.lower()
    if "rlimit" in lower and "operation not permitted" in lower:
        return (f"{message} (a ulimit is above this host's hard limit; the job asked for "
                f"{', '.join(f'{u.name}={u.soft}:{u.hard}' for u in spec.ulimits) or 'none'})")
    if "image not known" in lower or "pull" in lower or "manifest unknown" in lower or "no such image" in lower:
        return f"image {spec.image!r} is not available on this node: {message}"
    return message


def _explain_start(message: str) -> str:
    marker = "unable to start container process: "
    if marker in message:
        message = message.split(marker, 1)[1]
    return _explain(re.sub(r"^Error: ", "", message), AttemptSpec(job_id="", attempt=0, command=()))


def _tail(path: Path, size: int = 8192) -> list[str]:
    try:
        with open(path, "rb") as source:
            source.seek(max(source.seek(0, os.SEEK_END) - size, 0))
            return source.read().decode(errors="replace").splitlines()
    except OSError:
        return []
