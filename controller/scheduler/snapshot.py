"""The immutable view of the cluster that one scheduling pass works on.

The leader builds a `Snapshot` from its in-memory state (queues, environments, READY nodes with
their free capacity, RUNNABLE jobs) and hands it to `place`. Nothing here refers to etcd, the
clock or gRPC: a snapshot is plain data, so scheduling is unit-testable with literals.

Resources are whole numbers (milli-vCPUs, MiB, GPUs) so that packing is exact: 0.1 + 0.2 vCPUs
never rounds past a node's capacity.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Container, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shoal.errors import InvalidArgument

if TYPE_CHECKING:
    from controller.scheduler.fairshare import FairShare


@dataclass(frozen=True, slots=True)
class Resources:
    """An amount of compute: what a job asks for, what a node has or has free."""

    milli_vcpus: int
    """Thousandths of a logical CPU (0.5 vCPUs = 500)."""
    memory_mib: int
    gpus: int = 0

    @classmethod
    def from_vcpus(cls, vcpus: float, memory_mib: int, gpus: int = 0) -> Resources:
        """From the API's fractional vCPUs, rounded to the nearest milli-vCPU."""
        if not math.isfinite(vcpus) or vcpus < 0:
            raise InvalidArgument(f"vcpus: must be a finite number >= 0 (got {vcpus})")
        return cls(round(vcpus * 1000), int(memory_mib), int(gpus))

    def fits_in(self, other: Resources) -> bool:
        """True when every dimension of self is at most the same dimension of other."""
        return (
            self.milli_vcpus <= other.milli_vcpus
            and self.memory_mib <= other.memory_mib
            and self.gpus <= other.gpus
        )

    def __add__(self, other: Resources) -> Resources:
        return Resources(
            self.milli_vcpus + other.milli_vcpus, self.memory_mib + other.memory_mib, self.gpus + other.gpus
        )

    def __sub__(self, other: Resources) -> Resources:
        return Resources(
            self.milli_vcpus - other.milli_vcpus, self.memory_mib - other.memory_mib, self.gpus - other.gpus
        )

    @property
    def vcpus(self) -> float:
        return self.milli_vcpus / 1000

    def describe(self, *, with_gpus: bool = False) -> str:
        """'2 vCPUs, 1024 MiB' for people; GPUs are shown when non-zero or when asked for."""
        return describe(self.milli_vcpus, self.memory_mib, self.gpus, with_gpus=with_gpus)


def format_vcpus(milli_vcpus: int) -> str:
    """'1 vCPU', '2 vCPUs', '0.5 vCPUs'."""
    if milli_vcpus % 1000 == 0:
        number = str(milli_vcpus // 1000)
    else:
        number = f"{milli_vcpus / 1000:.3f}".rstrip("0").rstrip(".")
    return f"{number} vCPU" if milli_vcpus == 1000 else f"{number} vCPUs"


def describe(milli_vcpus: int, memory_mib: int, gpus: int, *, with_gpus: bool = False) -> str:
    text = f"{format_vcpus(milli_vcpus)}, {memory_mib} MiB"
    if gpus or with_gpus:
        text += f", {gpus} GPU" if gpus == 1 else f", {gpus} GPUs"
    return text


@dataclass(frozen=True, slots=True)
class QueueView:
    name: str
    priority: int
    """Higher is scheduled first (AWS Batch semantics)."""
    enabled: bool
    compute_environments: tuple[str, ...]
    """Tried in this order for every job of the queue."""
    fairshare: FairShare | None = None
    """Set for a fair-share queue: its policy and usage (`controller.scheduler.fairshare`)."""


@dataclass(frozen=True, slots=True)
class EnvView:
    name: str
    enabled: bool


@dataclass(frozen=True, slots=True)
class NodeView:
    node_id: str
    compute_environment: str
    capacity: Resources
    """What the node offers jobs in total (after the host reserve)."""
    free: Resources
    """Capacity minus the requests of the attempts placed on it (STARTING/RUNNING)."""
    schedulable: bool
    """READY: connected and accepting work. DRAINING/LOST nodes are listed with False."""
    runtimes: frozenset[str] = frozenset({"process"})
    gpu_ids: tuple[str, ...] | None = None
    """Ids of the node's free GPU devices, in the order to hand them out (None: counts only,
    no ids assigned). The free GPU count is then at most their number."""


@dataclass(frozen=True, slots=True)
class JobView:
    job_id: str
    queue: str
    request: Resources
    order: tuple[int, int]
    """Submission order: (etcd create revision, index within its SubmitJobs batch)."""
    runtime: str = ""
    """'' = any runtime; otherwise only nodes offering this runtime qualify."""
    share: str = ""
    """shareIdentifier (fair-share queues only)."""
    priority: int = 0
    """schedulingPriority: higher first within its share (fair-share queues only)."""
    gang: tuple[NodeRequest, ...] = ()
    """A multi-node job: what each of its nodes needs, by node index (all placed together, on
    distinct nodes, or none). Empty for an ordinary job (then `request` and `runtime` apply)."""


@dataclass(frozen=True, slots=True)
class NodeRequest:
    """What one node of a multi-node job needs."""

    request: Resources
    runtime: str = ""


GANG_SHAPE = "\x00gang "
"""Shape keys of multi-node jobs start with this: one key per job (`shape_of`), because a gang
fits or not as a whole, never by one size."""


ShapeKey = tuple[str, int, int, int]
"""(runtime, milli-vCPUs, MiB, GPUs): what placement needs to know of a job besides its order."""


def shape_of(job: JobView) -> ShapeKey:
    if job.gang:
        return (GANG_SHAPE + job.job_id, 0, 0, 0)
    r = job.request
    return (job.runtime, r.milli_vcpus, r.memory_mib, r.gpus)


@dataclass(frozen=True, slots=True)
class Lane:
    """The runnable jobs of one queue, already in FIFO order (`JobView.order`)."""

    jobs: Sequence[JobView]
    shapes: Collection[ShapeKey]
    """Every `shape_of` among `jobs` (a superset is fine): lets a pass leave the queue early."""
    skip: Container[str] = frozenset()
    """Job ids in `jobs` that are not runnable after all (left out of the pass entirely)."""


@dataclass(frozen=True)
class Snapshot:
    queues: Mapping[str, QueueView]
    envs: Mapping[str, EnvView]
    nodes: Sequence[NodeView]
    runnable: Sequence[JobView] = ()
    """Runnable jobs in any order (grouped and sorted by the pass), unless `lanes` is given."""
    lanes: Mapping[str, Lane] | None = None
    """Queue name -> its runnable jobs already in order: what the leader passes (no sort)."""
    gang_passes: Mapping[str, int] = field(default_factory=dict)
    """Multi-node job id -> how many earlier passes placed jobs behind it while it waited
    (`Plan.passed_over`, counted by the leader)."""
    gang_reserve_after: int = 3
    """A multi-node job passed over this many times reserves the nodes it needs (0 = never)."""
