"""With --tls-cert the AWS endpoint is HTTPS (SigV4 inside it); gRPC tokens without AWS keys refuse it."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from shoal import certs
from tests.support.aws import KEYS, write_credentials

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def _pki(tmp_path: Path) -> tuple[Path, list[str]]:
    d = tmp_path / "pki"
    certs.init_ca(d)
    certs.issue(d, "ctl", "server", hosts=["127.0.0.1", "localhost"])
    (d / "tokens.yaml").write_text("- {name: root, token: admin-token-0123456789abcdef, role: admin}\n")
    args = ["--tls-cert", str(d / "ctl.pem"), "--tls-key", str(d / "ctl-key.pem"), "--tokens-file", str(d / "tokens.yaml")]
    return d, args


def test_https_endpoint_with_access_keys(cluster_factory, tmp_path) -> None:  # noqa: ANN001
    pki, tls = _pki(tmp_path)
    creds = write_credentials(tmp_path)
    cluster = cluster_factory(agents=0, http_port=0, controller_args=[*tls, "--aws-credentials-file", str(creds)],
                              ca_file=str(pki / "ca.pem"), token="admin-token-0123456789abcdef")
    url = "https://" + cluster.http_addrs[0]
    key, secret = KEYS["admin"]
    batch = boto3.client("batch", endpoint_url=url, region_name="us-east-1", verify=str(pki / "ca.pem"),
                         aws_access_key_id=key, aws_secret_access_key=secret)
    d = batch.register_job_definition(jobDefinitionName="tls", type="container", containerProperties={"command": ["true"]})
    job = batch.submit_job(jobName="tls", jobQueue="default", jobDefinition=d["jobDefinitionArn"])
    assert batch.describe_jobs(jobs=[job["jobId"]])["jobs"][0]["jobName"] == "tls"
    with pytest.raises(ClientError) as err:
        boto3.client("batch", endpoint_url=url, region_name="us-east-1", verify=str(pki / "ca.pem"),
                     aws_access_key_id="AKIAUNKNOWNKEY00001", aws_secret_access_key="x" * 20).describe_job_queues()
    assert err.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_grpc_tokens_without_access_keys_refuse_every_aws_request(cluster_factory, tmp_path) -> None:  # noqa: ANN001
    pki, tls = _pki(tmp_path)
    cluster = cluster_factory(agents=0, http_port=0, controller_args=tls,
                              ca_file=str(pki / "ca.pem"), token="admin-token-0123456789abcdef")
    batch = boto3.client("batch", endpoint_url="https://" + cluster.http_addrs[0], region_name="us-east-1",
                         verify=str(pki / "ca.pem"), aws_access_key_id="AKIAANYTHING0000001", aws_secret_access_key="y" * 20)
    with pytest.raises(ClientError) as err:
        batch.describe_job_queues()
    assert err.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert "--aws-credentials-file" in err.value.response["Error"]["Message"]
