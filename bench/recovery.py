"""Recovery times of issues #4 and #11, measured on a local cluster of real processes (not a test).

    .venv/bin/python -m bench.recovery [--runs 5] [--timings default,fast]

Four figures, each the median over `--runs` runs, for each set of timings:

- **agent kill**: kill -9 of an agent and its jobs (a host crash) -> its job RUNNING on another
  agent. Expected: the controller's wait after a broken stream (fence window 0.5 s + fence kill
  grace 0.5 s + fence margin 0.5 s = 1.5 s by default) + one leader pass + the time to start the
  job.
- **agent alone kill**: kill -9 of the agent process only, its job left running (an agent crash,
  an OOM kill of the agent) -> the job's old process stopped by the host's fence, and -> the job
  RUNNING on another agent. Expected: the fence stops it after its window (+ the kill grace when
  the job ignores SIGTERM; `sleep` does not), the job runs elsewhere as after a host crash.
- **agent freeze**: SIGSTOP of an agent and its jobs (a frozen or partitioned host) -> its job
  requeued (no longer active on the frozen node), and -> RUNNING on another agent. Expected:
  the agent-lost timeout + up to one leader tick.
- **leader kill**: kill -9 of the leader controller -> a job submitted right after it RUNNING.
  Expected: at most the leader lease TTL + one leader pass (followers hold agents that cannot
  reach the dead leader and serve them the moment they lead).
- **leader handover**: SIGTERM of the leader (a clean shutdown: it deletes its key and revokes
  its lease) -> a job submitted right after it RUNNING. Expected: well under a second.

`default` is the controller's and agent's defaults (lease 5 s, reconnect grace 1 s, agent lost
after 10 s, fence 6 s); `fast` the chaos/integration tests' set (tests/integration/conftest.py:
lease 2 s, reconnect grace 0.5 s, lost after 6 s, fence 4 s). Each figure starts its own
cluster (etcd, controllers, two agents of 2 vCPUs each) in a temporary directory; a job takes a
whole agent, so where it goes after the disturbance is determined. States are polled every
10 ms, which bounds the resolution. Results are written to docs/recovery.md by hand.

Other benchmarks import `measure_agent_kill()`, `measure_agent_freeze()` and
`measure_leader_kill()` (median seconds).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil  # noqa: E402

from shoal import Client  # noqa: E402
from shoal.devcluster import LocalCluster, ManagedProcess  # noqa: E402
from shoal.v1 import batch_pb2, types_pb2  # noqa: E402

T = TypeVar("T")
S = types_pb2.JobStatus
RUNNING = S.JOB_STATUS_RUNNING
ACTIVE = (S.JOB_STATUS_STARTING, S.JOB_STATUS_RUNNING)
POLL = 0.01


@dataclass(frozen=True)
class Timings:
    name: str
    controller_args: list[str] = field(default_factory=list)
    agent_args: list[str] = field(default_factory=list)


# Fixed capacity: one 2-vCPU job fills an agent, whatever the machine.
_CAPACITY = ["--vcpus", "2", "--memory-mib", "2048"]
DEFAULT = Timings("default", [], _CAPACITY)
# The same values as FAST_CONTROLLER / FAST_AGENT in tests/integration/conftest.py.
FAST = Timings(
    "fast",
    ["--lease-ttl", "2", "--heartbeat-interval", "0.5", "--agent-lost-timeout", "6",
     "--reconnect-grace", "0.5", "--kill-grace", "2"],
    [*_CAPACITY, "--fence-timeout", "4", "--kill-grace", "1"],
)  # fmt: skip
TIMINGS = {t.name: t for t in (DEFAULT, FAST)}


# ---- plumbing ---------------------------------------------------------------------------------


def _until(fn: Callable[[], T], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(POLL)


@contextlib.contextmanager
def _cluster(timings: Timings, *, controllers: int = 1) -> Iterator[tuple[LocalCluster, Client]]:
    with tempfile.TemporaryDirectory(prefix="shoal-recovery-") as tmp:
        cluster = LocalCluster(
            data_dir=Path(tmp),
            agents=2,
            controllers=controllers,
            controller_args=list(timings.controller_args),
            agent_args=list(timings.agent_args),
        )
        cluster.start()
        try:
            with Client(cluster.address, timeout=30) as client:
                yield cluster, client
        finally:
            cluster.stop()


def _job_groups(agent: ManagedProcess) -> set[int]:
    """Process groups of the agent's jobs (they run in sessions of their own)."""
    groups = set()
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(agent.pid).children(recursive=True):
            with contextlib.suppress(OSError):
                groups.add(os.getpgid(child.pid))
    groups.discard(agent.pid)
    return groups


def _signal_host(agent: ManagedProcess, sig: int, groups: set[int]) -> None:
    agent.signal(sig)
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)


def _submit_filler(client: Client, name: str) -> str:
    request = batch_pb2.SubmitJobRequest(
        job_name=name,
        container_overrides=batch_pb2.ContainerOverrides(command=["sleep", "600"], vcpus=2, memory_mib=64),
        retry_strategy=types_pb2.RetryStrategy(attempts=10),
    )
    return client.submit_job(request).job_id


def _job(client: Client, job_id: str) -> types_pb2.Job:
    return client.describe_job(job_id)


def _running(client: Client, job_id: str) -> types_pb2.Job | None:
    job = _job(client, job_id)
    return job if job.status == RUNNING else None


def _ready(client: Client, node: str) -> bool:
    return any(n.node_id == node and n.status == types_pb2.NODE_STATUS_READY for n in client.list_nodes())


def _agent(cluster: LocalCluster, node: str) -> ManagedProcess:
    return next(p for p in cluster.agent_procs if p.name == node)


def _finish(client: Client, job_id: str) -> None:
    client.terminate_job(job_id, "benchmark run over")
    _until(
        lambda: _job(client, job_id).status in (S.JOB_STATUS_FAILED, S.JOB_STATUS_SUCCEEDED), 60, "terminated"
    )


# ---- the three series -------------------------------------------------------------------------


def _place_filler(
    cluster: LocalCluster, client: Client, name: str
) -> tuple[str, str, ManagedProcess, set[int]]:
    """A job that fills one agent, RUNNING: (job id, node, its agent, its process groups)."""
    job_id = _submit_filler(client, name)
    node = _until(lambda: _running(client, job_id), 60, "RUNNING").node_id
    agent = _agent(cluster, node)
    groups = _until(lambda: _job_groups(agent), 30, "job process")
    return job_id, node, agent, groups


def _running_elsewhere(client: Client, job_id: str, node: str) -> bool:
    job = _running(client, job_id)
    return job is not None and job.node_id != node


def _requeued(client: Client, job_id: str, node: str) -> bool:
    job = _job(client, job_id)
    return job.status not in ACTIVE or job.node_id != node


def _one_agent_kill(cluster: LocalCluster, client: Client, name: str) -> float:
    job_id, node, agent, groups = _place_filler(cluster, client, name)
    _signal_host(agent, signal.SIGKILL, groups)
    t0 = time.monotonic()
    _until(lambda: _running_elsewhere(client, job_id, node), 120, "RUNNING elsewhere")
    took = time.monotonic() - t0
    assert agent.proc is not None
    agent.proc.wait(10)
    _finish(client, job_id)
    agent.start()
    _until(lambda: _ready(client, node), 60, f"{node} READY")
    return took


def _groups_alive(groups: set[int]) -> bool:
    for proc in psutil.process_iter(["status"]):
        with contextlib.suppress(OSError, psutil.Error):
            if os.getpgid(proc.pid) in groups and proc.info["status"] != psutil.STATUS_ZOMBIE:
                return True
    return False


def _one_agent_alone_kill(cluster: LocalCluster, client: Client, name: str) -> tuple[float, float]:
    """(to the old attempt's processes gone, to RUNNING elsewhere) after kill -9 of the agent only."""
    job_id, node, agent, groups = _place_filler(cluster, client, name)
    assert agent.proc is not None
    os.kill(agent.proc.pid, signal.SIGKILL)
    t0 = time.monotonic()
    stopped = running = 0.0
    deadline = t0 + 120
    while not (stopped and running):
        if not stopped and not _groups_alive(groups):
            stopped = time.monotonic() - t0
        if not running and _running_elsewhere(client, job_id, node):
            running = time.monotonic() - t0
        if time.monotonic() > deadline:
            raise TimeoutError("timed out waiting for the fence and the job RUNNING elsewhere")
        time.sleep(POLL)
    agent.proc.wait(10)
    _finish(client, job_id)
    agent.start()
    _until(lambda: _ready(client, node), 60, f"{node} READY")
    return stopped, running


def _one_agent_freeze(cluster: LocalCluster, client: Client, name: str) -> tuple[float, float]:
    job_id, node, agent, groups = _place_filler(cluster, client, name)
    _signal_host(agent, signal.SIGSTOP, groups)
    t0 = time.monotonic()
    try:
        _until(lambda: _requeued(client, job_id, node), 120, "requeue")
        requeued = time.monotonic() - t0
        _until(lambda: _running_elsewhere(client, job_id, node), 120, "RUNNING elsewhere")
        running = time.monotonic() - t0
    finally:
        _signal_host(agent, signal.SIGCONT, groups)
    _finish(client, job_id)
    _until(lambda: _ready(client, node), 60, f"{node} READY again")
    return requeued, running


def _leader(client: Client) -> str:
    """The leader's address as a replica sees it ('' while there is none)."""
    info = client.describe_cluster()
    return info.replica_address if info.is_leader else info.leader_address


def _one_leader_kill(cluster: LocalCluster, client: Client, name: str, sig: int = signal.SIGKILL) -> float:
    index = cluster.controller_addrs.index(_until(lambda: _leader(client), 60, "a leader"))
    # Both agents registered with this leader before it dies.
    _until(
        lambda: sum(n.status == types_pb2.NODE_STATUS_READY for n in client.list_nodes()) == 2, 60, "2 READY"
    )
    cluster.controller_procs[index].signal(sig)
    t0 = time.monotonic()
    request = batch_pb2.SubmitJobRequest(
        job_name=name, container_overrides=batch_pb2.ContainerOverrides(command=["true"], vcpus=1)
    )
    # Through the survivors: a call on the dead leader's half-open connection fails, and the
    # SDK rightly never re-sends a submission that may have been stored.
    survivors = ",".join(a for i, a in enumerate(cluster.controller_addrs) if i != index)
    with Client(survivors, timeout=30) as other:
        job_id = other.submit_job(request).job_id
        _until(lambda: _job(other, job_id).status in (RUNNING, S.JOB_STATUS_SUCCEEDED), 120, "placed")
    took = time.monotonic() - t0
    if sig != signal.SIGKILL:
        cluster.controller_procs[index].stop()  # it is on its way out: wait for it
    cluster.restart_controller(index)
    return took


def agent_kill_samples(timings: Timings = DEFAULT, runs: int = 5) -> list[float]:
    """Seconds from kill -9 of an agent (and its jobs) to its job RUNNING on the other agent."""
    with _cluster(timings) as (cluster, client):
        return [_one_agent_kill(cluster, client, f"kill-{i}") for i in range(runs)]


def agent_alone_kill_samples(timings: Timings = DEFAULT, runs: int = 5) -> list[tuple[float, float]]:
    """(to the old process stopped by the fence, to RUNNING elsewhere) after kill -9 of the agent alone."""
    with _cluster(timings) as (cluster, client):
        return [_one_agent_alone_kill(cluster, client, f"alone-{i}") for i in range(runs)]


def agent_freeze_samples(timings: Timings = DEFAULT, runs: int = 5) -> list[tuple[float, float]]:
    """(to requeue, to RUNNING elsewhere) in seconds after SIGSTOP of an agent and its jobs."""
    with _cluster(timings) as (cluster, client):
        return [_one_agent_freeze(cluster, client, f"freeze-{i}") for i in range(runs)]


def leader_kill_samples(timings: Timings = DEFAULT, runs: int = 5) -> list[float]:
    """Seconds from kill -9 of the leader (of 2 controllers) to a job submitted right after RUNNING."""
    with _cluster(timings, controllers=2) as (cluster, client):
        return [_one_leader_kill(cluster, client, f"after-{i}") for i in range(runs)]


def leader_handover_samples(timings: Timings = DEFAULT, runs: int = 5) -> list[float]:
    """Seconds from SIGTERM of the leader (a clean shutdown: it resigns) to a job submitted right after RUNNING."""
    with _cluster(timings, controllers=2) as (cluster, client):
        return [_one_leader_kill(cluster, client, f"handover-{i}", signal.SIGTERM) for i in range(runs)]


def measure_agent_kill(timings: Timings = DEFAULT, runs: int = 5) -> float:
    return statistics.median(agent_kill_samples(timings, runs))


def measure_agent_freeze(timings: Timings = DEFAULT, runs: int = 5) -> float:
    """Median seconds from SIGSTOP to the job requeued."""
    return statistics.median(r for r, _ in agent_freeze_samples(timings, runs))


def measure_leader_kill(timings: Timings = DEFAULT, runs: int = 5) -> float:
    return statistics.median(leader_kill_samples(timings, runs))


# ---- command line -----------------------------------------------------------------------------


def _row(what: str, timings: Timings, samples: list[float]) -> str:
    return (f"| {what} | {timings.name} | {statistics.median(samples):.2f} s | {min(samples):.2f} s | "
            f"{max(samples):.2f} s | {len(samples)} |")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.recovery", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (default %(default)s)")
    parser.add_argument("--timings", default="default,fast", help="comma-separated: default, fast")
    parser.add_argument(
        "--figures", default="kill,alone,freeze,leader,handover",
        help="comma-separated: kill, alone, freeze, leader, handover",
    )
    args = parser.parse_args(argv)
    figures = {f.strip() for f in args.figures.split(",")}
    print("| figure | timings | median | min | max | runs |")
    print("|---|---|---|---|---|---|")
    for name in args.timings.split(","):
        timings = TIMINGS[name.strip()]
        if "kill" in figures:
            kills = agent_kill_samples(timings, args.runs)
            print(_row("kill -9 agent -> job RUNNING elsewhere", timings, kills), flush=True)
        if "alone" in figures:
            alone = agent_alone_kill_samples(timings, args.runs)
            print(_row("kill -9 agent alone -> its job's process stopped", timings, [s for s, _ in alone]), flush=True)
            print(_row("kill -9 agent alone -> job RUNNING elsewhere", timings, [r for _, r in alone]), flush=True)
        if "freeze" in figures:
            freeze = agent_freeze_samples(timings, args.runs)
            print(_row("SIGSTOP agent -> job requeued", timings, [r for r, _ in freeze]), flush=True)
            print(_row("SIGSTOP agent -> job RUNNING elsewhere", timings, [r for _, r in freeze]), flush=True)
        if "leader" in figures:
            leader = leader_kill_samples(timings, args.runs)
            print(_row("kill -9 leader -> next job RUNNING", timings, leader), flush=True)
        if "handover" in figures:
            handover = leader_handover_samples(timings, args.runs)
            print(_row("SIGTERM leader -> next job RUNNING", timings, handover), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
