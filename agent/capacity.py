"""What this host offers to jobs: measured with psutil, minus a reserve for the host itself."""

from __future__ import annotations

import shutil
import socket
import subprocess
from dataclasses import dataclass

import psutil

from shoal.errors import InvalidArgument

MIB = 1024 * 1024


@dataclass(frozen=True)
class Capacity:
    """Resources offered to jobs."""

    vcpus: float
    """Logical CPUs."""
    memory_mib: int
    """Memory in MiB."""
    gpus: int = 0
    """Whole GPU devices."""
    gpu_ids: tuple[str, ...] = ()
    """Their device ids (as CUDA_VISIBLE_DEVICES and the container runtimes name them)."""


def measure_host(gpus: str = "auto") -> Capacity:
    """Everything the host has: logical CPUs, total memory and the GPUs of `--gpus`."""
    gpu_ids = detect_gpus() if gpus == "auto" else parse_gpus(gpus)
    return Capacity(
        vcpus=float(psutil.cpu_count(logical=True) or 1),
        memory_mib=psutil.virtual_memory().total // MIB,
        gpus=len(gpu_ids),
        gpu_ids=gpu_ids,
    )


NVIDIA_SMI_QUERY = ("--query-gpu=index,uuid", "--format=csv,noheader")


def detect_gpus(binary: str = "nvidia-smi", timeout: float = 10.0) -> tuple[str, ...]:
    """Device indexes of the host's NVIDIA GPUs from nvidia-smi; () without it (or if it fails:
    a host whose driver is broken offers no GPUs rather than failing jobs on them)."""
    path = shutil.which(binary)
    if path is None:
        return ()
    try:
        out = subprocess.run([path, *NVIDIA_SMI_QUERY], capture_output=True, text=True, timeout=timeout, check=True)
    except (OSError, subprocess.SubprocessError):
        return ()
    return parse_nvidia_smi(out.stdout)


def parse_nvidia_smi(text: str) -> tuple[str, ...]:
    """Lines 'index, uuid' -> the indexes, in nvidia-smi's order."""
    ids = []
    for line in text.splitlines():
        index = line.split(",", 1)[0].strip()
        if index.isdigit():
            ids.append(index)
    return tuple(ids)


def parse_gpus(value: str) -> tuple[str, ...]:
    """`--gpus`: a count N (devices 0..N-1), a comma-separated list of device ids, or none/0."""
    value = value.strip()
    if value in ("", "none", "0"):
        return ()
    if value.isdigit():
        count = int(value)
        if count > 1024:
            raise InvalidArgument(f"--gpus {count}: at most 1024")
        return tuple(str(i) for i in range(count))
    ids = tuple(part.strip() for part in value.split(","))
    for gpu_id in ids:
        if not gpu_id or not all(c.isalnum() or c in "._-" for c in gpu_id):
            raise InvalidArgument(
                f"--gpus {value!r}: give a count or device ids separated by commas (letters, digits, '.', '_', '-')"
            )
    if len(set(ids)) != len(ids):
        raise InvalidArgument(f"--gpus {value!r}: a device is listed twice")
    return ids


def offered_capacity(
    host: Capacity,
    *,
    vcpus: float | None = None,
    memory_mib: int | None = None,
    reserve_vcpus: float = 0.0,
    reserve_memory_mib: int = 0,
) -> Capacity:
    """The capacity to register: `vcpus`/`memory_mib` (default: the host's) minus the reserve.

    Overrides may be smaller than the host, never larger; the result must stay positive.
    """
    if vcpus is not None:
        if vcpus <= 0:
            raise InvalidArgument(f"--vcpus must be > 0, got {vcpus:g}")
        if vcpus > host.vcpus:
            raise InvalidArgument(f"--vcpus {vcpus:g} is more than this host has ({host.vcpus:g} logical CPUs)")
    if memory_mib is not None:
        if memory_mib <= 0:
            raise InvalidArgument(f"--memory-mib must be > 0, got {memory_mib}")
        if memory_mib > host.memory_mib:
            raise InvalidArgument(
                f"--memory-mib {memory_mib} is more than this host has ({host.memory_mib} MiB)"
            )
    if reserve_vcpus < 0 or reserve_memory_mib < 0:
        raise InvalidArgument("the host reserve cannot be negative")
    base_vcpus = host.vcpus if vcpus is None else vcpus
    base_memory = host.memory_mib if memory_mib is None else memory_mib
    offered = Capacity(
        vcpus=base_vcpus - reserve_vcpus,
        memory_mib=base_memory - reserve_memory_mib,
        gpus=host.gpus,
        gpu_ids=host.gpu_ids,
    )
    if offered.vcpus <= 0:
        raise InvalidArgument(
            f"nothing left for jobs: {base_vcpus:g} vCPUs minus a reserve of {reserve_vcpus:g}"
        )
    if offered.memory_mib <= 0:
        raise InvalidArgument(
            f"nothing left for jobs: {base_memory} MiB minus a reserve of {reserve_memory_mib} MiB"
        )
    return offered


def hostname() -> str:
    return socket.gethostname()
