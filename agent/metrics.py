"""The agent's Prometheus metrics and health, read from its session at scrape time.

Gauges (capacity, attempts held and running, connection, leader epoch, log bytes on disk) are
read from the live `Session` and `Attempts` when scraped. The one thing that cannot be read
later is how each attempt ended, so `AgentMetrics.attach` puts a thin tee in front of the
session's attempt events that counts every finished attempt by outcome and passes the event on
unchanged.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR, CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from agent import attempts as A
from agent.config import AgentConfig

if TYPE_CHECKING:
    from agent.session import Session

# AttemptResult.reason -> outcome label. A reason not listed with a non-zero exit is "failed".
_OUTCOMES = {
    A.TIMEOUT[1]: "timeout",
    A.FENCED[1]: "fenced",
    A.INTERRUPTED[1]: "interrupted",
    A.RESTARTED[1]: "restarted",
    A.OOM[1]: "oom",
    A.KILLED_REASON: "killed",
    A.CANNOT_START_REASON: "cannot_start",
}
OUTCOMES = ("succeeded", "failed", *_OUTCOMES.values())


def outcome(result: A.AttemptResult) -> str:
    """The `outcome` label of a finished attempt."""
    if result.reason in _OUTCOMES:
        return _OUTCOMES[result.reason]
    return "succeeded" if result.exit_code == 0 else "failed"


class _CountingEvents:
    """Counts finished attempts, then hands the event to the session as before."""

    def __init__(self, inner: A.AttemptEvents, finished: Counter[str]) -> None:
        self.inner = inner
        self.finished = finished

    def attempt_started(self, attempt: A.Attempt) -> None:
        self.inner.attempt_started(attempt)

    def attempt_finished(self, attempt: A.Attempt) -> None:
        if attempt.result is not None:
            self.finished[outcome(attempt.result)] += 1
        self.inner.attempt_finished(attempt)


def log_bytes(state_dir: Path) -> int:
    """Bytes of attempt output kept under `<state_dir>/attempts/<job>/<attempt>/`."""
    total = 0
    root = state_dir / "attempts"
    try:
        jobs = list(os.scandir(root))
    except OSError:
        return 0
    for job in jobs:
        try:
            for attempt in os.scandir(job.path):
                try:
                    for entry in os.scandir(attempt.path):
                        if entry.name.startswith("output") and entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
                except OSError:
                    continue
        except OSError:
            continue
    return total


class AgentMetrics(Collector):
    """The agent's collector; `attach(session)` once the daemon has built its session."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.session: Session | None = None
        self.finished: Counter[str] = Counter()

    def attach(self, session: Session) -> None:
        self.session = session
        session.attempts.events = _CountingEvents(session.attempts.events, self.finished)

    # Private session state is read here on purpose: the session has no reason to publish it
    # otherwise, and this module is its only reader.
    def seconds_since_controller(self) -> float | None:
        session = self.session
        if session is None or session._stream is None:
            return None
        return max(0.0, time.monotonic() - session._last_heard)

    def health(self) -> tuple[bool, str]:
        """Healthy = registered with the leader and heard from it within the fence timeout."""
        if self.session is None:
            return False, "agent starting"
        silent = self.seconds_since_controller()
        if silent is None:
            return False, "not registered with a controller"
        if silent >= self.config.fence_timeout:
            return False, f"no message from the controller for {silent:.1f}s"
        return True, "ok"

    def collect(self) -> Iterator[Metric]:
        config = self.config
        labels = ["node", "compute_environment"]
        key = [config.node_id, config.compute_environment]
        for name, value, what in (
            ("vcpus", config.vcpus, "logical CPUs"),
            ("memory_mib", config.memory_mib, "memory in MiB"),
            ("gpus", config.gpus, "GPUs"),
        ):
            g = GaugeMetricFamily(f"shoal_agent_capacity_{name}", f"{what} this agent offers to jobs", labels=labels)
            g.add_metric(key, value)
            yield g
        session = self.session
        running = session.attempts.running() if session else []
        held = session.attempts.held() if session else []
        yield GaugeMetricFamily("shoal_agent_attempts_running", "attempts running on this node", value=len(running))
        yield GaugeMetricFamily(
            "shoal_agent_attempts_held", "attempts running or with a result the controller has not acknowledged", value=len(held)
        )
        finished = CounterMetricFamily("shoal_agent_attempts_finished", "attempts that ended on this node, by outcome", labels=["outcome"])
        for name in OUTCOMES:
            finished.add_metric([name], self.finished.get(name, 0))
        yield finished
        silent = self.seconds_since_controller()
        yield GaugeMetricFamily("shoal_agent_connected", "1 if registered with a controller on a live stream", value=0.0 if silent is None else 1.0)
        if silent is not None:
            yield GaugeMetricFamily("shoal_agent_seconds_since_controller", "seconds since the controller was last heard", value=silent)
        yield GaugeMetricFamily("shoal_agent_leader_epoch", "newest leader epoch this agent registered with", value=session._newest_epoch if session else 0)
        yield CounterMetricFamily("shoal_agent_registrations", "successful registrations with a leader", value=session._registrations if session else 0)
        yield GaugeMetricFamily("shoal_agent_log_bytes", "bytes of attempt output kept in the state directory", value=log_bytes(config.state_dir))


def registry_for(metrics: AgentMetrics) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics)
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    return registry
