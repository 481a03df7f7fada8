"""The agent's resolved configuration (what `agent.main` builds from flags and the host)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_FENCE_TIMEOUT_SECONDS = 6.0
DEFAULT_KILL_GRACE_SECONDS = 2.0
DEFAULT_ERROR_RETRY_SECONDS = 5.0
DEFAULT_FENCE_WINDOW_SECONDS = 0.5
DEFAULT_FENCE_KILL_GRACE_SECONDS = 0.5
DEFAULT_HANDOVER_WINDOW_SECONDS = 5.0


@dataclass(frozen=True)
class AgentConfig:
    """Everything one agent process runs with. Capacity and identity are already resolved."""

    controllers: tuple[str, ...]
    """Controller addresses (host:port), tried in turn; a follower's redirect wins over them."""
    node_id: str
    """Stable id of this node (persisted in the state directory unless given)."""
    hostname: str
    """The host's name as reported to the controller."""
    state_dir: Path
    """Where the node id, the attempts file, per-attempt logs and work directories live."""
    vcpus: float
    """Logical CPUs offered to jobs (after the host reserve)."""
    memory_mib: int
    """Memory offered to jobs in MiB (after the host reserve)."""
    compute_environment: str = "default"
    """The compute environment this node joins; it must exist on the controller."""
    runtime: str = "process"
    """The preferred runtime, registered with the controller: "process", "podman" or "docker"
    (`--runtime auto`, the default, resolves to podman or docker when the host can run
    containers). A container runtime node runs image-less attempts as processes too."""
    image_pull: str = ""
    """Container runtimes: `--pull` policy ("" = the CLI's default, "never", "missing", "always")."""
    oci_runtime: str = ""
    """podman only: `--runtime` (e.g. "runc"); "" = podman's default, switched to runc if crun fails."""
    log_max_mib: int = 64
    """Size of one attempt log file before it is rotated."""
    log_keep: int = 3
    """Rotated log files kept per attempt: logs take at most (log_keep + 1) x log_max_mib."""
    gpus: int = 0
    """GPUs offered to jobs (nvidia-smi, or `--gpus`)."""
    gpu_ids: tuple[str, ...] = ()
    """Their device ids, one per GPU: the scheduler assigns attempts from these."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Placement labels (k=v) reported at registration."""
    fence_timeout: float = DEFAULT_FENCE_TIMEOUT_SECONDS
    """Seconds without any message from a controller after which the agent kills its attempts
    (self-fencing). Must stay below the controller's agent-lost timeout minus `kill_grace`."""
    kill_grace: float = DEFAULT_KILL_GRACE_SECONDS
    """Seconds between SIGTERM and SIGKILL when the agent itself stops attempts (fencing,
    shutdown, timeouts). A KillAttempt from the controller carries its own grace."""
    keep_jobs_on_exit: bool = False
    """SIGTERM/SIGINT leave the attempts running for the next agent process (as SIGUSR2 always
    does) instead of stopping them: for restarts by a service manager (upgrades)."""
    fence_window: float = DEFAULT_FENCE_WINDOW_SECONDS
    """W: when this agent process dies (crash, kill -9, OOM kill), the host's fence (its log
    writer) stops its attempts unless a new agent of the same state directory claims them
    within this many seconds (after registering with the controller)."""
    fence_kill_grace: float = DEFAULT_FENCE_KILL_GRACE_SECONDS
    """G: the fence's SIGTERM-to-SIGKILL grace. The controller requeues a dead agent's attempts
    after W + G + its fence margin."""
    handover_window: float = DEFAULT_HANDOVER_WINDOW_SECONDS
    """An intentional exit leaving the attempts running (SIGUSR2, `keep_jobs_on_exit`) asks the
    controller for this window instead of W (it grants at most its agent-lost timeout minus G
    and the margin) and gives the fence the granted one."""
    error_retry: float = DEFAULT_ERROR_RETRY_SECONDS
    """Seconds between registrations refused with a non-retryable error (e.g. the compute
    environment does not exist yet)."""
    advertise_address: str = ""
    """Address other hosts reach this one at (`--advertise-address`; default: this host's
    address on the route to the first controller). Multi-node jobs whose main node runs here
    give it to their other nodes as SHOAL_MAIN_NODE_ADDR."""
