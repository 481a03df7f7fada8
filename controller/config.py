"""Controller settings. Every timing default is chosen against the peers (DESIGN "Agents")."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ControllerConfig:
    etcd_endpoints: tuple[str, ...]
    """etcd client endpoints, host:port; several for a cluster (reads fail over between them)."""
    listen: str = "127.0.0.1:50051"
    """Address the gRPC server binds (API and agent gateway on one port)."""
    advertise: str = ""
    """Address clients and agents are redirected to when this replica leads (default: listen)."""
    prefix: str = "/shoal/"
    """etcd key prefix: one per cluster, so several clusters can share one etcd."""
    replica_id: str = ""
    """Name of this replica in logs and in the leader record (default: host:port)."""
    lease_ttl: int = 5
    """Leader lease TTL in seconds (etcd's minimum is about 2). Failover takes about this long."""
    heartbeat_interval: float = 1.0
    """Seconds between agent heartbeats (sent to agents when they register)."""
    agent_lost_timeout: float = 10.0
    """An agent silent this long is lost and its attempts are failed over (D in DESIGN)."""
    reconnect_grace: float = 1.0
    """An agent whose stream broke (process died) is lost after this long unless it reconnects
    (and never before its host's fence stopped its attempts: see `fence_margin`)."""
    fence_margin: float = 0.5
    """Added to an agent's fence window + fence kill grace (from its Register) before a broken
    stream's attempts are failed over: covers the fence's and the controller's wake-up delays."""
    gang_reserve_after: int = 3
    """A multi-node job passed over by this many scheduling passes reserves its nodes (0 = never)."""
    kill_grace: float = 10.0
    """TerminateJob: seconds between SIGTERM and SIGKILL."""
    archive_after: float = 3600.0
    """Finished jobs move from the hot keyspace to history this many seconds after they end."""
    history_retention: float = 7 * 86400.0
    """History is kept this long (by job creation time), then deleted."""
    max_txn_ops: int = 128
    """etcd's --max-txn-ops: the most operations one transaction may carry."""
    etcd_timeout: float = 5.0
    """Deadline of every etcd call."""
    etcd_tls: dict[str, str] = field(default_factory=dict)
    """ca_file / cert_file / key_file for TLS to etcd (empty = plaintext)."""
    data_dir: str = ""
    """This replica's local state (the `local` provisioner's agents); "" = default_data_dir()."""
    scale_in_idle: float = 30.0
    """MANAGED environments: seconds a node must be idle before it is drained and removed."""

    @property
    def advertised(self) -> str:
        return self.advertise or self.listen

    @property
    def state_dir(self) -> str:
        return self.data_dir or default_data_dir()


def default_data_dir() -> str:
    """/var/lib/shoal/controller as root, else $XDG_STATE_HOME/shoal/controller (~/.local/state)."""
    if os.geteuid() == 0:
        return "/var/lib/shoal/controller"
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return os.path.join(base, "shoal", "controller")
