"""boto3's `batch` client, unchanged, against a real cluster (etcd, controller, agents) over SigV4.

Final states follow AWS Batch's documented behaviour for the same calls: a job that exits
non-zero is retried while its retry strategy allows and ends FAILED with one attempt per run;
an EXIT rule stops retries; a job whose dependency FAILED ends FAILED without running; CancelJob
fails a job that has not started and leaves a RUNNING one alone; TerminateJob fails a RUNNING
one; an array job SUCCEEDED when all its children did.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.support.aws import ACCOUNT, REGION, batch_client, wait_final, wait_status, write_credentials

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

ARN = f"arn:aws:batch:{REGION}:{ACCOUNT}"


def code_of(err: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return err.value.response["Error"]["Code"], err.value.response["Error"]["Message"]


def test_boto3_workflow_matches_aws_batch_semantics(cluster_factory, tmp_path) -> None:  # noqa: ANN001
    creds = write_credentials(tmp_path)
    cluster = cluster_factory(http_port=0, controller_args=["--aws-credentials-file", str(creds)])
    batch = batch_client(cluster.http_url)

    # -- a compute environment and a queue (the new environment has no agents of its own; the
    #    queue falls through to `default`, whose agents run the jobs)
    ce = batch.create_compute_environment(computeEnvironmentName="aws-ce", type="UNMANAGED", state="ENABLED")
    assert ce["computeEnvironmentArn"] == f"{ARN}:compute-environment/aws-ce"
    q = batch.create_job_queue(jobQueueName="aws-q", priority=10, state="ENABLED", computeEnvironmentOrder=[
        {"order": 1, "computeEnvironment": ce["computeEnvironmentArn"]}, {"order": 2, "computeEnvironment": "default"}])
    assert q["jobQueueArn"] == f"{ARN}:job-queue/aws-q"
    (queue,) = batch.describe_job_queues(jobQueues=[q["jobQueueArn"]])["jobQueues"]
    assert queue["priority"] == 10 and queue["state"] == "ENABLED"
    assert [o["computeEnvironment"] for o in queue["computeEnvironmentOrder"]] == [
        f"{ARN}:compute-environment/aws-ce", f"{ARN}:compute-environment/default"]

    # -- a job definition with resourceRequirements and a retry strategy
    d = batch.register_job_definition(
        jobDefinitionName="aws-def", type="container", parameters={"script": "true"},
        containerProperties={"command": ["sh", "-c", "Ref::script"],
                             "resourceRequirements": [{"type": "VCPU", "value": "0.5"}, {"type": "MEMORY", "value": "64"}]},
        retryStrategy={"attempts": 2, "evaluateOnExit": [{"onExitCode": "3", "action": "EXIT"}]},
        timeout={"attemptDurationSeconds": 300}, tags={"team": "aws"},
    )
    assert (d["jobDefinitionName"], d["revision"]) == ("aws-def", 1)
    assert d["jobDefinitionArn"] == f"{ARN}:job-definition/aws-def:1"
    (defn,) = batch.describe_job_definitions(jobDefinitions=[d["jobDefinitionArn"]])["jobDefinitions"]
    assert defn["status"] == "ACTIVE" and defn["retryStrategy"]["attempts"] == 2
    assert {"type": "VCPU", "value": "0.5"} in defn["containerProperties"]["resourceRequirements"]
    assert batch.list_tags_for_resource(resourceArn=d["jobDefinitionArn"])["tags"] == {"team": "aws"}

    def submit(name: str, **kw) -> str:  # noqa: ANN003
        return batch.submit_job(jobName=name, jobQueue="aws-q", jobDefinition="aws-def", **kw)["jobId"]

    ok = submit("ok")
    retried = submit("retried", parameters={"script": "exit 1"})
    stopped = submit("exit-rule", parameters={"script": "exit 3"})
    after_failure = submit("after-failure", dependsOn=[{"jobId": retried}])
    first = submit("first", arrayProperties={"size": 50})
    second = submit("second", arrayProperties={"size": 50}, dependsOn=[{"jobId": first, "type": "N_TO_N"}])

    final = wait_final(batch, [ok, retried, stopped, after_failure, first, second], timeout=180)
    assert final[ok]["status"] == "SUCCEEDED"
    assert [a["container"]["exitCode"] for a in final[ok]["attempts"]] == [0]
    assert final[ok]["container"]["exitCode"] == 0 and final[ok]["jobQueue"] == f"{ARN}:job-queue/aws-q"
    assert final[ok]["jobDefinition"] == f"{ARN}:job-definition/aws-def:1"
    # Retried while attempts remain (no rule matched exit 1), FAILED after the second.
    assert final[retried]["status"] == "FAILED"
    assert final[retried]["statusReason"] == "Essential container in task exited"
    assert [a["container"]["exitCode"] for a in final[retried]["attempts"]] == [1, 1]
    # onExitCode 3 -> EXIT: no second attempt.
    assert final[stopped]["status"] == "FAILED"
    assert [a["container"]["exitCode"] for a in final[stopped]["attempts"]] == [3]
    # A dependency FAILED: the job fails without ever running.
    assert final[after_failure]["status"] == "FAILED"
    assert final[after_failure]["statusReason"] == "Dependent job failed"
    assert final[after_failure]["attempts"] == []
    # Arrays: each parent SUCCEEDED with all 50 children.
    for parent in (first, second):
        assert final[parent]["status"] == "SUCCEEDED"
        assert final[parent]["arrayProperties"]["size"] == 50
        assert final[parent]["arrayProperties"]["statusSummary"].get("SUCCEEDED") == 50
    assert final[second]["dependsOn"] == [{"jobId": first, "type": "N_TO_N"}]

    # -- list with a paginator, more than one page: the 50 children of `second`
    pages = list(batch.get_paginator("list_jobs").paginate(
        arrayJobId=second, jobStatus="SUCCEEDED", PaginationConfig={"PageSize": 20}))
    assert len(pages) >= 3
    children = [s for p in pages for s in p["jobSummaryList"]]
    assert sorted(s["arrayProperties"]["index"] for s in children) == list(range(50))
    assert {s["jobId"] for s in children} == {f"{second}:{i}" for i in range(50)}
    assert all(s["container"]["exitCode"] == 0 for s in children)
    # In its queue, AWS lists parents, not children; with a filter, every status.
    listed = [s for p in batch.get_paginator("list_jobs").paginate(
        jobQueue="aws-q", filters=[{"name": "JOB_NAME", "values": ["*"]}], PaginationConfig={"PageSize": 2}) for s in p["jobSummaryList"]]
    assert {s["jobId"] for s in listed} == {ok, retried, stopped, after_failure, first, second}
    failed = batch.list_jobs(jobQueue="aws-q", jobStatus="FAILED")["jobSummaryList"]
    assert {s["jobId"] for s in failed} == {retried, stopped, after_failure}

    # -- cancel and terminate
    blocker = batch.submit_job(jobName="blocker", jobQueue="aws-q", jobDefinition="aws-def",
                               parameters={"script": "sleep 600"})["jobId"]
    waiting = submit("waiting", dependsOn=[{"jobId": blocker}])
    wait_status(batch, blocker, "RUNNING")
    assert [s["jobId"] for s in batch.list_jobs(jobQueue="aws-q")["jobSummaryList"]] == [blocker]  # default: RUNNING
    batch.cancel_job(jobId=waiting, reason="not needed")
    batch.cancel_job(jobId=blocker, reason="too late to cancel")  # RUNNING: left alone, as in AWS
    cancelled = wait_final(batch, [waiting])[waiting]
    assert (cancelled["status"], cancelled["statusReason"], cancelled["attempts"]) == ("FAILED", "not needed", [])
    assert batch.describe_jobs(jobs=[blocker])["jobs"][0]["status"] == "RUNNING"
    batch.terminate_job(jobId=f"{ARN}:job/{blocker}", reason="wrong input")
    terminated = wait_final(batch, [blocker])[blocker]
    assert (terminated["status"], terminated["statusReason"]) == ("FAILED", "wrong input")
    assert len(terminated["attempts"]) == 1 and terminated["isTerminated"] is True
    batch.terminate_job(jobId=blocker, reason="again")  # idempotent
    assert batch.describe_jobs(jobs=[blocker])["jobs"][0]["statusReason"] == "wrong input"

    # -- deregister: the revision is INACTIVE and takes no new jobs
    batch.deregister_job_definition(jobDefinition="aws-def:1")
    (defn,) = batch.describe_job_definitions(jobDefinitionName="aws-def")["jobDefinitions"]
    assert defn["status"] == "INACTIVE"
    assert batch.describe_job_definitions(jobDefinitionName="aws-def", status="ACTIVE")["jobDefinitions"] == []
    with pytest.raises(ClientError) as err:
        submit("too-late")
    assert code_of(err)[0] == "ClientException" and "aws-def" in code_of(err)[1]

    # -- a MANAGED environment: computeResources onto shoal's provisioner
    batch.create_compute_environment(computeEnvironmentName="burst", type="MANAGED", computeResources={
        "type": "EC2", "minvCpus": 0, "maxvCpus": 4, "desiredvCpus": 0,
        "tags": {"shoal:provisioner": "local", "shoal:node-vcpus": "2", "shoal:node-memory-mib": "1024"}})
    batch.update_compute_environment(computeEnvironment=f"{ARN}:compute-environment/burst",
                                     computeResources={"maxvCpus": 2})
    (env,) = batch.describe_compute_environments(computeEnvironments=["burst"])["computeEnvironments"]
    assert env["type"] == "MANAGED" and env["computeResources"]["maxvCpus"] == 2
    assert env["computeResources"]["minvCpus"] == 0 and env["computeResources"]["type"] == "EC2"
    assert env["computeResources"]["tags"]["shoal:node-vcpus"] == "2"
    batch.update_compute_environment(computeEnvironment="burst", state="DISABLED")
    batch.delete_compute_environment(computeEnvironment="burst")
    names = [e["computeEnvironmentName"] for e in batch.describe_compute_environments()["computeEnvironments"]]
    assert "burst" not in names and "aws-ce" in names


def test_roles_of_access_keys_are_the_grpc_roles(cluster_factory, tmp_path) -> None:  # noqa: ANN001
    creds = write_credentials(tmp_path)
    cluster = cluster_factory(agents=0, http_port=0, controller_args=["--aws-credentials-file", str(creds)])
    reader, submitter = batch_client(cluster.http_url, "reader"), batch_client(cluster.http_url, "submitter")
    assert reader.describe_job_queues()["jobQueues"][0]["jobQueueName"] == "default"
    with pytest.raises(ClientError) as err:
        reader.submit_job(jobName="x", jobQueue="default", jobDefinition="nope")
    assert code_of(err) == ("AccessDeniedException", "SubmitJob needs the submitter role; 'reader' is a reader")
    with pytest.raises(ClientError) as err:
        submitter.create_job_queue(jobQueueName="q2", priority=1, computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "default"}])
    assert code_of(err)[0] == "AccessDeniedException" and "admin" in code_of(err)[1]
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    d = submitter.register_job_definition(jobDefinitionName="mine", type="container", containerProperties={"command": ["true"]})
    job = submitter.submit_job(jobName="mine", jobQueue="default", jobDefinition=d["jobDefinitionArn"])
    assert submitter.list_tags_for_resource(resourceArn=job["jobArn"])["tags"]["shoal:owner"] == "submitter"
