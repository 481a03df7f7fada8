"""SubmitJob calls per second through boto3 (AWS Batch wire API, SigV4) beside shoal's gRPC SubmitJob.

    .venv/bin/python -m bench.awsapi [--calls 2000] [--json PATH]

One run: a fresh etcd + one controller (no agents, so the jobs stay queued and nothing else
competes for the CPU), one job definition, then from one client, one call at a time:
`--calls` boto3 `submit_job` calls against the HTTP edge with every request SigV4-signed and
verified; the same calls from a bare HTTP client (http.client, signed with the canonical-request
functions of controller/http/awsbatch/sigv4.py: the server's cost without botocore's); and
`--calls` gRPC `SubmitJob` calls with the Python SDK (shoal.Client), same queue and definition,
in alternating blocks of 100 so a change in the machine's load hits every side alike. Each call
is one durable etcd write. Benchmarks, not tests: nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import boto3
from botocore.config import Config

from controller.http.awsbatch import sigv4
from shoal import Client
from shoal.devcluster import LocalCluster

KEY, SECRET = "AKIASHOALBENCH00001", "bench-secret-0123456789abcdef"
BLOCK = 100


class SignedHttp:
    """A bare keep-alive HTTP client that signs each request (SigV4, as boto3 would)."""

    def __init__(self, address: str) -> None:
        self.host = address
        host, _, port = address.rpartition(":")
        self.conn = http.client.HTTPConnection(host, int(port))

    def post(self, path: str, payload: dict) -> dict:
        body = json.dumps(payload).encode()
        amz_date = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        headers = [("host", self.host), ("x-amz-date", amz_date), ("content-type", "application/x-amz-json-1.1")]
        signed = sorted(name for name, _ in headers)
        canonical = sigv4.canonical_request(
            sigv4.SignedRequest("POST", path, "", headers, body), signed, hashlib.sha256(body).hexdigest()
        )
        scope = f"{amz_date[:8]}/us-east-1/batch/aws4_request"
        key = sigv4.signing_key(SECRET, amz_date[:8], "us-east-1", "batch")
        signature = hmac.new(key, sigv4.string_to_sign(amz_date, scope, canonical).encode(), hashlib.sha256).hexdigest()
        auth = f"AWS4-HMAC-SHA256 Credential={KEY}/{scope}, SignedHeaders={';'.join(signed)}, Signature={signature}"
        self.conn.request("POST", path, body=body, headers={**dict(headers[1:]), "Authorization": auth})
        response = self.conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{path}: HTTP {response.status}: {data!r}")
        return json.loads(data)


def run(calls: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="shoal-bench-awsapi-") as tmp:
        creds = Path(tmp) / "aws.yaml"
        creds.write_text(f"- {{name: bench, access_key_id: {KEY}, secret_access_key: {SECRET}, role: admin}}\n")
        cluster = LocalCluster(data_dir=Path(tmp) / "cluster", agents=0, http_port=0,
                               controller_args=["--aws-credentials-file", str(creds), "--rate-limit", "0",
                                                "--max-queued-jobs-per-queue", "0"])
        cluster.start()
        try:
            batch = boto3.client("batch", endpoint_url=cluster.http_url, region_name="us-east-1",
                                 aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                                 config=Config(retries={"max_attempts": 1, "mode": "standard"}))
            batch.register_job_definition(jobDefinitionName="bench", type="container",
                                          containerProperties={"command": ["true"]})
            seconds = {"boto3": 0.0, "http": 0.0, "grpc": 0.0}
            bare = SignedHttp(cluster.http_addrs[0])
            body = {"jobName": "h", "jobQueue": "default", "jobDefinition": "bench"}
            with Client(cluster.address) as client:
                for _ in range(3):  # warm every path (connections, caches) before timing
                    batch.submit_job(jobName="warm", jobQueue="default", jobDefinition="bench")
                    bare.post("/v1/submitjob", body)
                    client.submit_job("warm", job_queue="default", job_definition="bench")
                done = 0
                while done < calls:
                    n = min(BLOCK, calls - done)
                    start = time.perf_counter()
                    for _ in range(n):
                        batch.submit_job(jobName="b", jobQueue="default", jobDefinition="bench")
                    seconds["boto3"] += time.perf_counter() - start
                    start = time.perf_counter()
                    for _ in range(n):
                        bare.post("/v1/submitjob", body)
                    seconds["http"] += time.perf_counter() - start
                    start = time.perf_counter()
                    for _ in range(n):
                        client.submit_job("g", job_queue="default", job_definition="bench")
                    seconds["grpc"] += time.perf_counter() - start
                    done += n
        finally:
            cluster.stop()
    return {
        "calls": calls,
        "boto3_submitjob_per_s": calls / seconds["boto3"],
        "http_submitjob_per_s": calls / seconds["http"],
        "grpc_submitjob_per_s": calls / seconds["grpc"],
        "load_at_end": os.getloadavg()[0],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.awsapi", description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=2000, help="SubmitJob calls per side (default %(default)s)")
    p.add_argument("--json", default="", metavar="PATH", help="also write the result as JSON here")
    ns = p.parse_args(argv)
    load = os.getloadavg()[0]
    result = run(ns.calls) | {"load_at_start": load}
    print(f"SubmitJob, 1 client, {ns.calls} calls each (load {load:.2f} at start, {result['load_at_end']:.2f} at end)")
    print(f"  boto3 -> AWS Batch API (SigV4): {result['boto3_submitjob_per_s']:8.0f} calls/s")
    print(f"  bare HTTP client, SigV4-signed: {result['http_submitjob_per_s']:8.0f} calls/s")
    print(f"  gRPC  -> shoal.v1 SubmitJob:    {result['grpc_submitjob_per_s']:8.0f} calls/s")
    if ns.json:
        Path(ns.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
