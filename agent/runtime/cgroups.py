"""Memory and CPU limits for the process runtime through cgroups (v2, or v1), where allowed.

One cgroup per attempt, created under the agent's own cgroup (`.../shoal-<job>-<attempt>`):

- cgroup v2 (the unified hierarchy has the memory controller for the agent's cgroup):
  `memory.max`, `memory.swap.max` = 0, `cpu.max`; OOM kills counted in `memory.events`
  (`oom_kill N`). The parent must delegate the controllers (`cgroup.subtree_control`); where it
  cannot (the agent's cgroup holds processes and is not the root), v2 is unusable.
- cgroup v1: `memory.limit_in_bytes` (+ `memory.memsw.limit_in_bytes` when swap accounting is
  on), `cpu.cfs_quota_us`; OOM kills counted in `memory.oom_control` (`oom_kill N`, Linux >=
  4.13) or, on older kernels, seen as `under_oom`/`memory.failcnt` plus a SIGKILL.

Where neither works (no permission, no controller), `detect()` returns None and the process
runtime falls back to RLIMIT_AS (see agent/runtime/process.py for that caveat).
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from shoal import log

_log = log.get("agent.runtime.cgroups")

ROOT = Path("/sys/fs/cgroup")
CFS_PERIOD_US = 100_000


@dataclass(frozen=True)
class AttemptCgroup:
    """The cgroup directories of one attempt (v2: one; v1: memory and cpu)."""

    version: int
    memory: Path
    cpu: Path | None

    @property
    def procs_file(self) -> Path:
        """Writing a pid (or 0 for oneself) here moves it into the attempt's memory cgroup."""
        return self.memory / "cgroup.procs"

    def add(self, pid: int) -> None:
        """Move process `pid` into the attempt's cgroup(s)."""
        _write_str(f"{self.memory}/cgroup.procs", str(pid))
        if self.cpu is not None and self.cpu != self.memory:
            _write_str(f"{self.cpu}/cgroup.procs", str(pid))

    def oom_killed(self) -> bool:
        """Whether the kernel OOM-killed a process of this cgroup."""
        if self.version == 2:
            return _counter(self.memory / "memory.events", "oom_kill") > 0
        control = _read_str(f"{self.memory}/memory.oom_control")
        if "oom_kill " in control:
            return _count(control, "oom_kill") > 0
        return _count(control, "under_oom") > 0 or (
            _read_str(f"{self.memory}/memory.failcnt").strip() not in ("", "0")
        )

    def hit_limit(self) -> bool:
        """Whether usage ever reached the memory limit (allocations failed or reclaimed)."""
        if self.version == 2:
            return _counter(self.memory / "memory.events", "max") > 0
        if any(_read(self.memory / name).strip() not in ("", "0")
               for name in ("memory.failcnt", "memory.memsw.failcnt")):
            return True
        # A container's own cgroup (inside this one) hits its limit first and is gone once it
        # exits; this cgroup's peak usage, which counts it, still says it got there.
        limit = _read(self.memory / "memory.limit_in_bytes").strip()
        peak = _read(self.memory / "memory.max_usage_in_bytes").strip()
        if limit.isdigit() and peak.isdigit() and int(limit) < 1 << 60:
            return int(peak) >= int(limit) - _PEAK_MARGIN
        return False

    def killed_for_memory(self, exit_signal: int | None) -> bool:
        """An OOM kill: counted by the kernel, or a SIGKILL after the limit was reached (some
        kernels and sandboxes do not count OOM kills in cgroup v1)."""
        return self.oom_killed() or (exit_signal == 9 and self.hit_limit())

    def remove(self) -> None:
        """Remove the attempt's cgroups (and empty ones a container runtime left inside)."""
        for directory in {self.memory, *([self.cpu] if self.cpu else [])}:
            _remove_tree(directory)


class Cgroups:
    """Creates per-attempt cgroups under the agent's own. Use `detect()` to get one."""

    def __init__(self, version: int, memory_parent: Path, cpu_parent: Path | None, mount: Path | None = None) -> None:
        self.version = version
        self.memory_parent = memory_parent
        self.cpu_parent = cpu_parent
        self.mount = mount or memory_parent
        """Where the memory hierarchy is mounted (cgroup paths are relative to it)."""
        # Optional control files (swap limits, cpu.max): name -> usable, learnt on first use.
        self._files: dict[str, bool] = {}

    def describe(self) -> str:
        return f"cgroup v{self.version} under {self.memory_parent}"

    def create(self, name: str, *, memory_mib: int, vcpus: float) -> AttemptCgroup:
        """Make the attempt's cgroup with its limits; OSError if the kernel refuses.

        On the path of every attempt start: plain `os` calls on string paths (pathlib's
        per-call overhead was most of its cost), a file known to be absent is not tried again,
        and a new v1 cpu cgroup keeps the kernel's default period (100 ms, CFS_PERIOD_US) unwritten."""
        memory = self.memory_parent / name
        memory_dir = str(memory)
        _mkdir(memory_dir)
        cpu: Path | None = None
        try:
            if self.version == 2:
                cpu = memory
                if memory_mib > 0:
                    _write_str(memory_dir + "/memory.max", str(memory_mib * 1024 * 1024))
                    self._try_write(memory_dir, "memory.swap.max", "0")
                if vcpus > 0 and self._has(memory_dir, "cpu.max"):
                    _write_str(memory_dir + "/cpu.max", f"{int(vcpus * CFS_PERIOD_US)} {CFS_PERIOD_US}")
            else:
                if memory_mib > 0:
                    limit = str(memory_mib * 1024 * 1024)
                    _write_str(memory_dir + "/memory.limit_in_bytes", limit)
                    self._try_write(memory_dir, "memory.memsw.limit_in_bytes", limit)  # swap accounting only
                if vcpus > 0 and self.cpu_parent is not None:
                    cpu = self.cpu_parent / name
                    cpu_dir = str(cpu)
                    _mkdir(cpu_dir)
                    # A new cpu cgroup starts with the kernel's default period, CFS_PERIOD_US.
                    _write_str(cpu_dir + "/cpu.cfs_quota_us", str(max(int(vcpus * CFS_PERIOD_US), 1000)))
        except OSError:
            AttemptCgroup(self.version, memory, cpu).remove()
            raise
        return AttemptCgroup(self.version, memory, cpu)

    def _has(self, directory: str, name: str) -> bool:
        """Whether cgroups here have control file `name` (asked of the first one, then cached)."""
        known = self._files.get(name)
        if known is None:
            known = self._files[name] = os.path.exists(f"{directory}/{name}")
        return known

    def _try_write(self, directory: str, name: str, value: str) -> None:
        """Write an optional control file; one that does not exist or refuses is not tried again."""
        if self._files.get(name) is False:
            return
        try:
            _write_str(f"{directory}/{name}", value)
        except OSError:
            self._files[name] = False
        else:
            self._files[name] = True


def detect(proc_cgroup: Path = Path("/proc/self/cgroup"), root: Path = ROOT) -> Cgroups | None:
    """Cgroups the agent can create children in (memory limit required), or None."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    v1: dict[str, str] = {}
    v2_path = None
    for line in lines:
        hierarchy, controllers, path = line.split(":", 2)
        if hierarchy == "0" and not controllers:
            v2_path = path
        for controller in controllers.split(","):
            if controller:
                v1[controller] = path
    if "memory" in v1:
        parent = _v1_dir(root, "memory", v1["memory"])
        cpu_parent = _v1_dir(root, "cpu", v1["cpu"]) if "cpu" in v1 else None
        if parent is not None and _can_create(parent):
            if cpu_parent is not None and not _can_create(cpu_parent):
                cpu_parent = None
            return Cgroups(1, parent, cpu_parent, mount=_v1_mount(root, "memory"))
        return None
    if v2_path is not None:
        base = root / v2_path.lstrip("/")
        if not (root / "cgroup.controllers").exists():
            base = root / "unified" / v2_path.lstrip("/")
        controllers = _read(base / "cgroup.controllers").split()
        if "memory" not in controllers:
            return None
        enabled = _read(base / "cgroup.subtree_control").split()
        try:
            for controller in ("memory", "cpu"):
                if controller in controllers and controller not in enabled:
                    _write(base / "cgroup.subtree_control", f"+{controller}")
        except OSError:
            return None  # "no internal processes": the agent's cgroup cannot delegate
        if _can_create(base):
            return Cgroups(2, base, base)
    return None


def _v1_dir(root: Path, controller: str, path: str) -> Path | None:
    for mount in (root / controller, *sorted(root.glob(f"*{controller}*"))):
        if mount.is_dir() and controller in re.split(r"[,]", mount.name):
            directory = mount / path.lstrip("/")
            if directory.is_dir():
                return directory
            # Inside a container the agent's path may not be visible: its cgroup is the root.
            return mount if (mount / "cgroup.procs").exists() else None
    return None


def _v1_mount(root: Path, controller: str) -> Path | None:
    for mount in (root / controller, *sorted(root.glob(f"*{controller}*"))):
        if mount.is_dir() and controller in mount.name.split(","):
            return mount
    return None


def _remove_tree(directory: Path | str) -> None:
    """rmdir a cgroup; only when that fails (child cgroups a container runtime left inside),
    remove the children first. cgroupfs lets an rmdir through its control files."""
    path = str(directory)
    try:
        os.rmdir(path)
        return
    except FileNotFoundError:
        return
    except OSError:
        pass
    with contextlib.suppress(OSError), os.scandir(path) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                _remove_tree(entry.path)
    with contextlib.suppress(OSError):
        os.rmdir(path)


def _mkdir(path: str) -> None:
    try:
        os.mkdir(path)
    except FileExistsError:
        pass


def _write_str(path: str, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _read_str(path: str) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return ""
    try:
        return os.read(fd, 65536).decode(errors="replace")
    except OSError:
        return ""
    finally:
        os.close(fd)


def _can_create(parent: Path) -> bool:
    probe = parent / f"shoal-probe-{os.getpid()}"
    try:
        probe.mkdir(exist_ok=True)
        probe.rmdir()
        return True
    except OSError:
        return False


# Peak usage this close to the limit counts as having reached it (the kernel reclaims and
# kills just before the exact byte count).
_PEAK_MARGIN = 512 * 1024


def _read(path: Path) -> str:
    return _read_str(str(path))


def _write(path: Path, value: str) -> None:
    _write_str(str(path), value)


def _counter(path: Path, name: str) -> int:
    return _count(_read(path), name)


def _count(text: str, name: str) -> int:
    """The value of counter `name` in a cgroup's "key value" lines (0 if absent)."""
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == name and value.strip().isdigit():
            return int(value)
    return 0


def attempt_cgroup_name(job_id: str, attempt: int, pid_hint: int = 0) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "-", job_id)
    return f"shoal-{safe}-{attempt}" + (f"-{pid_hint}" if pid_hint else "")
