"""docs/runbooks/etcd-backup-restore.md, exercised: snapshot, lose everything, restore, all there.

The runbook's commands are the two scripts it calls (deploy/scripts/etcd-snapshot-save and
etcd-snapshot-restore); this test runs those scripts with the arguments the runbook gives, so
the runbook and the test cannot drift apart (the test also checks the runbook still shows them).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from shoal import Client
from shoal.devcluster import EtcdServer, LocalCluster, free_port
from shoal.v1 import types_pb2
from tests.deploy.conftest import REPO

pytestmark = [pytest.mark.integration, pytest.mark.deploy, pytest.mark.timeout(180)]

RUNBOOK = REPO / "docs" / "runbooks" / "etcd-backup-restore.md"
SAVE = REPO / "deploy" / "scripts" / "etcd-snapshot-save"
RESTORE = REPO / "deploy" / "scripts" / "etcd-snapshot-restore"


def script(*argv: str | Path) -> str:
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, f"{argv[0]} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_runbook_shows_the_scripts_this_test_runs() -> None:
    text = RUNBOOK.read_text()
    assert "deploy/scripts/etcd-snapshot-save" in text
    assert "deploy/scripts/etcd-snapshot-restore" in text


@pytest.mark.skipif(shutil.which("etcdctl") is None, reason="etcdctl missing: apt-get install etcd-client")
def test_snapshot_and_restore_keep_jobs_and_queues(tmp_path: Path) -> None:
    etcd = EtcdServer(data_dir=tmp_path / "etcd-old", name="etcd1")
    etcd.start()
    cluster = LocalCluster(data_dir=tmp_path / "cluster", agents=1, etcd_endpoint=etcd.endpoint,
                           agent_args=["--vcpus", "2", "--memory-mib", "2048"])  # fmt: skip
    try:
        cluster.start()
        with Client(cluster.address, timeout=30) as client:
            client.create_compute_environment("idle")  # no agent joins it: its jobs stay RUNNABLE
            client.create_job_queue("backlog", compute_environments=["idle"], priority=5)
            done = [client.submit_job(f"done{i}", command=["true"], memory_mib=64).job_id for i in range(3)]
            failed = client.submit_job("failed", command=["sh", "-c", "exit 2"], memory_mib=64).job_id
            final = client.wait([*done, failed], timeout=60)
            waiting = [client.submit_job(f"wait{i}", job_queue="backlog", command=["true"]).job_id for i in range(2)]
            # SUBMITTED until the leader's next pass admits them: wait for that, not a fixed time.
            deadline = time.monotonic() + 30
            while {j.status for j in client.describe_jobs(waiting)} != {types_pb2.JOB_STATUS_RUNNABLE}:
                assert time.monotonic() < deadline, "the backlog jobs never became RUNNABLE"
                time.sleep(0.05)
            before = {j.job_id: j.status for j in client.describe_jobs([*done, failed, *waiting])}
        assert [final[j].status for j in done] == [types_pb2.JOB_STATUS_SUCCEEDED] * 3
        assert before[failed] == types_pb2.JOB_STATUS_FAILED
        assert {before[j] for j in waiting} == {types_pb2.JOB_STATUS_RUNNABLE}

        # Runbook step 1: take a snapshot.
        snapshot = Path(script(SAVE, etcd.endpoint, tmp_path / "backups").strip().splitlines()[-1])
        assert snapshot.is_file() and snapshot.stat().st_size > 0
    finally:
        cluster.stop()
        etcd.stop()

    # The disaster: the old data directory is gone.
    shutil.rmtree(tmp_path / "etcd-old")

    # Runbook step 3: restore into a new data directory, start etcd on it.
    restored = EtcdServer(data_dir=tmp_path / "etcd-new", name="etcd1", peer_port=free_port())
    script(RESTORE, snapshot, restored.data_dir / "data", restored.name, restored.peer_url,
           f"{restored.name}={restored.peer_url}", "shoal")  # fmt: skip
    restored.start()
    again = LocalCluster(data_dir=tmp_path / "cluster-again", agents=0, etcd_endpoint=restored.endpoint)
    try:
        again.start()
        with Client(again.address, timeout=30) as client:
            after = {j.job_id: j.status for j in client.describe_jobs(list(before))}
            queues = {q.job_queue_name for q in client.describe_job_queues()}
            envs = {e.compute_environment_name for e in client.describe_compute_environments()}
        assert after == before
        assert {"default", "backlog"} <= queues
        assert {"default", "idle"} <= envs
    finally:
        again.stop()
        restored.stop()
