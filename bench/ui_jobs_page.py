"""The dashboard's Jobs page at 100,000 jobs: its first response time (not a test).

    .venv/bin/python bench/ui_jobs_page.py [--jobs 100000] [--runs 5] [--json PATH]

Starts its own etcd and controller (no agents: the jobs stay RUNNABLE, which is what a backed-up
cluster looks like), fills the default queue with arrays of 10,000 children each (the leader
expands them into 100,000 job records in its view), then times what a browser opening
`/ui/#/jobs` waits for before it can show the list: the page's HTML (`GET /ui/`) and its first
data request (`GET /ui/api/jobs?limit=50`, one page of ListJobs, newest first). Each request is
made `--runs` times on a fresh connection; the medians are printed, for the default page and
for a few filters (a status, a name prefix that matches nothing: the worst case, every job is
looked at; the oldest end; the second page). Nothing asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shoal import Client  # noqa: E402
from shoal.devcluster import LocalCluster  # noqa: E402

ARRAY = 10_000


def timed_get(url: str) -> tuple[float, bytes]:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as resp:
        body = resp.read()
    return (time.perf_counter() - start) * 1000, body


def wait_for_jobs(base: str, want: int, timeout: float = 600) -> int:
    """Until the view counts `want` jobs (the overview's counters: no scan)."""
    deadline = time.monotonic() + timeout
    while True:
        _, body = timed_get(base + "/ui/api/overview")
        total = sum(sum(q["counts"].values()) for q in json.loads(body)["queues"])
        if total >= want or time.monotonic() > deadline:
            return total
        time.sleep(0.5)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=100_000, help="array children to submit (multiple of 10,000)")
    p.add_argument("--runs", type=int, default=5, help="requests per measurement; the median is shown")
    p.add_argument("--json", default="", help="also write the results here")
    ns = p.parse_args()
    arrays = max(1, ns.jobs // ARRAY)
    with tempfile.TemporaryDirectory(prefix="shoal-bench-ui-") as tmp:
        cluster = LocalCluster(data_dir=Path(tmp), agents=0, http_port=0,
                               controller_args=["--max-queued-jobs-per-queue", "0", "--rate-limit", "0"])  # fmt: skip
        cluster.start()
        try:
            base = cluster.http_url
            with Client(cluster.address, timeout=120) as client:
                for i in range(arrays):
                    client.submit_job(f"sweep-{i}", command=["true"], array_size=ARRAY, vcpus=0.5)
            total = wait_for_jobs(base, arrays * (ARRAY + 1))
            load = " ".join(f"{x:.2f}" for x in os.getloadavg())
            print(f"jobs in the view: {total:,}; load average before measuring: {load}")
            _, first = timed_get(base + "/ui/api/jobs?limit=50")
            token = json.loads(first)["next_token"]
            cases = {
                "HTML (GET /ui/)": "/ui/",
                "jobs, first page (newest 50)": "/ui/api/jobs?limit=50",
                "jobs, second page": f"/ui/api/jobs?limit=50&token={token}",
                "jobs, status RUNNABLE": "/ui/api/jobs?limit=50&status=RUNNABLE",
                "jobs, oldest first": "/ui/api/jobs?limit=50&order=oldest",
                "jobs, name prefix matching none": "/ui/api/jobs?limit=50&prefix=no-such-name",
                "overview (counts, nodes, per-minute)": "/ui/api/overview",
            }
            results: dict[str, dict[str, float]] = {}
            for name, path in cases.items():
                times = [timed_get(base + path)[0] for _ in range(ns.runs)]
                results[name] = {"median_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times)}
            page = [results["HTML (GET /ui/)"]["median_ms"], results["jobs, first page (newest 50)"]["median_ms"]]
            print(f"\n{'request':40} {'median ms':>10} {'min':>8} {'max':>8}")
            for name, r in results.items():
                print(f"{name:40} {r['median_ms']:10.1f} {r['min_ms']:8.1f} {r['max_ms']:8.1f}")
            print(f"\njobs page first response (HTML + first data request, medians): {sum(page):.1f} ms at {total:,} jobs")
            if ns.json:
                Path(ns.json).write_text(json.dumps({"jobs": total, "runs": ns.runs, "load": load, "results": results,
                                                     "first_response_ms": sum(page)}, indent=2) + "\n")  # fmt: skip
        finally:
            cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
