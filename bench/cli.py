"""`python -m bench.cli`: the `shoal` command as scripts run it, one process per call, beside Slurm's.

    .venv/bin/python -m bench.cli [--calls 200] [--samples 30] [--rounds 3] [--with-slurm] [--json PATH]
                                  [--baseline OTHER/.venv/bin/shoal]

Starts a local cluster (etcd, one controller with its HTTP edge, one agent of 2 vCPUs running
the jobs as processes), then measures, each as the median over --rounds:

* `shoal submit -- true` in a bash `for` loop of --calls calls (calls/s), over the HTTP edge
  (`SHOAL_ADDR=http://...,HOST:PORT`, what `shoal up` prints): through the virtualenv's `shoal`
  (the native front, shoal/native/front.c, where scripts/bootstrap could build it) and through
  the Python CLI alone (SHOAL_NATIVE=0); and over gRPC only (a quarter of the calls: each takes
  ~10x longer);
* the wall time of single calls (median of --samples, each a fresh process, as in a loop):
  `shoal submit`, `shoal describe ID`, `shoal jobs list`, `shoal wait ID` (a finished job),
  `shoal --help`, and `python -c pass` (the interpreter's own floor);
* with --baseline, another checkout's `shoal` (e.g. the commit before this work) against the
  same cluster over gRPC: its loop rate and its `--help`, for a before/after from one run;
* with --with-slurm, on a fresh single-node Slurm (bench/slurm/setup.sh stock): the same
  `sbatch --wrap true` loop and single calls of `sbatch`, `scontrol show job ID` (describe),
  `squeue` (jobs list), `sbatch --help`. The shoal cluster is stopped first, so each system has
  the machine to itself.

Benchmarks, not tests: nothing asserts on time. Results: docs/benchmarks.md (CLI start-up).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import harness as H
from shoal import native
from shoal.devcluster import LocalCluster, free_port

SHOAL = str(Path(sys.executable).parent / "shoal")
SETUP = Path(__file__).resolve().parent / "slurm" / "setup.sh"


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def loop_rate(command: str, calls: int, env: dict[str, str]) -> float:
    """calls/s of `command` run `calls` times in a bash for loop (stdout to /dev/null)."""
    script = f"for i in $(seq {calls}); do {command} >/dev/null || exit 1; done"
    start = time.perf_counter()
    subprocess.run(["bash", "-c", script], check=True, env=env)
    return calls / (time.perf_counter() - start)


def call_ms(argv: list[str], calls: int, env: dict[str, str]) -> float:
    """Median wall time in ms of `argv` run as a fresh process, `calls` times."""
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, check=False)
        times.append(time.perf_counter() - start)
        if proc.returncode not in (0,):
            raise H.ScenarioError(f"{shlex.join(argv)} exited {proc.returncode}: {proc.stderr.decode()[-300:]}")
    return statistics.median(times) * 1000


def rounds(fn, n: int) -> dict[str, object]:  # noqa: ANN001
    values = [fn() for _ in range(n)]
    return {"median": statistics.median(values), "runs": values}


def shoal_side(calls: int, samples: int, n_rounds: int, scratch: Path, baseline: str = "") -> dict[str, object]:
    http_port = free_port()
    cluster = LocalCluster(
        data_dir=scratch / "shoal", agents=1, http_port=http_port,
        agent_args=[*H.AGENT_CAPACITY, "--runtime", "process"],
    )  # fmt: skip
    cluster.start(timeout=120)
    try:
        fast = {**os.environ, "SHOAL_ADDR": f"{cluster.http_url},{cluster.address}"}
        grpc = {**os.environ, "SHOAL_ADDR": cluster.address}
        job = subprocess.run([SHOAL, "submit", "--", "true"], env=fast, capture_output=True, text=True, check=True).stdout.strip()
        subprocess.run([SHOAL, "wait", job], env=fast, capture_output=True, check=True)
        out: dict[str, object] = {"load_at_start": load(), "native front": native.is_front(Path(SHOAL))}
        python_cli = {**fast, "SHOAL_NATIVE": "0"}
        out["python -c pass, ms"] = rounds(lambda: call_ms([sys.executable, "-c", "pass"], samples, fast), n_rounds)
        out["shoal --help, ms"] = rounds(lambda: call_ms([SHOAL, "--help"], samples, fast), n_rounds)
        submit = f"{shlex.quote(SHOAL)} submit -- true"
        out["loop submit, HTTP edge, calls/s"] = rounds(lambda: loop_rate(submit, calls, fast), n_rounds)
        out["loop submit, HTTP edge, Python CLI, calls/s"] = rounds(lambda: loop_rate(submit, calls, python_cli), n_rounds)
        out["submit, HTTP edge, Python CLI, ms"] = rounds(
            lambda: call_ms([SHOAL, "submit", "--", "true"], samples, python_cli), n_rounds
        )
        out["loop submit, gRPC, calls/s"] = rounds(lambda: loop_rate(submit, max(1, calls // 4), grpc), n_rounds)
        for label, env in (("HTTP edge", fast), ("gRPC", grpc)):
            out[f"submit, {label}, ms"] = rounds(lambda e=env: call_ms([SHOAL, "submit", "--", "true"], samples, e), n_rounds)
            out[f"describe, {label}, ms"] = rounds(lambda e=env: call_ms([SHOAL, "describe", job], samples, e), n_rounds)
            out[f"wait (finished job), {label}, ms"] = rounds(lambda e=env: call_ms([SHOAL, "wait", job], samples, e), n_rounds)
            out[f"jobs list --queue default --status RUNNING, {label}, ms"] = rounds(
                lambda e=env: call_ms([SHOAL, "jobs", "list", "--queue", "default", "--status", "RUNNING"], samples, e), n_rounds
            )
        if baseline:
            old = f"{shlex.quote(baseline)} submit -- true"
            out["baseline loop submit, gRPC, calls/s"] = rounds(lambda: loop_rate(old, max(1, calls // 4), grpc), n_rounds)
            out["baseline --help, ms"] = rounds(lambda: call_ms([baseline, "--help"], samples, grpc), n_rounds)
            out["baseline"] = baseline
        listed = subprocess.run([SHOAL, "jobs", "list", "--quiet"], env=fast, capture_output=True, text=True, check=True)
        out["jobs in the cluster at the end"] = len(listed.stdout.split())
        out["load_at_end"] = load()
        return out
    finally:
        cluster.stop()
        H.reap_strays(cluster.data_dir)


def slurm_side(calls: int, samples: int, n_rounds: int) -> dict[str, object]:
    subprocess.run(["sh", str(SETUP), "stock", "2"], check=True, capture_output=True, text=True)
    env = dict(os.environ)
    try:
        out: dict[str, object] = {"load_at_start": load()}
        out["loop sbatch --wrap true, calls/s"] = rounds(
            lambda: loop_rate("sbatch -o /dev/null --wrap true", calls, env), n_rounds
        )
        job = subprocess.run(["sbatch", "--parsable", "-o", "/dev/null", "--wrap", "true"], capture_output=True,
                             text=True, check=True).stdout.strip().split(";")[0]  # fmt: skip
        out["sbatch, ms"] = rounds(lambda: call_ms(["sbatch", "-o", "/dev/null", "--wrap", "true"], samples, env), n_rounds)
        out["scontrol show job ID, ms"] = rounds(lambda: call_ms(["scontrol", "show", "job", job], samples, env), n_rounds)
        out["squeue, ms"] = rounds(lambda: call_ms(["squeue"], samples, env), n_rounds)
        out["sbatch --help, ms"] = rounds(lambda: call_ms(["sbatch", "--help"], samples, env), n_rounds)
        out["load_at_end"] = load()
        return out
    finally:
        subprocess.run(["sh", str(SETUP), "teardown"], check=False, capture_output=True)


def _m(side: dict[str, object], key: str) -> float | None:
    value = side.get(key)
    return value["median"] if isinstance(value, dict) else None  # type: ignore[index, return-value]


def table(result: dict[str, dict[str, object]]) -> str:
    shoal, slurm = result["shoal"], result.get("slurm", {})

    def fmt(v: float | None, digits: int = 1) -> str:
        return "-" if v is None else f"{v:,.{digits}f}"

    front = "native front" if shoal.get("native front") else "Python console script: no native front built"
    rows = [
        (f"`shoal submit -- true` in a shell loop (HTTP edge; {front})", "calls/s",
         _m(shoal, "loop submit, HTTP edge, calls/s"), _m(slurm, "loop sbatch --wrap true, calls/s"),
         ">= 50 and >= 25 % of sbatch"),
        ("`shoal submit -- true` in a shell loop (HTTP edge; Python CLI, SHOAL_NATIVE=0)", "calls/s",
         _m(shoal, "loop submit, HTTP edge, Python CLI, calls/s"), _m(slurm, "loop sbatch --wrap true, calls/s"), ""),
        ("`shoal submit -- true` in a shell loop (gRPC only)", "calls/s", _m(shoal, "loop submit, gRPC, calls/s"),
         _m(slurm, "loop sbatch --wrap true, calls/s"), ""),
        ("`shoal submit` one call (HTTP edge) / `sbatch`", "ms", _m(shoal, "submit, HTTP edge, ms"), _m(slurm, "sbatch, ms"), ""),
        ("`shoal submit` one call (HTTP edge; Python CLI)", "ms", _m(shoal, "submit, HTTP edge, Python CLI, ms"), None, ""),
        ("`shoal submit` one call (gRPC)", "ms", _m(shoal, "submit, gRPC, ms"), None, ""),
        ("`shoal describe ID` (HTTP edge) / `scontrol show job ID`", "ms", _m(shoal, "describe, HTTP edge, ms"),
         _m(slurm, "scontrol show job ID, ms"), ""),
        ("`shoal describe ID` (gRPC)", "ms", _m(shoal, "describe, gRPC, ms"), None, ""),
        ("`shoal jobs list` (HTTP edge) / `squeue`", "ms", _m(shoal, "jobs list --queue default --status RUNNING, HTTP edge, ms"),
         _m(slurm, "squeue, ms"), ""),
        ("`shoal jobs list` (gRPC)", "ms", _m(shoal, "jobs list --queue default --status RUNNING, gRPC, ms"), None, ""),
        ("`shoal wait ID`, finished job (HTTP edge)", "ms", _m(shoal, "wait (finished job), HTTP edge, ms"), None, ""),
        ("`shoal wait ID`, finished job (gRPC)", "ms", _m(shoal, "wait (finished job), gRPC, ms"), None, ""),
        ("`shoal --help` / `sbatch --help`", "ms", _m(shoal, "shoal --help, ms"), _m(slurm, "sbatch --help, ms"), "<= 100"),
        ("`python -c pass` (the floor)", "ms", _m(shoal, "python -c pass, ms"), None, ""),
        ("before: baseline `shoal submit -- true` in a shell loop (gRPC)", "calls/s",
         _m(shoal, "baseline loop submit, gRPC, calls/s"), None, ""),
        ("before: baseline `shoal --help`", "ms", _m(shoal, "baseline --help, ms"), None, ""),
    ]  # fmt: skip
    lines = ["| command | unit | shoal | Slurm | target |", "|---|---|--:|--:|---|"]
    for name, unit, ours, theirs, target in rows:
        lines.append(f"| {name} | {unit} | {fmt(ours)} | {fmt(theirs)} | {target} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.cli", description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=200, help="calls per loop and per single-call median (default %(default)s)")
    p.add_argument("--samples", type=int, default=30, help="calls per single-call median (default %(default)s)")
    p.add_argument("--rounds", type=int, default=3, help="rounds; the table shows their median (default %(default)s)")
    p.add_argument("--with-slurm", action="store_true", help="also run Slurm's side (root, Debian: installs slurm-wlm)")
    p.add_argument("--json", type=Path, help="write every round's numbers here")
    p.add_argument("--baseline", default="", metavar="SHOAL", help="another checkout's shoal executable to compare with")
    ns = p.parse_args(argv)
    result: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="shoal-bench-cli-") as scratch:
        started = time.strftime("%Y-%m-%dT%H:%M:%S UTC", time.gmtime())
        result["shoal"] = shoal_side(ns.calls, ns.samples, ns.rounds, Path(scratch), ns.baseline)
        if ns.with_slurm:
            result["slurm"] = slurm_side(ns.calls, ns.samples, ns.rounds)
    result["run"] = {"started": started, "command": shlex.join(["python", "-m", "bench.cli", *(argv or sys.argv[1:])]),
                     "calls": ns.calls, "samples": ns.samples, "rounds": ns.rounds}  # fmt: skip
    if ns.json:
        ns.json.parent.mkdir(parents=True, exist_ok=True)
        ns.json.write_text(json.dumps(result, indent=2))
    print(table(result))
    print(f"\nload (1, 5, 15 min): shoal {result['shoal']['load_at_start']} -> {result['shoal']['load_at_end']}", end="")
    if "slurm" in result:
        print(f"; Slurm {result['slurm']['load_at_start']} -> {result['slurm']['load_at_end']}", end="")
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
