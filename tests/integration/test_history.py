"""Finished jobs leave the hot keyspace but stay describable and listable."""

from __future__ import annotations

import asyncio
import time

import pytest

from controller.store.etcd import EtcdClient
from controller.store.keys import Keys
from shoal import Client
from shoal.devcluster import LocalCluster
from shoal.v1 import types_pb2

from .conftest import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

S = types_pb2.JobStatus


def hot_job_keys(cluster: LocalCluster) -> set[str]:
    async def read() -> set[str]:
        async with EtcdClient([cluster.etcd_endpoint]) as etcd:
            kvs, _ = await etcd.get_prefix(Keys(cluster.prefix).kind_prefix("jobs"))
        return {kv.key.decode().rsplit("/", 1)[1] for kv in kvs}

    return asyncio.run(read())


def test_finished_jobs_move_to_history_and_stay_queryable(cluster_factory) -> None:  # noqa: ANN001
    cluster = cluster_factory(controller_args=["--archive-after", "1"])
    with Client(cluster.address) as client:
        before = int(time.time() * 1000)
        done = [client.submit_job(f"old{i}", command=["sh", "-c", f"exit {i % 2}"]).job_id for i in range(6)]
        array = client.submit_job("arr", command=["true"], array_size=3).job_id
        final = client.wait([*done, array], timeout=60)
        gate_job = client.submit_job("live", command=["sleep", "1000"]).job_id
        archived_ids = set(done) | {array} | {f"{array}:{i}" for i in range(3)}
        eventually(lambda: not (archived_ids & hot_job_keys(cluster)), what="jobs archived out of the hot keyspace")
        assert gate_job in hot_job_keys(cluster)

        # Describe still answers for archived jobs, with their full record.
        described = {j.job_id: j for j in client.describe_jobs(done)}
        assert {k: v.status for k, v in described.items()} == {k: v.status for k, v in final.items() if k in done}
        assert described[done[1]].attempts[0].exit_code == 1
        # A waiter on an archived job returns at once.
        assert client.wait([done[0]], timeout=10)[done[0]].status == S.JOB_STATUS_SUCCEEDED
        # Listing merges history (oldest first) with the live jobs, with filters and paging.
        summaries = list(client.list_jobs(page_size=4))
        listed = [j.job_id for j in summaries]
        assert len(listed) == len(set(listed)) and set(listed) == archived_ids | {gate_job}
        assert listed[-1] == gate_job  # the live job comes after the archived ones
        created = [j.created_at for j in summaries]
        assert created == sorted(created)
        failed = [j.job_id for j in client.list_jobs(status="FAILED")]
        assert sorted(failed) == sorted(done[1::2])
        recent = [j.job_id for j in client.list_jobs(created_after=before, name_prefix="old")]
        assert sorted(recent) == sorted(done)
        assert [j.job_id for j in client.list_jobs(created_before=before, name_prefix="old")] == []
        # A new job may depend on an archived one.
        after = client.submit_job("after", command=["true"], depends_on=[done[0]]).job_id
        assert client.wait([after], timeout=30)[after].status == S.JOB_STATUS_SUCCEEDED
        client.terminate_job(gate_job, "done")
