"""The CLI's native front (shoal/native/front.c) against a real controller: what it submits is
what the Python CLI submits, its refusals read the same and write nothing, and a follower's edge
takes its submissions.

`front_only` is the front built to hand over to a Python that does not exist: a call it did not
answer itself fails with "cannot run", so a passing call here was the front's own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shoal import Client, native
from shoal.devcluster import LocalCluster
from shoal.v1 import types_pb2

from .conftest import eventually
from .test_cli_fastpath import cluster, job_keys  # noqa: F401 - cluster is a fixture (this module gets its own)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

PYTHON_CLI = [sys.executable, "-m", "shoal.cli"]


@pytest.fixture(scope="module")
def front_only(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = Path(tmp_path_factory.mktemp("front-only")) / "shoal"
    return str(native.build(out, "/nonexistent/python"))


def run(argv: list[str], addr: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
    env["SHOAL_ADDR"] = addr
    return subprocess.run([*argv, *args], capture_output=True, text=True, env=env, timeout=120, check=False)


def _asked(job: types_pb2.Job) -> types_pb2.Job:
    """The part of a job record that the submission decided (not ids, times or progress)."""
    kept = types_pb2.Job()
    for name in ("job_name", "job_queue", "container", "retry_strategy", "timeout", "parameters", "job_definition",
                 "array_properties", "depends_on"):  # fmt: skip
        field = kept.DESCRIPTOR.fields_by_name[name]
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            getattr(kept, name).update(getattr(job, name))
        elif name == "depends_on":  # repeated
            getattr(kept, name).extend(getattr(job, name))
        elif field.message_type is not None:
            getattr(kept, name).CopyFrom(getattr(job, name))
        else:
            setattr(kept, name, getattr(job, name))
    return kept


@pytest.mark.parametrize(
    "args",
    [
        ("--", "true"),
        ("-n", "native-etl", "--vcpus", "0.5", "--memory", "64", "-e", "A=1", "-e", "B=x=y", "--timeout", "60",
         "--retry-attempts", "2", "--", "sh", "-c", 'test "$A$B" = "1x=y"'),
        ("--queue=default", "--runtime", "process", "-p", "who=world", "--", "/bin/echo", "hello", "Ref::who"),
        ("--array-size", "3", "--array-parallelism", "2", "--depends-on", "SEQUENTIAL", "--", "true"),
    ],  # fmt: skip
    ids=["bare", "env-resources-retry", "parameters", "array-sequential"],
)
def test_the_front_submits_what_the_python_cli_submits(cluster: LocalCluster, front_only: str, args: tuple[str, ...]) -> None:  # noqa: F811 - the fixture imported above
    mine = run([front_only], cluster.http_url, "submit", *args)
    theirs = run(PYTHON_CLI, cluster.http_url, "submit", *args)
    assert (mine.returncode, mine.stderr, theirs.returncode, theirs.stderr) == (0, "", 0, "")
    with Client(cluster.address) as client:
        a, b = client.describe_job(mine.stdout.strip()), client.describe_job(theirs.stdout.strip())
        assert a.job_id != b.job_id
        assert _asked(a) == _asked(b)
        final = client.wait([a.job_id], timeout=120)
    assert final[a.job_id].status == types_pb2.JOB_STATUS_SUCCEEDED, final[a.job_id]


@pytest.mark.parametrize(
    "args",
    [
        ("--name", "bad name!", "--", "true"),
        ("--queue", "no-such-queue", "--", "true"),
        ("--vcpus", "4096", "--memory", "1", "--", "true"),
        ("-d", "no-such-definition"),
        ("--image", "localhost/x", "--runtime", "process", "--", "true"),
    ],
)
def test_the_front_s_refusals_read_as_the_python_cli_s_and_write_nothing(
    cluster: LocalCluster, front_only: str, args: tuple[str, ...]  # noqa: F811 - the fixture imported above
) -> None:
    before = job_keys(cluster)
    mine = run([front_only], cluster.http_url, "submit", *args)
    theirs = run(PYTHON_CLI, cluster.http_url, "submit", *args)
    assert (mine.returncode, mine.stdout, mine.stderr) == (theirs.returncode, theirs.stdout, theirs.stderr)
    assert mine.returncode == 3 and mine.stderr.startswith("shoal: ") and mine.stderr.count("\n") == 1
    assert set(job_keys(cluster)) - set(before) == set()


def test_a_dead_edge_first_then_the_live_one(cluster: LocalCluster, front_only: str) -> None:  # noqa: F811 - the fixture imported above
    from shoal.devcluster import free_port

    proc = run([front_only], f"http://127.0.0.1:{free_port()},{cluster.http_url}", "submit", "-n", "second-edge", "--", "true")
    assert proc.returncode == 0, proc.stderr
    with Client(cluster.address) as client:
        assert client.describe_job(proc.stdout.strip()).job_name == "second-edge"


def test_a_follower_s_edge_takes_the_front_s_submissions(cluster_factory, native_front: str) -> None:  # noqa: ANN001
    replicated = cluster_factory(controllers=2, agents=1, http_port=0)
    follower = ""
    for grpc_addr, http_addr in zip(replicated.controller_addrs, replicated.http_addrs, strict=True):
        with Client(grpc_addr) as client:
            if not client.describe_cluster().is_leader:
                follower = f"http://{http_addr}"
    assert follower
    proc = run([native_front], follower, "submit", "-n", "via-follower", "--", "true")
    assert proc.returncode == 0, proc.stderr
    job_id = proc.stdout.strip()
    with Client(replicated.address) as client:
        done = eventually(
            lambda: (j := client.describe_job(job_id)).status == types_pb2.JOB_STATUS_SUCCEEDED and j,
            timeout=120, what="the job submitted at the follower to succeed",
        )  # fmt: skip
        assert done.job_name == "via-follower"
        assert [j.job_id for j in client.list_jobs(name_prefix="via-follower")] == [job_id]
