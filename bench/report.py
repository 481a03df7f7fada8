"""Turn a results JSON into the table (text / Markdown), the target check and the plot."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

SYSTEMS = ("shoal", "slurm-stock", "slurm-tuned")


def _ge(x: float, t: float) -> bool:
    return x >= t


def _le(x: float, t: float) -> bool:
    return x <= t


# (label, metric key "scenario.metric", unit, target (text, check, threshold), higher is better)
ROWS: list[tuple[str, str, str, tuple[str, Callable[[float, float], bool], float] | None, bool]] = [
    (
        "submit, SubmitJobs / sbatch, 1 client",
        "submit.batch_1c_jobs_per_s",
        "jobs/s",
        (">= 10,000", _ge, 10_000),
        True,
    ),
    ("submit, SubmitJobs / sbatch, 4 clients", "submit.batch_4c_jobs_per_s", "jobs/s", None, True),
    ("submit, job arrays", "submit.array_jobs_per_s", "jobs/s", None, True),
    ("raw etcd: 128-put txns of job records", "submit.etcd_txn128_jobs_per_s", "jobs/s", None, True),
    ("raw etcd: puts of 1,000-job values", "submit.etcd_batch_put_jobs_per_s", "jobs/s", None, True),
    ("shoal submit / raw etcd txns", "submit.fraction_of_etcd", "%", (">= 50%", _ge, 0.5), True),
    ("dispatch latency p50 (idle)", "dispatch.p50_ms", "ms", ("<= 50", _le, 50), False),
    ("dispatch latency p99 (idle)", "dispatch.p99_ms", "ms", ("<= 250", _le, 250), False),
    ("end to end, `true` jobs, 4 agents x 2 slots", "e2e.jobs_per_s", "jobs/s", (">= 300", _ge, 300), True),
    ("end to end, `true` jobs, 1 agent x 8 slots", "e2e.one_agent_jobs_per_s", "jobs/s", (">= 500", _ge, 500), True),
    ("scale: controller RSS, queue full (shoal 100k jobs, Slurm 20k)", "scale.queued_rss_mib", "MiB", ("<= 1024", _le, 1024), False),
    ("scale: controller memory per queued job", "scale.rss_per_job_kib", "KiB", None, False),
    ("scale: controller RSS, peak in drain", "scale.peak_rss_mib", "MiB", ("<= 1024", _le, 1024), False),
    ("scale: place() 100k jobs x 1k nodes", "scale.place_ms", "ms", ("<= 200", _le, 200), False),
    ("scale: live pass, placement decision, mean", "scale.decide_ms_mean", "ms", ("<= 200", _le, 200), False),
    ("scale: live pass incl. events + etcd writes, mean", "scale.pass_ms_mean", "ms", None, False),
    ("scale: drain 100k jobs, 1k agents", "scale.drain_s", "s", None, False),
    ("scale: drain rate", "scale.drain_jobs_per_s", "jobs/s", None, True),
    ("recovery: agent kill -9 -> running again (fast)", "recovery.agent_kill_s_fast", "s", None, False),
    ("recovery: agent kill -9 -> running again (default)", "recovery.agent_kill_s_default", "s", None, False),
    ("recovery: leader kill -9 -> new job running (fast)", "recovery.failover_s_fast", "s", None, False),
    (
        "recovery: leader kill -9 -> new job running (default)",
        "recovery.failover_s_default",
        "s",
        ("<= 5.5 (TTL + 0.5)", _le, 5.5),
        False,
    ),
    ("recovery: leader SIGTERM -> new job running (default)", "recovery.handover_s_default", "s", ("<= 1", _le, 1.0), False),
]


def value(results: dict[str, Any], system: str, key: str) -> float | str | None:
    scenario, metric = key.split(".", 1)
    entry = results.get(system, {}).get(scenario, {}).get(metric)
    if entry is None:
        return None
    return entry["median"] if isinstance(entry, dict) else entry


def fmt(v: float | str | None, unit: str) -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if math.isnan(v):
        return "-"
    if unit == "%":
        return f"{100 * v:.0f}%"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


# Rows whose shoal and Slurm numbers are of different sizes (see the label): not compared.
NOT_COMPARABLE = {"scale.queued_rss_mib"}


def target_status(results: dict[str, Any], key: str, target: tuple | None, higher: bool) -> str:
    """'met' / 'NOT met' for the target, and whether shoal beats both Slurm configurations."""
    shoal = value(results, "shoal", key)
    if not isinstance(shoal, float | int):
        return ""
    parts = []
    if target is not None:
        parts.append("met" if target[1](shoal, target[2]) else "NOT met")
    slurm = [value(results, s, key) for s in SYSTEMS[1:]] if key not in NOT_COMPARABLE else []
    slurm = [s for s in slurm if isinstance(s, float | int)]
    if slurm:
        better = all((shoal > s) if higher else (shoal < s) for s in slurm)
        parts.append("beats Slurm" if better else "Slurm ahead")
    return ", ".join(parts)


def table_rows(results: dict[str, Any]) -> list[list[str]]:
    rows = []
    for label, key, unit, target, higher in ROWS:
        cells = [fmt(value(results, s, key), unit) for s in SYSTEMS]
        if all(c == "-" for c in cells):
            continue
        rows.append(
            [label, unit, *cells, target[0] if target else "", target_status(results, key, target, higher)]
        )
    return rows


HEADER = ["scenario", "unit", "shoal", "Slurm stock", "Slurm tuned", "target", "result"]


def text_table(results: dict[str, Any]) -> str:
    rows = [HEADER, *table_rows(results)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = []
    for n, r in enumerate(rows):
        lines.append(
            "  ".join(c.ljust(widths[i]) if i < 2 else c.rjust(widths[i]) for i, c in enumerate(r)).rstrip()
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(results: dict[str, Any]) -> str:
    rows = table_rows(results)
    out = [
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join(["---", "---", "--:", "--:", "--:", "---", "---"]) + "|",
    ]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(out)


def plot(results: dict[str, Any], path: Path) -> None:
    """Throughput (log scale) and dispatch latency, shoal vs Slurm, as one small PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"shoal": "#1f77b4", "slurm-stock": "#d62728", "slurm-tuned": "#ff7f0e"}
    names = {"shoal": "shoal", "slurm-stock": "Slurm stock", "slurm-tuned": "Slurm tuned"}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4), dpi=90, gridspec_kw={"width_ratios": [3, 2]})
    groups = [("submit\n(1 client)", "submit.batch_1c_jobs_per_s"), ("submit\n(arrays)", "submit.array_jobs_per_s"),
              ("end to end", "e2e.jobs_per_s")]  # fmt: skip
    width = 0.27
    for i, system in enumerate(SYSTEMS):
        ys = [value(results, system, k) for _, k in groups]
        xs = [g + (i - 1) * width for g in range(len(groups))]
        ys = [y if isinstance(y, float | int) else 0 for y in ys]
        ax1.bar(xs, ys, width, label=names[system], color=colors[system])
    ax1.set_yscale("log")
    ax1.set_xticks(range(len(groups)), [g for g, _ in groups])
    ax1.set_ylabel("jobs/s (log)")
    ax1.set_title("Throughput (higher is better)")
    ax1.legend(fontsize=8)
    lat = [("p50", "dispatch.p50_ms"), ("p99", "dispatch.p99_ms")]
    for i, system in enumerate(SYSTEMS):
        ys = [value(results, system, k) for _, k in lat]
        ys = [y if isinstance(y, float | int) else 0 for y in ys]
        ax2.bar([g + (i - 1) * width for g in range(len(lat))], ys, width, color=colors[system])
    ax2.set_yscale("log")
    ax2.set_xticks(range(len(lat)), [g for g, _ in lat])
    ax2.set_ylabel("ms (log)")
    ax2.set_title("Submit-to-start latency (lower is better)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    """`python -m bench.report RESULTS.json [--plot PNG]`: the Markdown table (and plot) of a run."""
    import argparse
    import json

    p = argparse.ArgumentParser(prog="python -m bench.report", description=main.__doc__)
    p.add_argument("results", type=Path)
    p.add_argument("--plot", type=Path, default=None)
    args = p.parse_args()
    doc = json.loads(args.results.read_text())
    print(markdown_table(doc["results"]))
    for name, prof in doc.get("profiles", {}).items():
        print(f"\nprofile {name}: {prof['samples'][0][1] if prof['samples'] else 0} samples")
        print("  self:  " + "; ".join(f"{share}% {func}" for func, share in prof["self"][:10]))
        print("  total: " + "; ".join(f"{share}% {func}" for func, share in prof["total"][:40]))
    if args.plot:
        plot(doc["results"], args.plot)


if __name__ == "__main__":
    main()
