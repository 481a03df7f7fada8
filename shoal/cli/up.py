"""`shoal up`: a whole local cluster in one command (etcd, a controller, N agents)."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path

from shoal.devcluster import DevClusterError, LocalCluster, free_port


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="shoal up",
        description="Start a local shoal cluster: an etcd, a controller and N agents, each in its own "
        "process, plus a compute environment and a job queue named 'default'. Runs until "
        "Ctrl-C or SIGTERM, then stops everything it started.",
    )
    p.add_argument("--agents", type=int, default=2, help="number of node agents (default %(default)s)")
    p.add_argument(
        "--port",
        type=int,
        default=50051,
        help="controller port on 127.0.0.1 (default %(default)s; 0 = any free port)",
    )
    p.add_argument(
        "--http-port",
        "--aws-api-port",
        dest="http_port",
        type=int,
        default=8000,
        help="HTTP port on 127.0.0.1 for the AWS Batch API (boto3, `aws batch`) and the dashboard at /ui/ "
        "(default %(default)s; 0 = any free port, -1 = off)",
    )
    p.add_argument(
        "--agent-gpus",
        default="",
        metavar="N|ID,ID...",
        help="GPUs each agent declares (`shoal agent --gpus`: a count or device ids; e.g. 2 to try GPU "
        "scheduling on a host without GPUs); default: what nvidia-smi finds",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="keep etcd data, logs and agent state here (default: a temporary directory removed on exit)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    if ns.agents < 0 or ns.agents > 64:
        print("shoal: --agents must be between 0 and 64", file=sys.stderr)
        return 2
    port = ns.port or free_port()
    temporary = ns.data_dir is None
    data_dir = Path(tempfile.mkdtemp(prefix="shoal-up-")) if temporary else ns.data_dir.resolve()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    http_port = free_port() if ns.http_port == 0 else ns.http_port
    agent_args = ["--gpus", ns.agent_gpus] if ns.agent_gpus else []
    cluster = LocalCluster(data_dir=data_dir, agents=ns.agents, port=port, http_port=http_port, agent_args=agent_args)
    try:
        print(
            f"starting etcd, a controller on 127.0.0.1:{port} and {ns.agents} agent(s) (logs in {data_dir}) ...",
            file=sys.stderr,
            flush=True,
        )
        try:
            cluster.start()
        except DevClusterError as err:
            print(f"shoal: {err}", file=sys.stderr)
            return 1
        print(f"shoal cluster ready at {cluster.address}", flush=True)
        if cluster.http_url:
            print(f"  AWS Batch endpoint: {cluster.http_url}   (boto3 endpoint_url / aws --endpoint-url)", flush=True)
            print(f"  dashboard:          {cluster.http_url}/ui/", flush=True)
        # The HTTP edge first: the job commands start faster through it (shoal/cli/transport.py);
        # the gRPC address serves the rest (logs, nodes, queues, ...).
        addr = f"{cluster.http_url},{cluster.address}" if cluster.http_url else cluster.address
        print(
            f"  export SHOAL_ADDR={addr}\n"
            "  shoal submit -- echo hello     # then: shoal jobs list, shoal logs JOB_ID\n"
            "Ctrl-C stops the cluster.",
            file=sys.stderr,
            flush=True,
        )
        reported: set[str] = set()
        while not stop.is_set():
            stop.wait(0.5)
            # A process killed on purpose (to watch failover) is reported, not fatal: the rest
            # of the cluster keeps running, as it would on real hosts.
            procs = [*cluster.controller_procs, *cluster.agent_procs]
            if cluster.etcd is not None and cluster.etcd.process is not None:
                procs.append(cluster.etcd.process)
            for proc in procs:
                if not proc.alive() and proc.name not in reported:
                    reported.add(proc.name)
                    print(f"shoal: {proc.name} exited (log: {proc.log_path})", file=sys.stderr, flush=True)
        return 0
    finally:
        print("stopping ...", file=sys.stderr, flush=True)
        cluster.stop()
        if temporary:
            shutil.rmtree(data_dir, ignore_errors=True)
