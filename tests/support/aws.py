"""boto3 against a LocalCluster's AWS Batch edge: access keys, clients, waiting on final states."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

REGION = "us-east-1"
ACCOUNT = "000000000000"
KEYS = {
    "admin": ("AKIASHOALADMIN00001", "admin-secret-0123456789abcdef"),
    "submitter": ("AKIASHOALSUBMIT0001", "submitter-secret-0123456789ab"),
    "reader": ("AKIASHOALREADER0001", "reader-secret-0123456789abcdef"),
}
FINAL = ("SUCCEEDED", "FAILED")


def write_credentials(directory: Path) -> Path:
    path = directory / "aws-credentials.yaml"
    path.write_text("".join(
        f"- {{name: {role}, access_key_id: {key}, secret_access_key: {secret}, role: {role}}}\n"
        for role, (key, secret) in KEYS.items()
    ))
    path.chmod(0o600)
    return path


def batch_client(url: str, role: str = "admin", *, secret: str | None = None, key: str | None = None) -> Any:
    """boto3's batch client as a user would make it; no retries, so a refusal shows at once."""
    access, real_secret = KEYS[role]
    return boto3.client(
        "batch", endpoint_url=url, region_name=REGION,
        aws_access_key_id=key or access, aws_secret_access_key=secret or real_secret,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=60),
    )


def wait_final(client: Any, job_ids: list[str], timeout: float = 90.0) -> dict[str, dict]:
    """Poll DescribeJobs until every job is SUCCEEDED or FAILED (an observable condition)."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        found: dict[str, dict] = {}
        for i in range(0, len(job_ids), 100):
            for job in client.describe_jobs(jobs=job_ids[i : i + 100])["jobs"]:
                found[job["jobId"]] = job
        if len(found) == len(job_ids) and all(j["status"] in FINAL for j in found.values()):
            return found
        if time.monotonic() > deadline:
            waiting = {k: v["status"] for k, v in found.items() if v["status"] not in FINAL}
            raise AssertionError(f"timed out waiting for final states: {waiting}")
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


def wait_status(client: Any, job_id: str, status: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = client.describe_jobs(jobs=[job_id])["jobs"][0]
        if job["status"] == status:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} is {job['status']}, not {status}")
        time.sleep(0.1)
