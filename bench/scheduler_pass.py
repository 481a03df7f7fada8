"""Time one scheduling pass: 100,000 runnable jobs onto 1,000 nodes (not a test).

    .venv/bin/python bench/scheduler_pass.py [--jobs N] [--nodes N] [--runs N]

The cluster: nodes of 16 vCPUs / 64 GiB (a quarter of them 64 vCPUs / 256 GiB) split over two
compute environments, some already partly used; five queues of different priorities sharing
them, one of them fair-share (a scheduling policy with 40 share identifiers, some matched by a
`prefix*` entry, decayed usage and running vCPUs per share, scheduling priorities, a compute
reservation: `--no-fairshare` makes it FIFO); jobs of a dozen shapes (0.5-8 vCPUs, 512 MiB-16
GiB) in shuffled submission order, a few needing the podman runtime. The data is built once,
with a fixed seed; only `place` is timed.

Three inputs are timed. "lanes": what the leader passes (its RUNNABLE index keeps each queue's
jobs in FIFO order between passes, so `place` gets per-queue lanes and sorts nothing); this is
the figure the bench reports. Then a flat `runnable` list in submission order with 2% of the
jobs out of place, and fully shuffled (the worst case for a caller that does not keep order:
the sort and the scattered memory access then cost about as much as the pass).
Prints the median over the runs and how many jobs were placed.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.scheduler import (  # noqa: E402
    EnvView,
    JobView,
    NodeView,
    QueueView,
    Resources,
    Snapshot,
    place,
)
from controller.scheduler.fairshare import FairShare  # noqa: E402
from controller.scheduler.placement import lanes_of  # noqa: E402

SHAPES = [
    (0.5, 512),
    (1, 1024),
    (1, 2048),
    (1, 4096),
    (2, 2048),
    (2, 4096),
    (2, 8192),
    (4, 4096),
    (4, 8192),
    (4, 16384),
    (8, 8192),
    (8, 16384),
]


SHARES = [f"team{i}" for i in range(30)] + [f"batch-{i}" for i in range(10)]


def fair_policy(rng: random.Random) -> FairShare:
    """A fair-share queue's policy and usage as a busy leader would pass them."""
    weights = {f"team{i}": float(1 + i % 4) for i in range(30)}
    weights["batch-*"] = 5.0
    return FairShare(
        weights=weights,
        decay_seconds=3600,
        compute_reservation=10,
        usage={share: rng.uniform(0, 500_000) for share in SHARES},
        running={share: rng.randrange(0, 200) * 1000 for share in SHARES},
        policy="bench",
    )


def build(n_jobs: int, n_nodes: int, *, shuffled: bool = False, seed: int = 7, fairshare: bool = True) -> Snapshot:
    rng = random.Random(seed)
    envs = {name: EnvView(name, True) for name in ("ondemand", "spot")}
    nodes = []
    for i in range(n_nodes):
        big = i % 4 == 0
        capacity = Resources(64_000 if big else 16_000, (256 if big else 64) * 1024)
        used = rng.choice([0, 0, 0, 1_000, 4_000])
        free = Resources(capacity.milli_vcpus - used, capacity.memory_mib - used)
        runtimes = frozenset({"process", "podman"}) if i % 10 == 0 else frozenset({"process"})
        env = "ondemand" if i % 2 == 0 else "spot"
        nodes.append(
            NodeView(f"node-{i:05d}", env, capacity, free, schedulable=i % 50 != 7, runtimes=runtimes)
        )
    queues = {
        "critical": QueueView("critical", 900, True, ("ondemand",)),
        "high": QueueView("high", 500, True, ("ondemand", "spot")),
        "default": QueueView("default", 100, True, ("spot", "ondemand")),
        "low": QueueView("low", 10, True, ("spot",)),
        "fair": QueueView("fair", 300, True, ("ondemand", "spot"), fairshare=fair_policy(rng) if fairshare else None),
    }
    queue_names = list(queues)
    jobs = []
    for i in range(n_jobs):
        vcpus, mem = rng.choice(SHAPES)
        runtime = "podman" if i % 97 == 0 else ""
        queue = rng.choice(queue_names)
        share, priority = (rng.choice(SHARES), rng.choice((0, 0, 0, 10, 50))) if queue == "fair" else ("", 0)
        jobs.append(
            JobView(
                f"{i:08d}-job",
                queue,
                Resources.from_vcpus(vcpus, mem),
                (1000 + i // 100, i % 100),
                runtime,
                share=share,
                priority=priority,
            )
        )
    if shuffled:
        rng.shuffle(jobs)
    else:
        # The leader keeps RUNNABLE jobs in submission order; a retried job re-enters the list
        # out of place. Displace 2% of the jobs to model that.
        for _ in range(n_jobs // 50):
            jobs.insert(rng.randrange(n_jobs), jobs.pop(rng.randrange(n_jobs)))
    return Snapshot(queues, envs, nodes, jobs)


def as_lanes(snapshot: Snapshot) -> Snapshot:
    """The same snapshot in the leader's form: per-queue lanes in FIFO order (built untimed)."""
    return Snapshot(snapshot.queues, snapshot.envs, snapshot.nodes, lanes=lanes_of(snapshot.runnable))


def time_passes(snapshot: Snapshot, runs: int, *, leader_form: bool = True) -> tuple[list[float], int, int]:
    """Times of `runs` passes over `snapshot` (in the leader's form unless told otherwise)."""
    if leader_form and snapshot.lanes is None:
        snapshot = as_lanes(snapshot)
    times = []
    placed = waiting = 0
    for _ in range(runs):
        start = time.perf_counter()
        plan = place(snapshot)
        times.append(time.perf_counter() - start)
        placed, waiting = len(plan.placements), len(plan.waiting)  # (resolving reasons: untimed)
    return times, placed, waiting


def cpu_passes(snapshot: Snapshot, runs: int) -> list[float]:
    """CPU seconds of `runs` passes (this process only): steadier than wall time on a machine
    that other work keeps busy, which stretches wall time but not the work done."""
    if snapshot.lanes is None:
        snapshot = as_lanes(snapshot)
    times = []
    for _ in range(runs):
        start = time.process_time()
        place(snapshot)
        times.append(time.process_time() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--nodes", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-fairshare", action="store_true", help="make the fifth queue FIFO too")
    args = parser.parse_args()
    for label, shuffled, lanes in (
        ("lanes, as the leader passes them", False, True),
        ("a flat list in submission order", False, False),
        ("a flat list, shuffled", True, False),
    ):
        snapshot = build(args.jobs, args.nodes, shuffled=shuffled, fairshare=not args.no_fairshare)
        times, placed, waiting = time_passes(snapshot, args.runs, leader_form=lanes)
        cpu = f", CPU median {statistics.median(cpu_passes(snapshot, args.runs)) * 1000:.1f} ms" if lanes else ""
        print(
            f"place(): {args.jobs} jobs x {args.nodes} nodes, runnable as {label}: "
            f"median {statistics.median(times) * 1000:.1f} ms over {args.runs} runs "
            f"(min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f}{cpu}); "
            f"{placed} placed, {waiting} waiting"
            + ("" if args.no_fairshare else "; one queue of the five is fair-share")
        )


if __name__ == "__main__":
    main()
