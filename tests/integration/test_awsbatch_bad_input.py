"""Bad input through boto3 gets a ClientError naming the field, and leaves etcd exactly as it was."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from controller.store.etcd import EtcdClient
from shoal.devcluster import LocalCluster
from tests.support.aws import KEYS, batch_client, write_credentials

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def keyspace(cluster: LocalCluster) -> dict[bytes, tuple[bytes, int]]:
    """Every key under the cluster's prefix with its value and mod revision."""

    async def read() -> dict[bytes, tuple[bytes, int]]:
        async with EtcdClient([cluster.etcd_endpoint]) as etcd:
            kvs, _ = await etcd.get_prefix(cluster.prefix.encode())
        return {kv.key: (kv.value, kv.mod_revision) for kv in kvs}

    return asyncio.run(read())


CE_ORDER = [{"order": 1, "computeEnvironment": "default"}]
POLICY = "arn:aws:batch:us-east-1:000000000000:scheduling-policy"
BAD_CALLS = [
    ("SubmitJob", "jobQueue: ", dict(jobName="x", jobQueue="nope", jobDefinition="d")),
    ("SubmitJob", "jobDefinition: ", dict(jobName="x", jobQueue="default", jobDefinition="nope")),
    ("SubmitJob", "containerOverrides.memory: ", dict(jobName="x", jobQueue="default", jobDefinition="d", containerOverrides={"memory": 1})),
    # fair share: a FIFO queue takes no share identifier; a fair-share one needs one
    ("SubmitJob", "shareIdentifier: job queue 'default' has no scheduling policy (FIFO)",
     dict(jobName="x", jobQueue="default", jobDefinition="d", shareIdentifier="a")),
    ("SubmitJob", "schedulingPriorityOverride: job queue 'default' has no scheduling policy",
     dict(jobName="x", jobQueue="default", jobDefinition="d", schedulingPriorityOverride=5)),
    ("SubmitJob", "shareIdentifier: is required on job queue 'fq'", dict(jobName="x", jobQueue="fq", jobDefinition="d")),
    ("SubmitJob", "shareIdentifier: must be 1-255 letters", dict(jobName="x", jobQueue="fq", jobDefinition="d", shareIdentifier="a*")),
    ("SubmitJob", "schedulingPriorityOverride: must be 0..9999",
     dict(jobName="x", jobQueue="fq", jobDefinition="d", shareIdentifier="a", schedulingPriorityOverride=10000)),
    # multi-node: overrides need a multinode definition, a node count in range, every node alike
    ("SubmitJob", "nodeOverrides: job definition 'd:1' is type container",
     dict(jobName="x", jobQueue="default", jobDefinition="d", nodeOverrides={"numNodes": 2})),
    ("SubmitJob", "nodeOverrides.numNodes: must be 1..128", dict(jobName="x", jobQueue="default", jobDefinition="mnp",
                                                                  nodeOverrides={"numNodes": 500})),
    ("SubmitJob", "nodeOverrides.numNodes: must be above the mainNode 1 of job definition 'mnp:1' (got 1)",
     dict(jobName="x", jobQueue="default", jobDefinition="mnp", nodeOverrides={"numNodes": 1})),
    ("SubmitJob", "nodeOverrides.nodePropertyOverrides[0].targetNodes: '1:' is not every node (0..1): not supported by shoal",
     dict(jobName="x", jobQueue="default", jobDefinition="mnp", nodeOverrides={"nodePropertyOverrides": [
         {"targetNodes": "1:", "containerOverrides": {"command": ["x"]}}]})),
    ("SubmitJob", "nodeOverrides.nodePropertyOverrides[0].targetNodes: '0:5' names node 5",
     dict(jobName="x", jobQueue="default", jobDefinition="mnp", nodeOverrides={"nodePropertyOverrides": [{"targetNodes": "0:5"}]})),
    ("SubmitJob", "jobDefinition: job definition 'nope' does not exist",
     dict(jobName="x", jobQueue="default", jobDefinition="nope", nodeOverrides={"numNodes": 2})),
    ("SubmitJob", "array", dict(jobName="x", jobQueue="default", jobDefinition="d", arrayProperties={"size": 1})),
    ("SubmitJob", "dependsOn", dict(jobName="x", jobQueue="default", jobDefinition="d",
                                     dependsOn=[{"jobId": "00000000-0000-4000-8000-000000000000"}])),
    ("SubmitJob", "region 'eu-west-1'", dict(jobName="x", jobQueue="arn:aws:batch:eu-west-1:000000000000:job-queue/default", jobDefinition="d")),
    ("SubmitJob", "jobName: ", dict(jobName="bad name!", jobQueue="default", jobDefinition="d")),
    ("RegisterJobDefinition", "containerProperties.jobRoleArn: not supported by shoal",
     dict(jobDefinitionName="e", type="container", containerProperties={"command": ["true"], "jobRoleArn": "arn:aws:iam::1:role/r"})),
    ("RegisterJobDefinition", "nodeProperties.nodeRangeProperties[0]: missing key 'container'", dict(
        jobDefinitionName="e", type="multinode", nodeProperties={"numNodes": 2, "mainNode": 0, "nodeRangeProperties": [{"targetNodes": "0:"}]})),
    ("RegisterJobDefinition", "nodeProperties.numNodes: must be 1..128", dict(jobDefinitionName="e", type="multinode", nodeProperties={
        "numNodes": 129, "mainNode": 0, "nodeRangeProperties": [{"targetNodes": "0:", "container": {"command": ["true"]}}]})),
    ("RegisterJobDefinition", "nodeProperties.mainNode: must be a node index below num_nodes 2", dict(
        jobDefinitionName="e", type="multinode", nodeProperties={
            "numNodes": 2, "mainNode": 2, "nodeRangeProperties": [{"targetNodes": "0:", "container": {"command": ["true"]}}]})),
    ("RegisterJobDefinition", "node(s) 1 are in no range", dict(jobDefinitionName="e", type="multinode", nodeProperties={
        "numNodes": 2, "mainNode": 0, "nodeRangeProperties": [{"targetNodes": "0", "container": {"command": ["true"]}}]})),
    ("RegisterJobDefinition", "nodeProperties.nodeRangeProperties[0].instanceTypes: not supported by shoal", dict(
        jobDefinitionName="e", type="multinode", nodeProperties={"numNodes": 1, "mainNode": 0, "nodeRangeProperties": [
            {"targetNodes": "0", "container": {"command": ["true"]}, "instanceTypes": ["p3.2xlarge"]}]})),
    ("RegisterJobDefinition", "schedulingPriority: expected a whole number 0-9999", dict(
        jobDefinitionName="e", type="container", containerProperties={"command": ["true"]}, schedulingPriority=10000)),
    ("RegisterJobDefinition", "attempts", dict(jobDefinitionName="e", type="container", containerProperties={"command": ["true"]},
                                               retryStrategy={"attempts": 11})),
    ("CreateJobQueue", "compute", dict(jobQueueName="q", priority=1, computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "nope"}])),
    ("CreateJobQueue", "tags: not supported by shoal", dict(jobQueueName="q", priority=1, computeEnvironmentOrder=CE_ORDER, tags={"a": "b"})),
    ("CreateJobQueue", "already exists", dict(jobQueueName="default", priority=1, computeEnvironmentOrder=CE_ORDER)),
    ("CreateJobQueue", "schedulingPolicyArn: scheduling policy 'p' does not exist",
     dict(jobQueueName="q", priority=1, computeEnvironmentOrder=CE_ORDER, schedulingPolicyArn=f"{POLICY}/p")),
    ("CreateJobQueue", "schedulingPolicyArn: 'fair' is not an ARN",
     dict(jobQueueName="q", priority=1, computeEnvironmentOrder=CE_ORDER, schedulingPolicyArn="fair")),
    ("CreateJobQueue", "schedulingPolicyArn: 'arn:aws:batch:us-east-1:000000000000:job-queue/fq' is a job-queue ARN",
     dict(jobQueueName="q", priority=1, computeEnvironmentOrder=CE_ORDER, schedulingPolicyArn="arn:aws:batch:us-east-1:000000000000:job-queue/fq")),
    ("UpdateJobQueue", "schedulingPolicyArn: job queue 'default' is a FIFO queue", dict(jobQueue="default", schedulingPolicyArn=f"{POLICY}/fair")),
    ("UpdateJobQueue", "schedulingPolicyArn: scheduling policy 'gone' does not exist", dict(jobQueue="fq", schedulingPolicyArn=f"{POLICY}/gone")),
    ("CreateComputeEnvironment", "FARGATE is not supported", dict(computeEnvironmentName="c", type="MANAGED",
                                                                 computeResources={"type": "FARGATE", "maxvCpus": 4, "subnets": ["s"]})),
    ("CreateComputeEnvironment", "shoal:provisioner", dict(computeEnvironmentName="c", type="MANAGED", computeResources={"type": "EC2", "maxvCpus": 4})),
    ("CreateComputeEnvironment", "computeResources.instanceTypes: not supported by shoal",
     dict(computeEnvironmentName="c", type="MANAGED", computeResources={"type": "EC2", "maxvCpus": 4, "instanceTypes": ["optimal"],
                                                                      "tags": {"shoal:provisioner": "local"}})),
    ("CreateComputeEnvironment", "serviceRole: not supported by shoal", dict(computeEnvironmentName="c", type="UNMANAGED", serviceRole="r")),
    ("UpdateComputeEnvironment", "does not exist", dict(computeEnvironment="nope", state="DISABLED")),
    ("DeleteJobQueue", "ENABLED", dict(jobQueue="default")),
    ("DeregisterJobDefinition", "'nope:1' does not exist", dict(jobDefinition="nope:1")),
    ("CancelJob", "jobId: ", dict(jobId="not-a-job-id", reason="x")),
    ("CreateComputeEnvironment", "unmanagedvCpus: not supported by shoal: a fair-share queue's computeReservation",
     dict(computeEnvironmentName="c", type="UNMANAGED", unmanagedvCpus=16)),
    ("UpdateComputeEnvironment", "unmanagedvCpus: not supported by shoal", dict(computeEnvironment="default", unmanagedvCpus=16)),
    ("CreateSchedulingPolicy", "fairsharePolicy: is required (shareDecaySeconds", dict(name="p")),
    ("UpdateSchedulingPolicy", "fairsharePolicy: is required", dict(arn=f"{POLICY}/fair")),
    ("CreateSchedulingPolicy", "already exists", dict(name="fair", fairsharePolicy={})),
    ("CreateSchedulingPolicy", "fairsharePolicy.shareDistribution[0].weightFactor: must be 0.0001..999.9999",
     dict(name="p", fairsharePolicy={"shareDistribution": [{"shareIdentifier": "a", "weightFactor": 0}]})),
    ("CreateSchedulingPolicy", "fairsharePolicy.computeReservation: must be 0..99", dict(name="p", fairsharePolicy={"computeReservation": 100})),
    ("CreateSchedulingPolicy", "fairsharePolicy.shareDecaySeconds: must be 0..604800", dict(name="p", fairsharePolicy={"shareDecaySeconds": 604801})),
    ("CreateSchedulingPolicy", "overlaps", dict(name="p", fairsharePolicy={"shareDistribution": [
        {"shareIdentifier": "UserA*"}, {"shareIdentifier": "UserA1"}]})),
    ("CreateSchedulingPolicy", "quotaSharePolicy: not supported by shoal: there are no quota shares",
     dict(name="p", quotaSharePolicy={"idleResourceAssignmentStrategy": "FIFO"})),
    ("UpdateSchedulingPolicy", "scheduling policy 'nope' does not exist", dict(arn=f"{POLICY}/nope", fairsharePolicy={})),
    ("UpdateSchedulingPolicy", "arn: 'fair' is not an ARN", dict(arn="fair", fairsharePolicy={})),
    ("DeleteSchedulingPolicy", "used by job queue(s) fq", dict(arn=f"{POLICY}/fair")),
    ("DeleteSchedulingPolicy", "region 'eu-west-1'", dict(arn="arn:aws:batch:eu-west-1:000000000000:scheduling-policy/fair")),
    ("DescribeSchedulingPolicies", "arns[1]: 'arn:aws:batch:us-east-1:000000000000:job/x' is a job ARN",
     dict(arns=[f"{POLICY}/fair", "arn:aws:batch:us-east-1:000000000000:job/x"])),
    ("ListSchedulingPolicies", "maxResults: at most 100", dict(maxResults=101)),
    ("ListJobs", "multiNodeJobId: give only one of", dict(jobQueue="default", multiNodeJobId="00000000-0000-4000-8000-000000000000")),
    ("CreateQuotaShare", "there are no quota shares", dict(quotaShareName="s", jobQueue="fq", capacityLimits=[{"maxCapacity": 1, "capacityUnit": "VCPU"}],
                                                          resourceSharingConfiguration={"strategy": "LEND"}, preemptionConfiguration={"inSharePreemption": "ENABLED"})),
    ("TagResource", "not supported by shoal", dict(resourceArn="arn:aws:batch:us-east-1:000000000000:job-queue/default", tags={"a": "b"})),
    ("CreateConsumableResource", "not supported by shoal", dict(consumableResourceName="r")),
]


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


def test_bad_input_is_a_client_error_naming_the_field_and_writes_nothing(cluster_factory, tmp_path) -> None:  # noqa: ANN001
    creds = write_credentials(tmp_path)
    cluster = cluster_factory(agents=0, http_port=0, controller_args=["--aws-credentials-file", str(creds)])
    batch = batch_client(cluster.http_url)
    batch.register_job_definition(jobDefinitionName="d", type="container", containerProperties={"command": ["true"]})
    batch.register_job_definition(jobDefinitionName="mnp", type="multinode", nodeProperties={
        "numNodes": 2, "mainNode": 1, "nodeRangeProperties": [{"targetNodes": "0:", "container": {"command": ["true"]}}]})
    policy = batch.create_scheduling_policy(name="fair", fairsharePolicy={"shareDistribution": [{"shareIdentifier": "a"}]})
    batch.create_job_queue(jobQueueName="fq", priority=1, computeEnvironmentOrder=CE_ORDER, schedulingPolicyArn=policy["arn"])
    before = keyspace(cluster)
    for operation, words, params in BAD_CALLS:
        with pytest.raises(ClientError) as err:
            getattr(batch, _snake(operation))(**params)
        error = err.value.response["Error"]
        assert error["Code"] == "ClientException", (operation, error)
        assert words in error["Message"], (operation, words, error["Message"])
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # Refused before anything runs: a wrong secret, an unknown key.
    with pytest.raises(ClientError) as err:
        batch_client(cluster.http_url, secret="this-is-not-the-secret").create_job_queue(
            jobQueueName="q", priority=1, computeEnvironmentOrder=CE_ORDER)
    assert err.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError) as err:
        batch_client(cluster.http_url, key="AKIAUNKNOWNKEY00001").submit_job(jobName="x", jobQueue="default", jobDefinition="d")
    assert err.value.response["Error"] == {"Code": "UnrecognizedClientException",
                                           "Message": "The security token included in the request is invalid."}
    assert keyspace(cluster) == before


def test_unsigned_and_malformed_requests_get_aws_error_shapes(cluster_factory, tmp_path) -> None:  # noqa: ANN001
    creds = write_credentials(tmp_path)
    cluster = cluster_factory(agents=0, http_port=0, controller_args=[
        "--aws-credentials-file", str(creds), "--rate-limit", "0.001", "--rate-burst", "2"])

    def post(path: str, body: bytes) -> tuple[int, str, dict]:
        request = urllib.request.Request(cluster.http_url + path, data=body, method="POST")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=10)
        return err.value.code, err.value.headers["x-amzn-errortype"], json.loads(err.value.read())

    status, code, body = post("/v1/listjobs", b"{}")
    assert (status, code, body["message"]) == (403, "MissingAuthenticationTokenException", "Missing Authentication Token")
    assert body["__type"] == code
    status, code, _ = post("/v1/nosuchthing", b"{}")
    assert (status, code) == (404, "UnknownOperationException")
    # The gRPC side's per-client rate limit (here a burst of 2, then 1 per 1000 s): refusals count too.
    assert post("/v1/listjobs", b"{}")[:2] == (403, "MissingAuthenticationTokenException")
    status, code, body = post("/v1/listjobs", b"{}")
    assert (status, code) == (429, "TooManyRequestsException") and "rate limit" in body["message"]
    assert KEYS  # the file's keys exist; none was used above


def test_without_credentials_file_loopback_requests_are_not_verified(cluster_factory) -> None:  # noqa: ANN001
    cluster = cluster_factory(agents=0, http_port=0)
    batch = batch_client(cluster.http_url, key="AKIAANYTHING0000001", secret="anything-at-all-goes")
    assert [q["jobQueueName"] for q in batch.describe_job_queues()["jobQueues"]] == ["default"]
    request = urllib.request.Request(cluster.http_url + "/v1/describejobqueues", data=b"not json", method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=10)
    assert err.value.code == 400 and err.value.headers["x-amzn-errortype"] == "ClientException"
    assert "not valid JSON" in json.loads(err.value.read())["message"]
