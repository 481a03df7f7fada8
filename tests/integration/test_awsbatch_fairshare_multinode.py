"""boto3, unchanged, driving fair share and multi-node parallel jobs on a real cluster (etcd,
controller, two agents) over SigV4: scheduling policies by ARN, fair-share queues, share
identifiers and scheduling priorities; a 2-node job whose nodes are jobs `ID#0` and `ID#1`."""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.support.aws import ACCOUNT, REGION, batch_client, wait_final, write_credentials

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

ARN = f"arn:aws:batch:{REGION}:{ACCOUNT}"


def test_fair_share_through_boto3(cluster_factory, tmp_path: Path) -> None:  # noqa: ANN001
    creds = write_credentials(tmp_path)
    cluster = cluster_factory(http_port=0, controller_args=["--aws-credentials-file", str(creds)])
    batch = batch_client(cluster.http_url)

    created = batch.create_scheduling_policy(name="fair", fairsharePolicy={
        "shareDecaySeconds": 3600, "computeReservation": 10,
        "shareDistribution": [{"shareIdentifier": "teamA", "weightFactor": 0.5}, {"shareIdentifier": "ml*"}]},
        tags={"owner": "research"})
    assert created == {"name": "fair", "arn": f"{ARN}:scheduling-policy/fair", "ResponseMetadata": created["ResponseMetadata"]}
    policy_arn = created["arn"]
    q = batch.create_job_queue(jobQueueName="fair-q", priority=5, schedulingPolicyArn=policy_arn,
                               computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "default"}])
    (queue,) = batch.describe_job_queues(jobQueues=[q["jobQueueArn"]])["jobQueues"]
    assert queue["schedulingPolicyArn"] == policy_arn
    assert "schedulingPolicyArn" not in batch.describe_job_queues(jobQueues=["default"])["jobQueues"][0]

    d = batch.register_job_definition(jobDefinitionName="fair-def", type="container", schedulingPriority=30,
                                      containerProperties={"command": ["true"], "vcpus": 1, "memory": 64})
    (defn,) = batch.describe_job_definitions(jobDefinitions=[d["jobDefinitionArn"]])["jobDefinitions"]
    assert defn["schedulingPriority"] == 30 and defn["type"] == "container"

    def submit(name: str, share: str, **kw) -> str:  # noqa: ANN003
        return batch.submit_job(jobName=name, jobQueue="fair-q", jobDefinition="fair-def", shareIdentifier=share, **kw)["jobId"]

    plain = [submit(f"a{i}", "teamA") for i in range(3)]
    urgent = submit("urgent", "ml-vision", schedulingPriorityOverride=80)
    final = wait_final(batch, [*plain, urgent], timeout=120)
    assert {j["status"] for j in final.values()} == {"SUCCEEDED"}
    assert [(final[j]["shareIdentifier"], final[j]["schedulingPriority"]) for j in plain] == [("teamA", 30)] * 3
    assert (final[urgent]["shareIdentifier"], final[urgent]["schedulingPriority"]) == ("ml-vision", 80)
    assert final[urgent]["jobQueue"] == q["jobQueueArn"]

    # -- describe, list (paginated), update, delete
    batch.create_scheduling_policy(name="fair2", fairsharePolicy={"shareDistribution": [{"shareIdentifier": "x", "weightFactor": 2}]})
    batch.create_scheduling_policy(name="fair3", fairsharePolicy={})
    pages = list(batch.get_paginator("list_scheduling_policies").paginate(PaginationConfig={"PageSize": 1}))
    assert len(pages) == 3
    assert [p["arn"] for page in pages for p in page["schedulingPolicies"]] == [
        f"{ARN}:scheduling-policy/{n}" for n in ("fair", "fair2", "fair3")]
    (described,) = batch.describe_scheduling_policies(arns=[policy_arn])["schedulingPolicies"]
    assert described == {
        "name": "fair", "arn": policy_arn, "tags": {"owner": "research"},
        "fairsharePolicy": {"shareDecaySeconds": 3600, "computeReservation": 10, "shareDistribution": [
            {"shareIdentifier": "teamA", "weightFactor": 0.5}, {"shareIdentifier": "ml*", "weightFactor": 1.0}]},
    }
    assert batch.list_tags_for_resource(resourceArn=policy_arn)["tags"] == {"owner": "research"}
    batch.update_scheduling_policy(arn=policy_arn, fairsharePolicy={
        "shareDecaySeconds": 60, "shareDistribution": [{"shareIdentifier": "teamA", "weightFactor": 4}]})
    (updated,) = batch.describe_scheduling_policies(arns=[policy_arn])["schedulingPolicies"]
    assert updated["fairsharePolicy"] == {"shareDecaySeconds": 60, "computeReservation": 0,
                                          "shareDistribution": [{"shareIdentifier": "teamA", "weightFactor": 4.0}]}
    # A policy in use by a queue stays; the queue can move to another policy (not back to FIFO).
    with pytest.raises(ClientError) as err:
        batch.delete_scheduling_policy(arn=policy_arn)
    assert err.value.response["Error"]["Code"] == "ClientException" and "fair-q" in err.value.response["Error"]["Message"]
    batch.update_job_queue(jobQueue="fair-q", schedulingPolicyArn=f"{ARN}:scheduling-policy/fair2")
    assert batch.describe_job_queues(jobQueues=["fair-q"])["jobQueues"][0]["schedulingPolicyArn"] == f"{ARN}:scheduling-policy/fair2"
    batch.delete_scheduling_policy(arn=policy_arn)
    remaining = batch.describe_scheduling_policies(arns=[policy_arn, f"{ARN}:scheduling-policy/fair3"])["schedulingPolicies"]
    assert [p["name"] for p in remaining] == ["fair3"]
    assert [p["arn"] for p in batch.list_scheduling_policies()["schedulingPolicies"]] == [
        f"{ARN}:scheduling-policy/fair2", f"{ARN}:scheduling-policy/fair3"]


def test_two_node_parallel_job_through_boto3(cluster_factory, tmp_path: Path) -> None:  # noqa: ANN001
    creds = write_credentials(tmp_path)
    cluster = cluster_factory(agents=2, http_port=0, controller_args=["--aws-credentials-file", str(creds)])
    batch = batch_client(cluster.http_url)
    out = tmp_path / "out"
    out.mkdir()
    # The main node waits for the other node's file, so both end by their own exit 0.
    main = f'while [ ! -f {out}/$JOB-1 ]; do sleep 0.05; done; echo "$AWS_BATCH_JOB_NODE_INDEX/$AWS_BATCH_JOB_NUM_NODES" > {out}/$JOB-0'
    worker = f'echo "$AWS_BATCH_JOB_NODE_INDEX/$AWS_BATCH_JOB_NUM_NODES $GREETING" > {out}/$JOB-1.tmp && mv {out}/$JOB-1.tmp {out}/$JOB-1'
    d = batch.register_job_definition(jobDefinitionName="mnp", type="multinode", nodeProperties={
        "numNodes": 2, "mainNode": 0, "nodeRangeProperties": [
            {"targetNodes": "0", "container": {"command": ["sh", "-c", main], "vcpus": 1, "memory": 64,
                                               "environment": [{"name": "JOB", "value": "plain"}]}},
            {"targetNodes": "1:", "container": {"command": ["sh", "-c", worker], "vcpus": 1, "memory": 64,
                                                "environment": [{"name": "JOB", "value": "plain"}]}}]})
    (defn,) = batch.describe_job_definitions(jobDefinitions=[d["jobDefinitionArn"]])["jobDefinitions"]
    assert defn["type"] == "multinode" and "containerProperties" not in defn
    assert (defn["nodeProperties"]["numNodes"], defn["nodeProperties"]["mainNode"]) == (2, 0)
    assert [r["targetNodes"] for r in defn["nodeProperties"]["nodeRangeProperties"]] == ["0", "1:"]

    job = batch.submit_job(jobName="mpi", jobQueue="default", jobDefinition="mnp")["jobId"]
    # nodeOverrides: numNodes (the definition's mainNode stays) and overrides for every node.
    overridden = batch.submit_job(jobName="mpi-o", jobQueue="default", jobDefinition=d["jobDefinitionArn"], nodeOverrides={
        "numNodes": 2, "nodePropertyOverrides": [{"targetNodes": "0:", "containerOverrides": {
            "environment": [{"name": "JOB", "value": "over"}, {"name": "GREETING", "value": "hi"}]}}]})["jobId"]
    final = wait_final(batch, [job, overridden], timeout=150)
    for parent in (job, overridden):
        assert final[parent]["status"] == "SUCCEEDED", final[parent].get("statusReason")
        assert final[parent]["nodeProperties"]["numNodes"] == 2 and final[parent]["nodeProperties"]["mainNode"] == 0
        assert "container" not in final[parent] and "nodeDetails" not in final[parent]
        assert final[parent]["attempts"][-1]["container"]["exitCode"] == 0
    assert final[overridden]["jobDefinition"] == f"{ARN}:job-definition/mnp:1"
    assert (out / "plain-0").read_text() == "0/2\n" and (out / "plain-1").read_text() == "1/2 \n"
    assert (out / "over-1").read_text() == "1/2 hi\n"

    nodes = {n["jobId"]: n for n in batch.describe_jobs(jobs=[f"{job}#0", f"{ARN}:job/{job}#1"])["jobs"]}
    assert set(nodes) == {f"{job}#0", f"{job}#1"}
    assert nodes[f"{job}#0"]["nodeDetails"] == {"nodeIndex": 0, "isMainNode": True}
    assert nodes[f"{job}#1"]["nodeDetails"] == {"nodeIndex": 1, "isMainNode": False}
    assert all(n["status"] == "SUCCEEDED" and n["container"]["exitCode"] == 0 for n in nodes.values())
    assert nodes[f"{job}#1"]["container"]["command"] == ["sh", "-c", worker]

    pages = list(batch.get_paginator("list_jobs").paginate(
        multiNodeJobId=job, jobStatus="SUCCEEDED", PaginationConfig={"PageSize": 1}))
    assert len(pages) == 2
    listed = [s for p in pages for s in p["jobSummaryList"]]
    assert [s["jobId"] for s in listed] == [f"{job}#0", f"{job}#1"]
    assert [s["nodeProperties"] for s in listed] == [
        {"isMainNode": True, "numNodes": 2, "nodeIndex": 0}, {"isMainNode": False, "numNodes": 2, "nodeIndex": 1}]
    assert batch.list_jobs(multiNodeJobId=job)["jobSummaryList"] == []  # no status, no filter: RUNNING ones
    # In the queue, the parents only (their nodes are listed under multiNodeJobId).
    in_queue = batch.list_jobs(jobQueue="default", jobStatus="SUCCEEDED")["jobSummaryList"]
    assert {s["jobId"] for s in in_queue} == {job, overridden}
    assert all(s["nodeProperties"] == {"numNodes": 2} for s in in_queue)
    with pytest.raises(ClientError) as err:
        batch.list_jobs(multiNodeJobId="00000000-0000-4000-8000-000000000000")
    assert "does not exist" in err.value.response["Error"]["Message"]
