"""Where a scenario's CPU goes, by kind of process (not a test).

    .venv/bin/python -m bench.cpu_by_process --scenario e2e

Runs one scenario of `python -m bench` while sampling, every 0.5 s, the CPU time (user +
system, reaped children included) of every process on the machine, grouped by kind: etcd,
controller, agent, the agents' log writer, the bench itself, anything else by name. Also prints
how busy the machine was. Short-lived processes (a job's `sh` and `true`) are counted in the
agent that reaped them. The numbers are CPU seconds over the scenario; divide by the jobs run
for a cost per job.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import threading
import time

import psutil

KINDS = (
    ("logwriter.py", "agent log writer"),
    ("-m controller", "controller"),
    ("-m agent", "agent"),
    ("bin/etcd", "etcd"),
    ("-m bench", "bench client"),
)


def kind_of(proc: psutil.Process) -> str | None:
    try:
        cmdline = " ".join(proc.cmdline())
        for needle, kind in KINDS:
            if needle in cmdline:
                return kind
        return proc.name()
    except psutil.Error:
        return None


def sample(stop: threading.Event, interval: float = 0.5) -> tuple[collections.Counter[str], float, float]:
    """CPU seconds by kind until `stop`; and the machine's busy and idle CPU seconds."""
    totals: collections.Counter[str] = collections.Counter()
    last: dict[tuple[int, float], float] = {}
    me = os.getpid()
    start = psutil.cpu_times()
    while not stop.is_set():
        for proc in psutil.process_iter():
            if proc.pid == me:
                continue
            try:
                t = proc.cpu_times()
                key = (proc.pid, proc.create_time())
            except psutil.Error:
                continue
            # The bench's own process reaps nothing that matters; everything else's children
            # (jobs, gates) are charged to it once reaped.
            used = t.user + t.system + t.children_user + t.children_system
            kind = kind_of(proc)
            if kind is None:
                continue
            if key in last:
                totals[kind] += used - last[key]
            last[key] = used
        stop.wait(interval)
    end = psutil.cpu_times()
    busy = sum(getattr(end, f) - getattr(start, f) for f in ("user", "system", "irq", "softirq", "nice"))
    idle = (end.idle + end.iowait) - (start.idle + start.iowait)
    return totals, busy, idle


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.cpu_by_process", description=__doc__.splitlines()[0])
    p.add_argument("--scenario", default="e2e", help="the `python -m bench` scenario to run (default e2e)")
    args = p.parse_args()
    stop = threading.Event()
    result: list = []
    sampler = threading.Thread(target=lambda: result.append(sample(stop)), daemon=True)
    sampler.start()
    started = time.monotonic()
    bench = subprocess.run(
        [sys.executable, "-m", "bench", "--scenario", args.scenario, "--runs", "1", "--json", os.devnull],
        check=False,
    )
    elapsed = time.monotonic() - started
    stop.set()
    sampler.join()
    totals, busy, idle = result[0]
    # The bench process reaps the cluster's processes at the end: their time would count twice.
    totals.pop("bench client", None)
    print(f"\n{args.scenario}: {elapsed:.1f} s; machine busy {busy:.1f} CPU-s, idle {idle:.1f} CPU-s "
          f"({100 * busy / max(busy + idle, 1e-9):.0f}% busy)")  # fmt: skip
    for kind, seconds in totals.most_common(10):
        print(f"  {seconds:7.1f} CPU-s  {kind}")
    return bench.returncode


if __name__ == "__main__":
    sys.exit(main())
