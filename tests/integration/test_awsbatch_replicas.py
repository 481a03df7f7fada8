"""A client pointed at a follower replica's AWS endpoint works: reads and writes alike.

Every AWS Batch operation maps to a shoal.v1 call that any replica serves (submissions,
cancel/terminate requests and catalog changes are written by whichever replica receives them;
etcd orders them), so the follower answers itself; nothing needs the leader.
"""

from __future__ import annotations

import pytest

from shoal import Client
from tests.support.aws import batch_client, wait_final, wait_status, write_credentials

from .conftest import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def test_a_follower_serves_the_whole_aws_api(cluster_factory, tmp_path) -> None:  # noqa: ANN001
    creds = write_credentials(tmp_path)
    cluster = cluster_factory(controllers=2, agents=1, http_port=0, controller_args=["--aws-credentials-file", str(creds)])

    def leader_index() -> int | None:
        for i, addr in enumerate(cluster.controller_addrs):
            with Client(addr, timeout=10) as c:
                if c.describe_cluster().is_leader:
                    return i
        return None

    (leader,) = eventually(lambda: (i := leader_index()) is not None and (i,), what="a leader")
    follower = 1 - leader
    with Client(cluster.controller_addrs[follower], timeout=10) as c:
        info = c.describe_cluster()
        assert not info.is_leader and info.leader_address == cluster.controller_addrs[leader]

    batch = batch_client(f"http://{cluster.http_addrs[follower]}")
    batch.create_compute_environment(computeEnvironmentName="f-ce", type="UNMANAGED")
    batch.create_job_queue(jobQueueName="f-q", priority=5, computeEnvironmentOrder=[
        {"order": 1, "computeEnvironment": "f-ce"}, {"order": 2, "computeEnvironment": "default"}])
    batch.update_job_queue(jobQueue="f-q", priority=7)
    assert batch.describe_job_queues(jobQueues=["f-q"])["jobQueues"][0]["priority"] == 7
    batch.register_job_definition(jobDefinitionName="f-def", type="container",
                                  containerProperties={"command": ["sh", "-c", "Ref::s"], "vcpus": 1, "memory": 64},
                                  parameters={"s": "true"})
    done = batch.submit_job(jobName="done", jobQueue="f-q", jobDefinition="f-def")["jobId"]
    long = batch.submit_job(jobName="long", jobQueue="f-q", jobDefinition="f-def", parameters={"s": "sleep 600"})["jobId"]
    held = batch.submit_job(jobName="held", jobQueue="f-q", jobDefinition="f-def", dependsOn=[{"jobId": long}])["jobId"]
    assert wait_final(batch, [done])[done]["status"] == "SUCCEEDED"
    wait_status(batch, long, "RUNNING")
    batch.cancel_job(jobId=held, reason="cancelled via the follower")
    batch.terminate_job(jobId=long, reason="terminated via the follower")
    final = wait_final(batch, [held, long])
    assert (final[held]["status"], final[held]["statusReason"]) == ("FAILED", "cancelled via the follower")
    assert (final[long]["status"], final[long]["statusReason"]) == ("FAILED", "terminated via the follower")
    # The batch forms answer per job: a finished job is a no-op success, a bad id an error entry.
    many = batch.terminate_jobs(jobs=[done, "not-a-job-id"], reason="sweep")
    assert many["successful"] == [done]
    assert [(e["job"], e["code"]) for e in many["errors"]] == [("not-a-job-id", "ClientException")]
    assert "jobId" in many["errors"][0]["message"]
    assert batch.cancel_jobs(jobs=[held], reason="again")["successful"] == [held]
    batch.deregister_job_definition(jobDefinition="f-def:1")

    # The leader's endpoint sees the same state.
    on_leader = batch_client(f"http://{cluster.http_addrs[leader]}")
    assert on_leader.describe_jobs(jobs=[done])["jobs"][0]["status"] == "SUCCEEDED"
    assert on_leader.describe_job_definitions(jobDefinitions=["f-def:1"])["jobDefinitions"][0]["status"] == "INACTIVE"
