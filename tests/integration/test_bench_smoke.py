"""The benchmark harness runs end to end on a tiny size (the numbers are not checked: not a benchmark)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]


def test_quick_submit_run_prints_a_table_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--scenario", "submit", "--runs", "1", "--json", str(out),
         "--workdir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=110,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "scenario" in proc.stdout and "shoal" in proc.stdout
    assert "submit, SubmitJobs / sbatch, 1 client" in proc.stdout
    doc = json.loads(out.read_text())
    submit = doc["results"]["shoal"]["submit"]
    assert "error" not in submit, submit
    assert submit["batch_1c_jobs_per_s"]["runs"] and submit["etcd_txn128_jobs_per_s"]["runs"]
    assert doc["machine"]["logical_cpus"]


def test_cli_bench_runs_the_front_and_the_python_cli(tmp_path: Path) -> None:
    out = tmp_path / "cli.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.cli", "--calls", "4", "--samples", "2", "--rounds", "1", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=110,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "native front" in proc.stdout and "SHOAL_NATIVE=0" in proc.stdout
    shoal = json.loads(out.read_text())["shoal"]
    # scripts/bootstrap put the front in place of the console script; both paths submitted.
    assert shoal["native front"] is True
    assert shoal["loop submit, HTTP edge, calls/s"]["runs"] and shoal["loop submit, HTTP edge, Python CLI, calls/s"]["runs"]
    assert shoal["jobs in the cluster at the end"] >= 4 + 4 + 1
