"""/metrics and /healthz of a real controller and agent, after running a few jobs through them."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from shoal import Client
from shoal.devcluster import free_port
from shoal.v1 import types_pb2

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def samples(text: str) -> dict[str, list]:  # noqa: ANN401 - prometheus_client's Sample
    """metric family name -> its samples (counters keep their `_total` sample names)."""
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def value(fams: dict[str, list], sample: str, **labels: str) -> float:
    """Sum of the samples named `sample` (e.g. x_total, x_count) whose labels include `labels`."""
    matching = [
        s.value
        for family in fams.values()
        for s in family
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert matching, f"no sample {sample}{labels}"
    return sum(matching)


def test_metrics_and_health(cluster_factory) -> None:  # noqa: ANN001
    controller_port, agent_port = free_port(), free_port()
    cluster = cluster_factory(
        agents=1,
        controller_args=["--metrics-listen", f"127.0.0.1:{controller_port}"],
        agent_args=["--metrics-listen", f"127.0.0.1:{agent_port}"],
    )
    controller, agent = f"http://127.0.0.1:{controller_port}", f"http://127.0.0.1:{agent_port}"

    with Client(cluster.address, timeout=30) as client:
        ok = [client.submit_job(f"ok{i}", command=["true"], vcpus=0.5, memory_mib=64).job_id for i in range(3)]
        bad = client.submit_job("bad", command=["sh", "-c", "exit 3"], vcpus=0.5, memory_mib=64).job_id
        final = client.wait([*ok, bad], timeout=60)
    assert [final[j].status for j in ok] == [types_pb2.JOB_STATUS_SUCCEEDED] * 3
    assert final[bad].status == types_pb2.JOB_STATUS_FAILED

    assert get(f"{controller}/healthz") == (200, "ok\n")
    assert get(f"{agent}/healthz") == (200, "ok\n")
    assert get(f"{controller}/nope")[0] == 404

    status, text = get(f"{controller}/metrics")
    assert status == 200
    fams = samples(text)
    assert value(fams, "shoal_jobs", queue="default", status="SUCCEEDED") >= 3
    assert value(fams, "shoal_jobs", queue="default", status="FAILED") >= 1
    assert value(fams, "shoal_jobs", queue="default", status="RUNNABLE") == 0  # queue depth, per state
    assert value(fams, "shoal_controller_leader") == 1
    assert value(fams, "shoal_controller_etcd_healthy") == 1
    assert value(fams, "shoal_scheduler_placements_total") >= 4
    assert value(fams, "shoal_scheduler_passes_total") >= 1
    assert value(fams, "shoal_scheduler_pass_seconds_total") > 0
    assert "shoal_scheduler_last_pass_seconds" in fams
    # The decision is part of the passes, so never more than their time.
    assert 0 < value(fams, "shoal_scheduler_decide_seconds_total") <= value(fams, "shoal_scheduler_pass_seconds_total")
    assert value(fams, "shoal_node_capacity_vcpus", node="agent-1") == 2
    assert value(fams, "shoal_node_capacity_memory_mib", node="agent-1") == 2048
    assert value(fams, "shoal_node_used_vcpus", node="agent-1") == 0  # everything finished
    assert value(fams, "shoal_nodes", status="READY") == 1
    assert value(fams, "shoal_etcd_request_duration_seconds_count", method="txn") >= 1
    assert value(fams, "shoal_etcd_request_duration_seconds_count", method="get_prefix") >= 1

    status, text = get(f"{agent}/metrics")
    assert status == 200
    fams = samples(text)
    assert value(fams, "shoal_agent_capacity_vcpus") == 2
    assert value(fams, "shoal_agent_capacity_memory_mib") == 2048
    assert value(fams, "shoal_agent_attempts_finished_total", outcome="succeeded") >= 3
    assert value(fams, "shoal_agent_attempts_finished_total", outcome="failed") >= 1
    assert value(fams, "shoal_agent_attempts_running") == 0
    assert value(fams, "shoal_agent_connected") == 1
    assert value(fams, "shoal_agent_leader_epoch") > 0
    assert value(fams, "shoal_agent_log_bytes") >= 0


def test_controller_health_is_503_without_etcd(tmp_path) -> None:  # noqa: ANN001
    """Pointed at an etcd that is not there, /healthz says why with a 503."""
    from shoal.devcluster import ManagedProcess, _wait_until, python_module_argv

    port = free_port()
    proc = ManagedProcess(
        "controller",
        python_module_argv("controller", "--etcd", f"127.0.0.1:{free_port()}", "--listen", f"127.0.0.1:{free_port()}",
                           "--metrics-listen", f"127.0.0.1:{port}"),
        tmp_path / "controller.log",
    )  # fmt: skip
    proc.start()
    try:

        def answered() -> tuple[int, str] | None:
            try:
                return get(f"http://127.0.0.1:{port}/healthz")
            except OSError:
                return None

        _wait_until(lambda: answered() is not None, 30, "the metrics endpoint", proc)
        status, body = answered() or (0, "")
        assert status == 503 and "etcd" in body
        status, text = get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200 and value(samples(text), "shoal_controller_etcd_healthy") == 0
    finally:
        proc.stop()
