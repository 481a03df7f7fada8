"""Plumbing shared by the scenarios: clusters, clocks, percentiles, RSS, profiles, metrics."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from shoal import Client
from shoal.devcluster import LocalCluster
from shoal.v1 import types_pb2

ROOT = Path(__file__).resolve().parent.parent

# Short timings, as the integration tests use them (tests/integration/conftest.py).
FAST_CONTROLLER = ["--lease-ttl", "2", "--heartbeat-interval", "0.5", "--agent-lost-timeout", "6",
                   "--reconnect-grace", "0.5", "--kill-grace", "2"]  # fmt: skip
FAST_AGENT = ["--fence-timeout", "4", "--kill-grace", "1"]
# Every real agent offers the same fixed capacity: 2 vCPUs, so 2 one-vCPU jobs at a time.
AGENT_CAPACITY = ["--vcpus", "2", "--memory-mib", "2048"]
AGENT_SLOTS = 2

FINAL = (types_pb2.JOB_STATUS_SUCCEEDED, types_pb2.JOB_STATUS_FAILED)


class ScenarioError(RuntimeError):
    pass


@dataclass
class Context:
    """What every scenario gets: sizes, a scratch directory, where profiles go."""

    workdir: Path
    quick: bool = False
    profile_dir: Path | None = None
    scale_jobs: int = 0
    """Size of the scale scenario (0: 100,000, or 3,000 with --quick)."""
    scale_agents: int = 0
    """Simulated agents of the scale scenario (0: 1,000, or 50 with --quick)."""
    log: Callable[[str], None] = field(default=lambda msg: print(msg, file=sys.stderr, flush=True))

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def scratch(self, name: str) -> Path:
        path = self.workdir / f"{name}-{time.monotonic_ns()}"
        path.mkdir(parents=True)
        return path


def controller_supports(flag: str) -> bool:
    """Whether `shoal controller` in this tree has a command-line flag (e.g. --metrics-listen)."""
    out = subprocess.run(
        [sys.executable, "-m", "controller", "--help"], capture_output=True, text=True, cwd=ROOT, check=False
    )
    return flag in out.stdout


@contextlib.contextmanager
def local_cluster(
    ctx: Context,
    name: str,
    *,
    agents: int,
    controllers: int = 1,
    controller_args: list[str] | None = None,
    agent_args: list[str] | None = None,
) -> Iterator[LocalCluster]:
    """A fresh etcd + controller(s) + agents (own data dir), stopped on exit."""
    cluster = LocalCluster(
        data_dir=ctx.scratch(name),
        agents=agents,
        controllers=controllers,
        controller_args=list(controller_args or []),
        agent_args=AGENT_CAPACITY + list(agent_args or []),
    )
    cluster.start(timeout=120)
    try:
        yield cluster
    finally:
        cluster.stop()
        reap_strays(cluster.data_dir)


def reap_strays(data_dir: Path) -> None:
    """Kill what a kill -9'd agent left behind: its jobs' process groups and log writers.

    Found by the cluster's data directory in their command line (log writers) or in the job's
    environment (the job runs in the agent's state directory tree).
    """
    marker = str(data_dir)
    for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
        try:
            hit = any(marker in part for part in proc.info["cmdline"] or ()) or marker in (
                proc.info["cwd"] or ""
            )
            if not hit:
                hit = any(marker in v for v in proc.environ().values())
            if hit and proc.pid != os.getpid():
                os.killpg(os.getpgid(proc.pid), signal.SIGKILL)
        except (psutil.Error, OSError):
            continue


def leadership_losses(cluster: LocalCluster) -> int:
    """How often a controller of `cluster` logged losing its leadership (its log files)."""
    total = 0
    for proc in cluster.controller_procs:
        with contextlib.suppress(OSError):
            total += proc.log_path.read_text(errors="replace").count('"leadership lost"')
    return total


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), linear interpolation between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def median(values: list[float]) -> float:
    return statistics.median(values)


def rss_mib(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


class RssSampler:
    """Samples a process's RSS in a thread; `peak` is the largest seen."""

    def __init__(self, pid: int, every: float = 0.25) -> None:
        self.pid, self.every = pid, every
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(psutil.Error):
                self.peak = max(self.peak, rss_mib(self.pid))
            self._stop.wait(self.every)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class JobWatch:
    """Counts jobs of one queue reaching SUCCEEDED/FAILED, from a WatchJobs stream in a thread."""

    def __init__(self, address: str, queue: str = "default") -> None:
        self.address, self.queue = address, queue
        self.final: dict[str, int] = {}
        self.running_at: dict[str, float] = {}
        self._lock = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._client = Client(address, timeout=30)

    def _run(self) -> None:
        while not self._stop:
            try:
                for event in self._client.watch_jobs(queue=self.queue):
                    job = event.job
                    if job.status in FINAL:
                        with self._lock:
                            self.final[job.job_id] = job.status
                            self._lock.notify_all()
                    if self._stop:
                        return
            except Exception:  # noqa: BLE001 - re-open: the server re-sends current states
                if self._stop:
                    return
                time.sleep(0.2)

    def start(self) -> JobWatch:
        self._thread.start()
        return self

    def wait_for(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.final) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(min(left, 1.0))
        return True

    def close(self) -> None:
        self._stop = True
        self._client.close()


def count_status(client: Client, status: str) -> int:
    """0 when no job has `status`, else 1 (one page of one summary: cheap on the server)."""
    return sum(1 for _ in _first(client.list_jobs(status=status, page_size=1)))


def _first(it: Iterator[object]) -> Iterator[object]:
    for item in it:
        yield item
        return


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, every: float = 0.05) -> float:
    """Poll until true; returns the time it took. Raises ScenarioError on timeout."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise ScenarioError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)
    return time.monotonic() - start


# ---------------------------------------------------------------------------------- profiling


class Profile:
    """`py-spy record` of one process for the duration of a `with` block (raw collapsed stacks)."""

    def __init__(self, pid: int, out: Path | None, rate: int = 100) -> None:
        self.pid, self.out, self.rate = pid, out, rate
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Profile:
        pyspy = Path(sys.executable).with_name("py-spy")
        if self.out is None or not pyspy.exists():
            return self
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [str(pyspy), "record", "--pid", str(self.pid), "--rate", str(self.rate), "--format", "raw",
             "--output", str(self.out), "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        time.sleep(0.5)  # let it attach
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def summarize_profile(path: Path, top: int = 15) -> dict[str, list[tuple[str, float]]]:
    """Self and inclusive (total) share of samples per function from a py-spy raw profile."""
    self_counts: dict[str, int] = {}
    total_counts: dict[str, int] = {}
    samples = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(f) for f in stack.split(";")]
        if frames and frames[0].startswith("process "):
            frames = frames[1:]
        if frames and frames[0].startswith("thread "):
            frames = frames[1:]
        if not frames:
            continue
        samples += count
        self_counts[frames[-1]] = self_counts.get(frames[-1], 0) + count
        for name in set(frames):
            total_counts[name] = total_counts.get(name, 0) + count
    if not samples:
        return {"self": [], "total": [], "samples": []}

    def ranked(counts: dict[str, int]) -> list[tuple[str, float]]:
        return [
            (n, round(100 * c / samples, 1)) for n, c in sorted(counts.items(), key=lambda kv: -kv[1])[:top]
        ]

    return {"self": ranked(self_counts), "total": ranked(total_counts), "samples": [("samples", samples)]}


_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")


def _frame_name(frame: str) -> str:
    """'place (controller/scheduler/placement.py:42)' -> 'place (controller/scheduler/placement.py)'."""
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    file = m["file"]
    for marker in ("/site-packages/", str(ROOT) + "/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{m['func']} ({file})"


# ---------------------------------------------------------------------------------- metrics


def scrape_metrics(address: str) -> dict[str, float]:
    """Prometheus text exposition from http://address/metrics as {sample name with labels: value}."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        with contextlib.suppress(ValueError):
            samples[name] = float(value)
    return samples
