"""What the chaos scenarios do to a cluster: crash, freeze and cut off hosts, find the leader.

A "host" here is an agent process plus its jobs. Jobs run in sessions of their own (so the
agent can kill each as a group), which means signalling the agent's process group does not
reach them: `job_groups` finds them as the agent's descendants.

Network partitions use a network namespace the test creates (`NetNamespace`): a veth pair on
a private /30, the root side's address is where the controllers listen, the agent runs inside
the namespace through `ip netns exec`, and `cut()` takes the namespace's link down.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import psutil

from shoal import Client
from shoal.devcluster import LocalCluster, ManagedProcess
from shoal.v1 import batch_pb2, batch_pb2_grpc, types_pb2

from .conftest import eventually
from .invariants import read_journal

S = types_pb2.JobStatus
ACTIVE = (S.JOB_STATUS_STARTING, S.JOB_STATUS_RUNNING)


# ---- hosts ------------------------------------------------------------------------------------


def job_groups(agent: ManagedProcess) -> set[int]:
    """Process groups of the agent's running jobs (its descendants outside its own group)."""
    try:
        children = psutil.Process(agent.pid).children(recursive=True)
    except psutil.Error:
        return set()
    groups = set()
    for child in children:
        with contextlib.suppress(OSError):
            groups.add(os.getpgid(child.pid))
    groups.discard(agent.pid)
    return groups


def _signal_groups(groups: Iterable[int], sig: int) -> None:
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)


def groups_alive(groups: Iterable[int]) -> set[int]:
    """The groups among `groups` that still have a live (non-zombie) member."""
    alive = set()
    wanted = set(groups)
    for proc in psutil.process_iter(["status"]):
        try:
            pgid = os.getpgid(proc.pid)
        except OSError:
            continue
        if pgid in wanted and proc.info["status"] != psutil.STATUS_ZOMBIE:
            alive.add(pgid)
    return alive


def crash_host(agent: ManagedProcess) -> float:
    """kill -9 the agent and every job it runs, as a host crash would; returns when (monotonic)."""
    groups = job_groups(agent)
    agent.signal(signal.SIGKILL)
    _signal_groups(groups, signal.SIGKILL)
    at = time.monotonic()
    assert agent.proc is not None
    agent.proc.wait(10)
    return at


@dataclass
class FrozenHost:
    agent: ManagedProcess
    groups: set[int] = field(default_factory=set)
    stopped: float = 0.0
    resumed: float = 0.0

    def thaw(self) -> float:
        """SIGCONT the jobs and the agent; returns when (monotonic)."""
        if not self.resumed:
            _signal_groups(self.groups, signal.SIGCONT)
            self.agent.signal(signal.SIGCONT)
            self.resumed = time.monotonic()
        return self.resumed


def freeze_host(agent: ManagedProcess) -> FrozenHost:
    """SIGSTOP the agent and every job it runs (the agent first, so it starts nothing new)."""
    agent.signal(signal.SIGSTOP)
    frozen = FrozenHost(agent=agent, stopped=time.monotonic())
    frozen.groups = job_groups(agent)
    _signal_groups(frozen.groups, signal.SIGSTOP)
    return frozen


# ---- jobs and nodes ---------------------------------------------------------------------------


def jobs_on(
    client: Client, ids: Iterable[str], node: str, *, statuses: Iterable[int] = (S.JOB_STATUS_RUNNING,)
) -> list[types_pb2.Job]:
    wanted = set(statuses)
    return [j for j in client.describe_jobs(ids) if j.node_id == node and j.status in wanted]


def wait_journalled(client: Client, jobs: Iterable[str], node: str, journal: Path) -> None:
    """Until every attempt active on `node` really runs: its process wrote a beat."""

    def all_beating() -> bool:
        active = jobs_on(client, jobs, node, statuses=ACTIVE)
        seen = read_journal(journal)
        runs = [seen.run(j.job_id, j.current.attempt) for j in active]
        return bool(active) and all(r is not None and len(r.times) > 1 for r in runs)

    eventually(all_beating, what=f"the attempts on {node} running")


def node_status(client: Client, node: str) -> int:
    for n in client.list_nodes():
        if n.node_id == node:
            return n.status
    return types_pb2.NODE_STATUS_UNSPECIFIED


def describe_cluster(address: str) -> batch_pb2.DescribeClusterResponse | None:
    try:
        with grpc.insecure_channel(address) as channel:
            stub = batch_pb2_grpc.BatchStub(channel)
            return stub.DescribeCluster(batch_pb2.DescribeClusterRequest(), timeout=2)
    except grpc.RpcError:
        return None


def leader_address(cluster: LocalCluster) -> str:
    """Address of the one live controller that says it leads ('' while there is not exactly one)."""
    leading = []
    for proc, address in zip(cluster.controller_procs, cluster.controller_addrs, strict=True):
        info = describe_cluster(address) if proc.alive() else None
        if info is not None and info.is_leader:
            leading.append(address)
    return leading[0] if len(leading) == 1 else ""


# ---- network namespaces -----------------------------------------------------------------------


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def netns_unavailable() -> str:
    """Why this machine cannot run the partition scenario ('' if it can)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    return ""


def _used_networks() -> list[ipaddress.IPv4Network]:
    out = subprocess.run(
        ["ip", "-o", "-4", "addr", "show"], check=True, capture_output=True, text=True
    ).stdout
    nets = []
    for line in out.splitlines():
        fields = line.split()
        if "inet" in fields:
            nets.append(ipaddress.IPv4Interface(fields[fields.index("inet") + 1]).network)
    return nets


@dataclass
class NetNamespace:
    """A network namespace joined to the root namespace by a veth pair on a private /30."""

    name: str
    host_dev: str
    ns_dev: str
    host_ip: str = ""
    ns_ip: str = ""

    @classmethod
    def create(cls) -> NetNamespace:
        tag = f"{os.getpid() % 100000}{random.randrange(100):02d}"
        ns = cls(name=f"shoal-chaos-{tag}", host_dev=f"shc{tag}h", ns_dev=f"shc{tag}n")
        used = _used_networks()
        while True:  # a /30 in 10.254.0.0/16 that no interface here uses
            net = ipaddress.IPv4Network(f"10.254.{random.randrange(256)}.{4 * random.randrange(64)}/30")
            if not any(net.overlaps(u) for u in used):
                break
        host, inner = list(net.hosts())
        ns.host_ip, ns.ns_ip = str(host), str(inner)
        try:
            _ip("netns", "add", ns.name)
            _ip("link", "add", ns.host_dev, "type", "veth", "peer", "name", ns.ns_dev)
            _ip("link", "set", ns.ns_dev, "netns", ns.name)
            _ip("addr", "add", f"{host}/30", "dev", ns.host_dev)
            _ip("link", "set", ns.host_dev, "up")
            _ip("-n", ns.name, "addr", "add", f"{inner}/30", "dev", ns.ns_dev)
            _ip("-n", ns.name, "link", "set", ns.ns_dev, "up")
            _ip("-n", ns.name, "link", "set", "lo", "up")
        except BaseException:
            ns.delete()
            raise
        return ns

    @property
    def prefix(self) -> list[str]:
        """Command prefix that runs a program inside the namespace."""
        return ["ip", "netns", "exec", self.name]

    def cut(self) -> float:
        """Take the namespace's link down; returns when (monotonic)."""
        _ip("-n", self.name, "link", "set", self.ns_dev, "down")
        return time.monotonic()

    def restore(self) -> None:
        _ip("-n", self.name, "link", "set", self.ns_dev, "up")

    def delete(self) -> None:
        """Remove the veth pair and the namespace (processes in it must be gone first)."""
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("link", "del", self.host_dev)
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("netns", "del", self.name)


# ---- watching processes die (from the host side) ------------------------------------------------


class DeathWatch:
    """Records when processes end, as seen from the host: one pidfd per process, one thread
    blocked in poll() on all of them, the wall-clock time taken the moment each one is readable
    (the process exited). A time recorded here is an upper bound of the real end, so "ended
    before X" shown with it holds for the real end too.

        deaths = DeathWatch(); deaths.watch(pid); ...; deaths.ended_at(pid)  # epoch seconds
    """

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._fds: dict[int, int] = {}
        self._ended: dict[int, float] = {}
        self._wake_r, self._wake_w = os.pipe()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="death-watch", daemon=True)
        self._thread.start()

    def watch(self, pid: int) -> None:
        """Start watching `pid` (which must be running now: a pidfd cannot name a pid's past)."""
        fd = os.pidfd_open(pid)
        with self._lock:
            self._fds[pid] = fd
        os.write(self._wake_w, b"x")

    def ended_at(self, pid: int) -> float | None:
        with self._lock:
            return self._ended.get(pid)

    def wait_ended(self, pids: Iterable[int], timeout: float = 30.0) -> dict[int, float]:
        """Until every pid in `pids` ended: {pid: when (epoch seconds)}."""
        wanted = list(pids)
        eventually(lambda: all(self.ended_at(p) is not None for p in wanted), timeout=timeout,
                   what=f"processes {wanted} to end")
        return {p: self.ended_at(p) for p in wanted}  # type: ignore[misc]

    def close(self) -> None:
        self._stop = True
        os.write(self._wake_w, b"x")
        self._thread.join(5)
        with self._lock:
            for fd in self._fds.values():
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._fds.clear()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _run(self) -> None:
        import select

        while not self._stop:
            poller = select.poll()
            poller.register(self._wake_r, select.POLLIN)
            with self._lock:
                by_fd = {fd: pid for pid, fd in self._fds.items() if pid not in self._ended}
            for fd in by_fd:
                poller.register(fd, select.POLLIN)
            for fd, _ in poller.poll():
                now = time.time()
                if fd == self._wake_r:
                    os.read(self._wake_r, 64)
                    continue
                with self._lock:
                    self._ended.setdefault(by_fd[fd], now)


def kill9_agent_alone(agent: ManagedProcess) -> float:
    """SIGKILL the agent process only (not its group, not its jobs): a crash, an OOM kill of the
    agent, a failed upgrade. Returns when (epoch seconds)."""
    assert agent.proc is not None
    os.kill(agent.proc.pid, signal.SIGKILL)
    at = time.time()
    agent.proc.wait(10)
    return at


def container_of(cli: str, job_id: str) -> tuple[str, int] | None:
    """(id, host pid of its init) of the running container of job `job_id` (label shoal.job-id)."""
    listed = subprocess.run(
        [cli, "ps", "--filter", f"label=shoal.job-id={job_id}", "--format", "{{.ID}}"],
        capture_output=True, text=True, timeout=60,
    ).stdout.split()
    for container in listed:
        pid = subprocess.run([cli, "inspect", "--format", "{{.State.Pid}}", container],
                             capture_output=True, text=True, timeout=60).stdout.strip()
        if pid.isdigit() and int(pid) > 0:
            return container, int(pid)
    return None


def container_exists(cli: str, container: str) -> bool:
    return subprocess.run([cli, "container", "exists", container], capture_output=True, timeout=60).returncode == 0
