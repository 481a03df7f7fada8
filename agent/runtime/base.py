"""The runtime seam: how the agent runs one job attempt, whatever runs it.

A runtime turns an `AttemptSpec` into something running (a process group today; a podman or
docker container later) and hands back an `AttemptHandle`. The handle is a small, serializable
record: the agent writes it to its state file so that a restarted agent finds the attempt again
and re-attaches to it (keeps supervising it and reports how it ended) through the same handle.

Contract every runtime keeps (tests/contract/test_runtimes.py checks it, for every runtime):

- `start` returns once the attempt is running, or raises `CannotStart` with words a user can act
  on ("exec: 'nosuch': executable file not found"). Nothing keeps running after `CannotStart`.
  A runtime that learns only after starting that the command could not run (a container whose
  command is missing) reports it from `wait` instead, as `ExitStatus.cannot_start`.
- stdout and stderr of the attempt are appended to `log_path` as timestamped records, one per
  line, through the agent's log writer process (`agent.runtime.logwriter`: format and rotation;
  `agent.runtime.output`); when `wait` returns, everything the attempt printed is in the log.
- Resources: `memory_mib` is a hard limit where the runtime can enforce it (a container, or a
  cgroup for the process runtime); an attempt killed for exceeding it ends with
  `ExitStatus.oom_killed`. `vcpus` is a CPU quota where it can be enforced.
- `wait` returns the exit status of the attempt's main process, exactly (a signal N is reported
  as exit code 128+N, as shells and container runtimes do). It may be awaited more than once.
- `kill(handle, grace)` asks everything the attempt started to stop (SIGTERM to the whole
  process group, or `docker stop`), waits up to `grace` seconds, then forces it (SIGKILL). It
  returns once nothing of the attempt runs any more. A grace of 0 forces at once. Killing an
  attempt that already ended is a no-op.
- `cleanup` is called once after `wait` returned: it removes whatever the attempt left behind
  (orphaned processes of its group, a stopped container). It never touches the log file.
- `is_alive` tells, from a handle alone (possibly written by an earlier agent process), whether
  anything of the attempt still runs.
- Re-attaching: `wait`, `kill`, `cleanup` and `is_alive` also work on a handle written by an
  earlier agent process (read back with `AttemptHandle.from_dict`), whether the attempt still
  runs or ended while no agent was there. `wait` then returns the attempt's real exit status
  where the runtime kept it (the process runtime's exit file, a container's `inspect`), else
  `ExitStatus(exit_code=None)`. Nothing of an attempt depends on the agent process staying
  alive: job, log writer and (for containers) the CLI run in sessions of their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from shoal.errors import ShoalError
from shoal.v1 import types_pb2


class CannotStart(ShoalError):
    """The attempt could not be started (command not found, permission denied, bad image).

    `message` is shown to users after "CannotStartContainerError: ".
    """


@dataclass(frozen=True)
class AttemptSpec:
    """Everything a runtime needs to start one attempt."""

    job_id: str
    """Job id (may contain ':'), for naming and labels only."""
    attempt: int
    """Attempt number, 1 for the first."""
    command: tuple[str, ...]
    """argv of the attempt; never passed through a shell."""
    environment: Mapping[str, str] = field(default_factory=dict)
    """The attempt's environment as given by the controller (SHOAL_* / AWS_BATCH_* included)."""
    work_dir: Path | None = None
    """Working directory (created by the caller); None = the runtime's choice."""
    image: str = ""
    """Container image; empty for the process runtime."""
    vcpus: float = 0.0
    """Requested logical CPUs; a CPU quota where the runtime can enforce one. 0 = no limit."""
    memory_mib: int = 0
    """Requested memory in MiB; a hard limit where the runtime can enforce one. 0 = no limit."""
    gpus: int = 0
    """Requested GPUs."""
    gpu_ids: tuple[str, ...] = ()
    """The node's GPU devices the scheduler assigned (container runtimes pass them through)."""
    working_dir: str = ""
    """The job's own working directory ("" = the image's, or `work_dir` for processes)."""
    user: str = ""
    """"name", "uid" or "uid:gid"; "" = the image's (containers) / the agent's (processes)."""
    mounts: tuple[Mount, ...] = ()
    """Host paths made visible to the attempt (the process runtime only checks they exist)."""
    privileged: bool = False
    readonly_root_filesystem: bool = False
    ulimits: tuple[Ulimit, ...] = ()
    """Resource limits; containers get the agent's own nofile/nproc unless set here."""
    shared_memory_size_mib: int = 0
    """Size of /dev/shm for containers; 0 = the runtime's default."""
    runtime: str = ""
    """The runtime the job requires ("" = the node's choice: a container runtime for an image)."""


@dataclass(frozen=True)
class Mount:
    source_path: str
    container_path: str
    read_only: bool = False


@dataclass(frozen=True)
class Ulimit:
    name: str
    soft: int
    hard: int


def gpu_environment(gpu_ids: tuple[str, ...], node_has_gpus: bool) -> dict[str, str]:
    """CUDA_VISIBLE_DEVICES / NVIDIA_VISIBLE_DEVICES of an attempt: its devices only. On a
    node with GPUs an attempt that got none sees none (CUDA's "" and the NVIDIA runtime's
    "void"), so a job cannot use a device the scheduler gave to another one."""
    if gpu_ids:
        devices = ",".join(gpu_ids)
        return {"CUDA_VISIBLE_DEVICES": devices, "NVIDIA_VISIBLE_DEVICES": devices}
    if node_has_gpus:
        return {"CUDA_VISIBLE_DEVICES": "", "NVIDIA_VISIBLE_DEVICES": "void"}
    return {}


def spec_from_container(
    job_id: str,
    attempt: int,
    container: types_pb2.ContainerProperties,
    *,
    gpu_ids: tuple[str, ...] = (),
    node_has_gpus: bool = False,
) -> AttemptSpec:
    """The AttemptSpec for a StartAttempt's ContainerProperties (every field carried over),
    with the GPU devices assigned to the attempt."""
    environment = {kv.name: kv.value for kv in container.environment}
    environment.update(gpu_environment(gpu_ids, node_has_gpus))
    return AttemptSpec(
        job_id=job_id,
        attempt=attempt,
        command=tuple(container.command),
        environment=environment,
        image=container.image,
        vcpus=container.resources.vcpus,
        memory_mib=container.resources.memory_mib,
        gpus=container.resources.gpus,
        gpu_ids=gpu_ids,
        working_dir=container.working_dir,
        user=container.user,
        mounts=tuple(Mount(m.source_path, m.container_path or m.source_path, m.read_only)
                     for m in container.mounts),
        privileged=container.privileged,
        readonly_root_filesystem=container.readonly_root_filesystem,
        ulimits=tuple(Ulimit(u.name, u.soft_limit, u.hard_limit) for u in container.ulimits),
        shared_memory_size_mib=container.shared_memory_size_mib,
        runtime=container.runtime,
    )


@dataclass(frozen=True)
class AttemptHandle:
    """Enough to find a running attempt again, from this or a later agent process.

    Serializable with `to_dict` / `from_dict` (plain JSON types only).
    """

    runtime: str
    """Name of the runtime that started it ("process", "podman", "docker")."""
    pid: int
    """Pid of the attempt's main process (for containers: of the CLI or conmon, if known)."""
    pgid: int
    """Process group the attempt runs in (its own session); 0 if the runtime has none."""
    start_time: float
    """Creation time of `pid` in seconds since the epoch (psutil's create_time): tells a
    recycled pid from ours."""
    container_id: str = ""
    """Container id for container runtimes; empty for processes."""
    exit_file: str = ""
    """Process runtime: where the attempt's gate writes its exit status (see process.py)."""
    writer_pid: int = 0
    """Pid of the log writer process writing the attempt's log (0 = unknown), so that a later
    agent can wait until the log is complete. One writer serves all attempts of an agent; handles
    of older agents name a writer of the attempt's own (without `writer_done_file`)."""
    writer_start_time: float = 0.0
    """Creation time of `writer_pid` (as `start_time`)."""
    writer_done_file: str = ""
    """Created by the writer once the attempt's output is completely in its log; "" = a writer
    of the attempt's own, which exits then (handles of older agents)."""
    cgroup_version: int = 0
    """Cgroup of the attempt (for a container: its parent cgroup), 0 = none: needed to tell an
    OOM kill and to remove the cgroup after a re-attach."""
    cgroup_memory: str = ""
    cgroup_cpu: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AttemptHandle:
        return cls(
            runtime=str(data["runtime"]),
            pid=int(data["pid"]),
            pgid=int(data["pgid"]),
            start_time=float(data["start_time"]),
            container_id=str(data.get("container_id", "")),
            exit_file=str(data.get("exit_file", "")),
            writer_pid=int(data.get("writer_pid", 0)),
            writer_start_time=float(data.get("writer_start_time", 0.0)),
            writer_done_file=str(data.get("writer_done_file", "")),
            cgroup_version=int(data.get("cgroup_version", 0)),
            cgroup_memory=str(data.get("cgroup_memory", "")),
            cgroup_cpu=str(data.get("cgroup_cpu", "")),
        )


@dataclass(frozen=True)
class ExitStatus:
    """How an attempt's main process ended."""

    exit_code: int | None
    """Exit code; 128+N when killed by signal N; None when unknown (e.g. not our child)."""
    signal: int | None = None
    """The signal that killed it, if any."""
    oom_killed: bool = False
    """True when the runtime knows the kernel's OOM killer ended it (its memory limit)."""
    cannot_start: str = ""
    """Set when the command never ran (found out only after `start`): why, for users."""


@runtime_checkable
class Runtime(Protocol):
    """Runs job attempts. See the module docstring for the contract."""

    name: str
    """"process", "podman" or "docker": what the agent registers and jobs may ask for."""

    async def start(self, spec: AttemptSpec, log_path: Path) -> AttemptHandle:
        """Start the attempt; raise `CannotStart` if it cannot run at all."""
        ...

    async def wait(self, handle: AttemptHandle) -> ExitStatus:
        """Wait until the attempt's main process has ended; its exit status."""
        ...

    async def kill(self, handle: AttemptHandle, grace: float) -> None:
        """Stop the whole attempt: polite signal, `grace` seconds, then force."""
        ...

    async def cleanup(self, handle: AttemptHandle) -> None:
        """After `wait`: remove leftovers (orphans of the group, a stopped container)."""
        ...

    def is_alive(self, handle: AttemptHandle) -> bool:
        """Whether anything of the attempt still runs (works on handles of earlier agents)."""
        ...
