"""A real cluster per test: the shared etcd (own key prefix), a controller and agents as processes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from shoal import Client
from shoal.devcluster import EtcdServer, LocalCluster

T = TypeVar("T")

# Short timings so that failover scenarios finish quickly; the relations DESIGN.md requires
# still hold: fence timeout (5.5) > failover time (lease TTL 2 + the agents' reconnect backoff,
# seen up to ~4 s on a busy machine), fence + kill grace (6.5) < lost (8).
FAST_CONTROLLER = ["--lease-ttl", "2", "--heartbeat-interval", "0.5", "--agent-lost-timeout", "8",
                   "--reconnect-grace", "0.5", "--kill-grace", "2"]  # fmt: skip
# Fixed capacity, so tests do not depend on the size of the machine they run on.
# `--runtime process` skips container-runtime detection (tests that want podman ask for it).
FAST_AGENT = ["--vcpus", "2", "--memory-mib", "2048", "--fence-timeout", "5.5", "--kill-grace", "1", "--runtime", "process"]


def make_cluster(etcd_server: EtcdServer, prefix: str, data_dir: Path, **kw) -> LocalCluster:  # noqa: ANN003
    kw.setdefault("agents", 2)
    return LocalCluster(
        data_dir=data_dir,
        etcd_endpoint=etcd_server.endpoint,
        prefix=prefix,
        controller_args=list(FAST_CONTROLLER) + kw.pop("controller_args", []),
        agent_args=list(FAST_AGENT) + kw.pop("agent_args", []),
        **kw,
    )


def _dump_logs(cluster: LocalCluster) -> None:
    for proc in (*cluster.controller_procs, *cluster.agent_procs):
        print(f"----- {proc.name} (alive={proc.alive()}) -----\n{proc.tail(40)}")


@pytest.fixture
def cluster_factory(etcd_server: EtcdServer, etcd_prefix: str, tmp_path: Path) -> Iterator[Callable[..., LocalCluster]]:
    made: list[LocalCluster] = []

    def factory(**kw) -> LocalCluster:  # noqa: ANN003
        cluster = make_cluster(etcd_server, etcd_prefix, tmp_path / f"cluster{len(made)}", **kw)
        made.append(cluster)
        cluster.start()
        return cluster

    yield factory
    for cluster in made:
        _dump_logs(cluster)  # shown by pytest only when the test failed
        cluster.stop()


@pytest.fixture
def cluster(cluster_factory: Callable[..., LocalCluster]) -> LocalCluster:
    return cluster_factory()


@pytest.fixture
def client(cluster: LocalCluster) -> Iterator[Client]:
    with Client(cluster.address, timeout=30) as c:
        yield c


def eventually(fn: Callable[[], T], *, timeout: float = 30.0, what: str = "condition") -> T:
    """Poll `fn` until it returns a truthy value (returned) or fail after `timeout` seconds.

    This waits on an observable condition of the system under test (a job state, a file a job
    wrote): it synchronises, it does not guess how long something takes.
    """
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)


# --- containers (tests/integration/test_containers.py) -------------------------------------------


@pytest.fixture(scope="session")
def busybox_image(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The busybox-static test image imported into podman once per session (fails if podman is
    missing: scripts/test installs it)."""
    from tests.support.images import build_busybox_image

    return build_busybox_image("podman", tmp_path_factory.mktemp("image"))
