"""The `aws batch` command (awscli from PyPI, in the test virtualenv) against a real cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.aws import KEYS, REGION, write_credentials

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

AWS = str(Path(sys.executable).parent / "aws")


def aws(url: str, home: Path, *args: str, secret: str | None = None) -> subprocess.CompletedProcess[str]:
    key, real_secret = KEYS["admin"]
    env = {
        "PATH": os.environ.get("PATH", ""), "HOME": str(home),
        "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret or real_secret, "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(home / "config"), "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
        "AWS_MAX_ATTEMPTS": "1",
    }
    return subprocess.run([AWS, "batch", *args, "--endpoint-url", url, "--output", "json"],
                          env=env, capture_output=True, text=True, timeout=60)


def ok(proc: subprocess.CompletedProcess[str]) -> dict:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout) if proc.stdout.strip() else {}


def test_aws_cli_registers_submits_describes_and_lists(cluster_factory, tmp_path) -> None:  # noqa: ANN001
    creds = write_credentials(tmp_path)
    cluster = cluster_factory(agents=1, http_port=0, controller_args=["--aws-credentials-file", str(creds)])
    url, home = cluster.http_url, tmp_path

    d = ok(aws(url, home, "register-job-definition", "--job-definition-name", "cli-def", "--type", "container",
               "--container-properties",
               '{"command": ["sh", "-c", "echo hi; exit 4"], "resourceRequirements": [{"type": "VCPU", "value": "1"}, '
               '{"type": "MEMORY", "value": "64"}]}',
               "--retry-strategy", "attempts=2"))
    assert d["jobDefinitionArn"].endswith(":job-definition/cli-def:1")
    job = ok(aws(url, home, "submit-job", "--job-name", "cli-job", "--job-queue", "default", "--job-definition", "cli-def"))
    array = ok(aws(url, home, "submit-job", "--job-name", "cli-array", "--job-queue", "default",
                   "--job-definition", "cli-def", "--array-properties", "size=3",
                   "--container-overrides", '{"command": ["true"]}'))

    deadline = time.monotonic() + 120
    while True:
        jobs = ok(aws(url, home, "describe-jobs", "--jobs", job["jobId"], array["jobId"]))["jobs"]
        if all(j["status"] in ("SUCCEEDED", "FAILED") for j in jobs) and len(jobs) == 2:
            break
        assert time.monotonic() < deadline, jobs
        time.sleep(0.5)
    by_id = {j["jobId"]: j for j in jobs}
    failed, succeeded = by_id[job["jobId"]], by_id[array["jobId"]]
    assert failed["status"] == "FAILED" and failed["statusReason"] == "Essential container in task exited"
    assert [a["container"]["exitCode"] for a in failed["attempts"]] == [4, 4]
    assert succeeded["status"] == "SUCCEEDED" and succeeded["arrayProperties"]["statusSummary"]["SUCCEEDED"] == 3

    # The CLI pages by itself (--page-size): every child comes back, over several requests.
    children = ok(aws(url, home, "list-jobs", "--array-job-id", array["jobId"], "--job-status", "SUCCEEDED",
                      "--page-size", "1"))["jobSummaryList"]
    assert sorted(c["jobId"] for c in children) == [f"{array['jobId']}:{i}" for i in range(3)]
    listed = ok(aws(url, home, "list-jobs", "--job-queue", "default", "--job-status", "FAILED"))["jobSummaryList"]
    assert [j["jobId"] for j in listed] == [job["jobId"]]

    # Bad input and a wrong secret: one readable line from the CLI, non-zero exit.
    bad = aws(url, home, "submit-job", "--job-name", "x", "--job-queue", "default", "--job-definition", "cli-def",
              "--share-identifier", "blue")
    assert bad.returncode != 0
    assert ("An error occurred (ClientException) when calling the SubmitJob operation: shareIdentifier: job queue "
            "'default' has no scheduling policy (FIFO)") in bad.stderr
    denied = aws(url, home, "describe-job-queues", secret="wrong-secret-wrong-secret")
    assert denied.returncode != 0 and "InvalidSignatureException" in denied.stderr
