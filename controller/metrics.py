"""The controller's Prometheus metrics, read from the replica at scrape time.

Nothing here is updated by the leader loop or the view: a scrape walks the replica's
in-memory view (job counts per queue and state, nodes with their capacity and use) and copies
the leader's `LeaderStats` counters. A scrape therefore costs one pass over the view and never
slows a scheduling pass. The only instrumented call path is the etcd client
(`controller.store.etcd.REQUEST_SECONDS`), whose histogram is included in the same registry.

Scheduling counters exist only on the leader and restart from zero when leadership moves
(Prometheus' rate() treats that as a counter reset); aggregate them across replicas with
`sum(rate(shoal_scheduler_placements_total[1m]))`.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR, CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from controller.domain import jobs as J
from controller.scheduler.fairshare import decayed
from controller.store.etcd import REQUEST_SECONDS
from shoal.v1 import types_pb2

if TYPE_CHECKING:
    from controller.services.replica import Replica
    from controller.services.view import ViewData

_STATUSES = {value: name.removeprefix("JOB_STATUS_") for name, value in types_pb2.JobStatus.items() if value}
_NODE_STATUSES = {value: name.removeprefix("NODE_STATUS_") for name, value in types_pb2.NodeStatus.items() if value}


class ControllerCollector(Collector):
    """Collects the replica's view and leader counters (see the module docstring)."""

    def __init__(self, replica: Replica) -> None:
        self.replica = replica

    def collect(self) -> Iterator[Metric]:
        replica = self.replica
        view = replica.view
        data = view.data
        leader = replica.leader

        up = GaugeMetricFamily("shoal_controller_leader", "1 if this replica is the elected leader", labels=["replica"])
        up.add_metric([replica.replica_id], 1.0 if leader is not None else 0.0)
        yield up
        if leader is not None:
            yield GaugeMetricFamily("shoal_controller_leader_epoch", "the leader's epoch (its leader key's create revision)", value=leader.epoch)
        yield GaugeMetricFamily(
            "shoal_controller_etcd_healthy", "1 if this replica's view follows etcd's watch (etcd reachable)", value=1.0 if view.healthy else 0.0
        )
        yield GaugeMetricFamily("shoal_controller_view_revision", "etcd revision this replica's view includes", value=view.revision)

        # Queue depth per state (and every final state), per queue.
        jobs = GaugeMetricFamily("shoal_jobs", "jobs in the hot keyspace by queue and status", labels=["queue", "status"])
        counts: dict[tuple[str, str], int] = defaultdict(int)
        for status, ids in data.by_status.items():
            name = _STATUSES.get(status, str(status))
            for job_id in ids:
                entry = data.jobs.get(job_id)
                if entry is not None:
                    counts[(entry.job.job_queue, name)] += 1
        for queue in data.queues:
            for name in _STATUSES.values():
                counts.setdefault((queue, name), 0)
        for (queue, name), n in sorted(counts.items()):
            jobs.add_metric([queue, name], n)
        yield jobs

        # Nodes: count by state, then capacity and use (resources of ACTIVE jobs) per node.
        node_count = GaugeMetricFamily("shoal_nodes", "nodes by compute environment and status", labels=["compute_environment", "status"])
        by_state: dict[tuple[str, str], int] = defaultdict(int)
        labels = ["node", "compute_environment", "status"]
        capacity = {
            r: GaugeMetricFamily(f"shoal_node_capacity_{r}", f"{r} a node offers to jobs", labels=labels)
            for r in ("vcpus", "memory_mib", "gpus")
        }
        used = {
            r: GaugeMetricFamily(f"shoal_node_used_{r}", f"{r} of the node held by its STARTING/RUNNING jobs", labels=labels)
            for r in ("vcpus", "memory_mib", "gpus")
        }
        running = GaugeMetricFamily("shoal_node_jobs_active", "STARTING/RUNNING jobs on the node", labels=labels)
        for node_id, node in sorted(data.nodes.items()):
            status = _NODE_STATUSES.get(node.status, str(node.status))
            by_state[(node.compute_environment, status)] += 1
            key = [node_id, node.compute_environment, status]
            capacity["vcpus"].add_metric(key, node.vcpus)
            capacity["memory_mib"].add_metric(key, node.memory_mib)
            capacity["gpus"].add_metric(key, node.gpus)
            active = [j for j in view.active_jobs_on(node_id) if j.status in J.ACTIVE]
            used["vcpus"].add_metric(key, sum(j.container.resources.vcpus for j in active))
            used["memory_mib"].add_metric(key, sum(j.container.resources.memory_mib for j in active))
            used["gpus"].add_metric(key, sum(j.container.resources.gpus for j in active))
            running.add_metric(key, len(active))
        for (env, status), n in sorted(by_state.items()):
            node_count.add_metric([env, status], n)
        yield node_count
        yield from capacity.values()
        yield from used.values()
        yield running
        yield _fairshare_usage(view.data)

        if leader is None:
            return
        stats = leader.stats
        yield CounterMetricFamily("shoal_scheduler_passes", "leader loop passes in this term", value=stats.passes)
        yield CounterMetricFamily(
            "shoal_scheduler_placements", "jobs placed on nodes in this term (rate() = placements/s)", value=stats.placements
        )
        yield CounterMetricFamily("shoal_scheduler_jobs_written", "job records written by the leader in this term", value=stats.jobs_written)
        yield CounterMetricFamily(
            "shoal_scheduler_pass_seconds", "time spent in leader loop passes in this term", value=stats.pass_seconds_total
        )
        yield GaugeMetricFamily("shoal_scheduler_last_pass_seconds", "duration of the last leader loop pass", value=stats.last_pass_seconds)
        yield CounterMetricFamily(
            "shoal_scheduler_decide_seconds",
            "time spent deciding placements (inside passes, without events and etcd writes) in this term",
            value=stats.decide_seconds_total,
        )
        yield GaugeMetricFamily(
            "shoal_scheduler_last_decide_seconds", "placement decision time of the last pass", value=stats.last_decide_seconds
        )
        yield CounterMetricFamily("shoal_nodes_lost", "nodes declared lost in this term", value=stats.nodes_lost)
        sessions = GaugeMetricFamily("shoal_agent_sessions", "agent streams the leader holds")
        sessions.add_metric([], sum(1 for s in leader.sessions.values() if s.registered))
        yield sessions


def _fairshare_usage(data: ViewData) -> Metric:
    """Each share's stored usage on fair-share queues, decayed to now (any replica: it is in etcd)."""
    usage = GaugeMetricFamily(
        "shoal_fairshare_usage_vcpu_seconds",
        "decayed vCPU-seconds of a share's finished attempts on a fair-share queue",
        labels=["queue", "share"],
    )
    now = int(time.time() * 1000)
    for queue_name, record in sorted(data.usage.items()):
        queue = data.queues.get(queue_name)
        policy = data.policies.get(queue.scheduling_policy) if queue is not None else None
        if policy is None:
            continue
        for share, u in sorted(record.shares.items()):
            value = decayed(u.vcpu_seconds, u.as_of, now, policy.fairshare_policy.share_decay_seconds)
            usage.add_metric([queue_name, share], value)
    return usage


def registry_for(replica: Replica) -> CollectorRegistry:
    """A registry with the replica's metrics, etcd latency and the process's own metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ControllerCollector(replica))
    registry.register(REQUEST_SECONDS)
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    return registry


def health_of(replica: Replica) -> tuple[bool, str]:
    """Serving = the view follows etcd (reads are current and writes can be made)."""
    if not replica.view.healthy:
        return False, "etcd unavailable: this replica's view is not following etcd"
    return True, "ok"
