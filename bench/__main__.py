"""`python -m bench`: shoal's benchmark suite, optionally side by side with Slurm.

    .venv/bin/python -m bench [--quick] [--scenario NAME ...] [--runs 3] [--json PATH]
                              [--with-slurm] [--slurm-runs 1] [--profile] [--plot PATH]

Every scenario starts its own etcd, controller(s) and agents (shoal.devcluster.LocalCluster),
runs, and stops them. With --runs N each scenario runs N times and the table shows medians (the
JSON keeps every run). --with-slurm also installs and runs Slurm on this host (root, Debian:
bench/slurm/setup.sh) in its stock and its tuned configuration. --profile records the
controller with py-spy during the scenarios and prints where its time went.

Benchmarks, not tests: nothing here asserts on time. See docs/benchmarks.md for the results.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import psutil

from bench import harness as H
from bench import report
from bench.scenarios import SCENARIOS


def machine() -> dict[str, str]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    etcd = subprocess.run(
        ["etcd", "--version"], capture_output=True, text=True, check=False
    ).stdout.splitlines()
    return {
        "cpu": cpu,
        "logical_cpus": str(psutil.cpu_count()),
        "memory_gib": f"{psutil.virtual_memory().total / 2**30:.1f}",
        "os": platform.platform(),
        "python": platform.python_version(),
        "etcd": etcd[0] if etcd else "?",
        "load_at_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def _aggregate(runs: list[dict[str, float | str]]) -> dict[str, dict]:
    keys = dict.fromkeys(k for r in runs for k in r)
    out = {}
    for key in keys:
        values = [r.get(key) for r in runs]
        numbers = [v for v in values if isinstance(v, float | int)]
        if len(numbers) == len(values):
            out[key] = {"median": H.median(numbers), "runs": numbers}
        else:
            text = next((v for v in values if isinstance(v, str)), None)
            out[key] = {"median": text, "runs": values}
    return out


def run_system(name: str, fn_by_scenario: dict, scenarios: list[str], runs: int, call) -> dict:  # noqa: ANN001
    results: dict[str, dict] = {}
    for scenario in scenarios:
        if scenario not in fn_by_scenario:
            continue
        collected = []
        for i in range(runs):
            print(f"[bench] {name} {scenario} run {i + 1}/{runs} ...", file=sys.stderr, flush=True)
            started = time.monotonic()
            try:
                collected.append(call(fn_by_scenario[scenario]))
            except Exception as err:  # noqa: BLE001 - one failed scenario must not sink the run
                traceback.print_exc()
                collected.append({"error": f"{type(err).__name__}: {err}"})
            print(f"[bench] ... {time.monotonic() - started:.1f}s: {json.dumps(collected[-1], default=str)}",
                  file=sys.stderr, flush=True)  # fmt: skip
        results[scenario] = _aggregate(collected)
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes (a smoke run of the harness)")
    p.add_argument(
        "--scenario", action="append", choices=list(SCENARIOS), help="run only this one (repeatable)"
    )
    p.add_argument("--runs", type=int, default=1, help="runs per scenario; the table shows medians")
    p.add_argument("--json", type=Path, default=None, help="where to write results (default bench/results/)")
    p.add_argument("--with-slurm", action="store_true", help="also run Slurm here (root; installs it)")
    p.add_argument(
        "--slurm-runs", type=int, default=1, help="runs per Slurm scenario (default 1: Slurm is slow)"
    )
    p.add_argument("--profile", action="store_true", help="py-spy the controller during the shoal scenarios")
    p.add_argument("--plot", type=Path, default=None, help="also write the plot (PNG) here")
    p.add_argument(
        "--scale-jobs", type=int, default=0, help="jobs queued by the scale scenario (default 100,000)"
    )
    p.add_argument(
        "--scale-agents", type=int, default=0, help="simulated agents of the scale scenario (default 1,000)"
    )
    p.add_argument("--workdir", type=Path, default=None, help="scratch directory (default: a temp dir)")
    args = p.parse_args(argv)
    scenarios = args.scenario or list(SCENARIOS)

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    json_path = args.json or H.ROOT / "bench" / "results" / f"bench-{stamp}.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    profile_dir = json_path.with_suffix("") if args.profile else None
    doc: dict = {
        "command": "python -m bench "
        + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": machine(),
        "runs": args.runs,
        "quick": args.quick,
        "results": {},
    }
    with tempfile.TemporaryDirectory(prefix="shoal-bench-", dir=args.workdir) as tmp:
        ctx = H.Context(
            workdir=Path(tmp),
            quick=args.quick,
            profile_dir=profile_dir,
            scale_jobs=args.scale_jobs,
            scale_agents=args.scale_agents,
        )
        doc["results"]["shoal"] = run_system("shoal", SCENARIOS, scenarios, args.runs, lambda fn: fn(ctx))
    if args.with_slurm:
        from bench.slurm import run as slurm

        try:
            for mode in ("stock", "tuned"):
                doc["results"][f"slurm-{mode}"] = run_system(
                    f"slurm-{mode}", slurm.SCENARIOS, scenarios, args.slurm_runs,
                    lambda fn, mode=mode: fn(mode, args.quick),
                )  # fmt: skip
        finally:
            slurm.teardown()
    if profile_dir is not None and profile_dir.exists():
        doc["profiles"] = {
            f.stem: H.summarize_profile(f) for f in sorted(profile_dir.glob("*.txt")) if f.stat().st_size
        }
    doc["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
    json_path.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    print(report.text_table(doc["results"]))
    for name, prof in doc.get("profiles", {}).items():
        print(f"\nprofile {name} ({prof['samples'][0][1] if prof['samples'] else 0} samples), top self time:")
        for func, share in prof["self"][:8]:
            print(f"  {share:5.1f}%  {func}")
    if args.plot:
        report.plot(doc["results"], args.plot)
    print(f"\nresults: {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
