"""Slurm's side of the bench: the same scenarios with sbatch and job arrays on this one host.

    .venv/bin/python -m bench.slurm.run [--mode stock|tuned] [--scenario NAME] [--quick]

Each scenario starts from a fresh slurmctld/slurmd (bench/slurm/setup.sh MODE SLOTS, which
installs Slurm from Debian's packages the first time and wipes its state), so one scenario's
finished-job records (kept MinJobAge seconds) never weigh on the next. The node offers as
many CPUs as the shoal cluster of the same scenario has vCPUs, so both run as many jobs at once.

What cannot be measured on one host is reported as a string with the reason, never as a number.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

from bench import harness as H

SETUP = Path(__file__).resolve().parent / "setup.sh"
E2E_SLOTS = 4 * H.AGENT_SLOTS  # shoal's end-to-end cluster: 4 agents x 2 vCPUs


def setup(mode: str, slots: int = E2E_SLOTS) -> None:
    subprocess.run(["sh", str(SETUP), mode, str(slots)], check=True, capture_output=True, text=True)


def teardown() -> None:
    subprocess.run(["sh", str(SETUP), "teardown"], check=False, capture_output=True)


def _sbatch(*args: str) -> str:
    out = subprocess.run(["sbatch", "--parsable", "-o", "/dev/null", *args], check=True,
                         capture_output=True, text=True)  # fmt: skip
    return out.stdout.strip().split(";")[0]


def _active_jobs() -> int:
    """Jobs (and array tasks) not yet finished, as squeue shows them."""
    out = subprocess.run(
        ["squeue", "-h", "-r", "-t", "PD,R,CG,CF", "-o", "%i"], capture_output=True, text=True, check=False
    )
    return len(out.stdout.split())


def _config(name: str) -> str:
    out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, check=True).stdout
    m = re.search(rf"^{name}\s*=\s*(\S+)", out, re.M)
    return m.group(1) if m else ""


# ------------------------------------------------------------------------------------- submit


def submit(mode: str, quick: bool) -> dict[str, float | str]:
    """Many sbatch calls (one client, then 4 in parallel) and job arrays; jobs are held so none runs."""
    n = 200 if quick else 2000
    out: dict[str, float | str] = {}
    for clients in (1, 4):
        setup(mode)
        start = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(lambda i: _sbatch("-H", "--wrap", "true"), range(n)))
        out[f"batch_{clients}c_jobs_per_s"] = n / (time.perf_counter() - start)
    setup(mode)
    # Array tasks count against MaxJobCount (10,000 in the stock configuration): stay under it,
    # or sbatch blocks retrying "Resource temporarily unavailable".
    limit = int(_config("MaxJobCount") or 10_000)
    total = min(2000 if quick else 20_000, limit // 2)
    size = min(total, int(_config("MaxArraySize") or 1001) - 1)
    out["array_jobs"] = float((total // size) * size)
    start = time.perf_counter()
    for _ in range(total // size):
        _sbatch("-H", f"--array=0-{size - 1}", "--wrap", "true")
    out["array_jobs_per_s"] = (total // size) * size / (time.perf_counter() - start)
    out["array_size"] = float(size)
    return out


# ---------------------------------------------------------------------------------- dispatch


def dispatch(mode: str, quick: bool) -> dict[str, float | str]:
    """One job at a time on an idle node; the job writes its own start time."""
    n = 10 if quick else 100
    setup(mode)
    latencies = []
    with tempfile.TemporaryDirectory(prefix="slurm-dispatch-") as tmp:
        for i in range(n + 2):
            stamp = Path(tmp) / str(i)
            t0 = time.time()
            _sbatch("--wrap", f"date +%s.%N > {stamp}.tmp && mv {stamp}.tmp {stamp}")
            H.wait_until(stamp.exists, 120, f"slurm job {i} to start", 0.005)
            started = float(stamp.read_text())
            if i >= 2:
                latencies.append(started - t0)
            H.wait_until(lambda: _active_jobs() == 0, 120, "the node to be idle again", 0.02)
    return {
        "p50_ms": H.percentile(latencies, 50) * 1000,
        "p99_ms": H.percentile(latencies, 99) * 1000,
        "max_ms": max(latencies) * 1000,
        "jobs": float(n),
    }


# -------------------------------------------------------------------------------- end to end


def end_to_end(mode: str, quick: bool) -> dict[str, float | str]:
    """1,000 jobs of `true` as one array (Slurm's cheapest way to submit them): submit to all done."""
    n = 200 if quick else 1000
    setup(mode)
    start = time.perf_counter()
    _sbatch(f"--array=0-{n - 1}", "--wrap", "true")
    H.wait_until(lambda: _active_jobs() == 0, 3600, "the array to finish", 0.1)
    elapsed = time.perf_counter() - start
    # One node of E2E_SLOTS CPUs: the shape of both shoal rows (4 agents x 2, 1 agent x 8).
    return {"jobs_per_s": n / elapsed, "one_agent_jobs_per_s": n / elapsed, "seconds": elapsed,
            "slots": float(E2E_SLOTS)}


# ------------------------------------------------------------------------------------- scale


def scale(mode: str, quick: bool) -> dict[str, float | str]:
    """slurmctld's memory with 20,000 queued (held) individual jobs; no 1,000-node drain on one host.

    20,000 rather than shoal's 100,000: at Slurm's sbatch rate 100,000 would take minutes per
    configuration, and stock Slurm refuses more than MaxJobCount=10,000 anyway.
    """
    n = 2000 if quick else 20_000
    setup(mode)
    if int(_config("MaxJobCount") or 10000) < n:
        return {
            "queued_rss_mib": f"n/a: MaxJobCount={_config('MaxJobCount')} < {n} in this configuration",
            "drain_s": "n/a: needs 1,000 slurmd hosts (Debian's Slurm is not built with multiple-slurmd)",
        }
    pid = int(Path("/run/slurm/slurmctld.pid").read_text())
    idle = H.rss_mib(pid)
    # Arrays would be one record each until they run; submit individual jobs, in parallel.
    start = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: _sbatch("-H", "--wrap", "true"), range(n)))
    queued = H.rss_mib(pid)
    return {
        "idle_rss_mib": idle,
        "queued_rss_mib": queued,
        "rss_per_job_kib": (queued - idle) * 1024 / n,
        "submit_jobs_per_s": n / (time.perf_counter() - start),
        "drain_s": "n/a: needs 1,000 slurmd hosts (Debian's Slurm is not built with multiple-slurmd)",
    }


# ---------------------------------------------------------------------------------- recovery


def recovery(mode: str, quick: bool) -> dict[str, float | str]:
    """kill -9 slurmd under a running, requeueable job: time until it runs again (bounded wait).

    Slurm declares a silent node DOWN after SlurmdTimeout (300 s by default) and only then
    requeues; a restarted slurmd would re-register at once, which is not the same scenario, so
    the job is given the full timeout. No backup controller exists on one host: no failover.
    """
    setup(mode)
    timeout = int(re.sub(r"\D", "", _config("SlurmdTimeout")) or 300)
    limit = 30 if quick else 60
    out: dict[str, float | str] = {
        "failover_s_default": "n/a: one host, no backup slurmctld",
        "failover_s_fast": "n/a: one host, no backup slurmctld",
        "handover_s_default": "n/a: one host, no backup slurmctld",
        "agent_kill_s_fast": "n/a: one host (the job cannot move to another node)",
    }
    job = _sbatch("--requeue", "--wrap", "sleep 600")
    H.wait_until(lambda: _state(job) == "RUNNING", 60, "the job to run", 0.05)
    H.wait_until(lambda: bool(_job_pids(job)), 30, "the job's processes", 0.05)
    # With slurmd dead nothing stops the job's slurmstepd and script: the bench does, by pid.
    leftovers = _job_pids(job)
    pid = int(Path("/run/slurm/slurmd.pid").read_text())
    os.kill(pid, 9)
    t_kill = time.monotonic()
    try:
        H.wait_until(lambda: _state(job) in ("PENDING", "REQUEUED"), limit, "the job to be requeued", 0.2)
        out["agent_kill_s_default"] = time.monotonic() - t_kill
    except H.ScenarioError:
        out["agent_kill_s_default"] = f"> {limit} s (not requeued; SlurmdTimeout={timeout} s)"
    subprocess.run(["scancel", job], check=False)
    for leftover in leftovers:
        with contextlib.suppress(psutil.Error):
            leftover.kill()
    return out


def _job_pids(job: str) -> list[psutil.Process]:
    """The job's processes on this node (`scontrol listpids`) and the slurmstepd above them."""
    out = subprocess.run(["scontrol", "listpids", job], capture_output=True, text=True, check=False).stdout
    procs: dict[int, psutil.Process] = {}
    for line in out.splitlines()[1:]:
        fields = line.split()
        if not fields or not fields[0].isdigit():
            continue
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(int(fields[0]))
            procs[proc.pid] = proc
            parent = proc.parent()
            if parent is not None and parent.name().startswith("slurmstepd"):
                procs[parent.pid] = parent
    return list(procs.values())


def _state(job: str) -> str:
    out = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True, check=False)
    return out.stdout.strip()


SCENARIOS = {
    "submit": submit,
    "dispatch": dispatch,
    "e2e": end_to_end,
    "scale": scale,
    "recovery": recovery,
}


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.slurm.run", description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=["stock", "tuned"], default="stock")
    p.add_argument("--scenario", action="append", choices=list(SCENARIOS))
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    results = {}
    try:
        for name in args.scenario or list(SCENARIOS):
            results[name] = SCENARIOS[name](args.mode, args.quick)
            print(json.dumps({name: results[name]}), flush=True)
    finally:
        teardown()


if __name__ == "__main__":
    main()
