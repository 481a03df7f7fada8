"""What this host offers to jobs: measured with psutil, minus a reserve for the host itself."""

from __future__ import annotations

import socket
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
    """Whole GPU devices (not measured yet)."""


def measure_host() -> Capacity:
    """Everything the host has: logical CPUs and total memory."""
    return Capacity(
        vcpus=float(psutil.cpu_count(logical=True) or 1),
        memory_mib=psutil.virtual_memory().total // MIB,
    )


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
