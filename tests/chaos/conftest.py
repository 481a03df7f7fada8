"""Chaos fixtures: real etcd, controllers and agents as processes, a journal for the jobs.

Timings are the integration tier's FAST set (tests/integration/conftest.py), whose relations
DESIGN.md requires: fence timeout (4 s) > lease TTL (2 s), so a failover never fences agents;
fence timeout + agent kill grace (4 + 1 s) < agent-lost timeout (6 s), so a partitioned agent
has killed its jobs before the controller runs them elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shoal import Client
from shoal.devcluster import EtcdServer, LocalCluster
from tests.integration.conftest import FAST_AGENT, FAST_CONTROLLER, eventually

__all__ = ["FAST_AGENT", "FAST_CONTROLLER", "eventually", "flag"]


def flag(args: list[str], name: str) -> float:
    """The value of `--name` in an argument list (the last one wins, as with argparse)."""
    values = [args[i + 1] for i, a in enumerate(args) if a == name]
    return float(values[-1])


LOST_TIMEOUT = flag(FAST_CONTROLLER, "--agent-lost-timeout")
RECONNECT_GRACE = flag(FAST_CONTROLLER, "--reconnect-grace")
FENCE_TIMEOUT = flag(FAST_AGENT, "--fence-timeout")
AGENT_KILL_GRACE = flag(FAST_AGENT, "--kill-grace")


def dump_logs(cluster: LocalCluster) -> None:
    for proc in (*cluster.controller_procs, *cluster.agent_procs):
        print(f"----- {proc.name} (alive={proc.alive()}) -----\n{proc.tail(60)}")


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    """The file every job of the test appends its start/beat/stop lines to."""
    return tmp_path / "journal.log"


@pytest.fixture
def chaos_cluster(
    etcd_server: EtcdServer, etcd_prefix: str, tmp_path: Path
) -> Iterator[Callable[..., LocalCluster]]:
    """Factory: `chaos_cluster(agents=3, controllers=2, etcd_endpoint=..., controller_host=...)`."""
    made: list[LocalCluster] = []

    def factory(**kw) -> LocalCluster:  # noqa: ANN003
        kw.setdefault("agents", 3)
        kw.setdefault("etcd_endpoint", etcd_server.endpoint)
        cluster = LocalCluster(
            data_dir=tmp_path / f"cluster{len(made)}",
            prefix=etcd_prefix,
            controller_args=list(FAST_CONTROLLER) + kw.pop("controller_args", []),
            agent_args=list(FAST_AGENT) + kw.pop("agent_args", []),
            **kw,
        )
        made.append(cluster)
        cluster.start()
        return cluster

    yield factory
    for cluster in made:
        dump_logs(cluster)  # shown by pytest only when the test failed
        cluster.stop()


@pytest.fixture
def etcd_trio(tmp_path: Path) -> Iterator[list[EtcdServer]]:
    """A 3-member etcd cluster of its own (EtcdServer.cluster), healthy."""
    members = EtcdServer.cluster(tmp_path / "etcd", 3)
    try:
        for member in members:
            member.start(wait=False)
        for member in members:
            member.wait_healthy(60)
        yield members
    finally:
        for member in members:
            member.stop()


@pytest.fixture
def client_for() -> Iterator[Callable[[LocalCluster], Client]]:
    clients: list[Client] = []

    def make(cluster: LocalCluster) -> Client:
        client = Client(cluster.address, timeout=30)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture(scope="session")
def busybox_image(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The busybox-static test image imported into podman once per session (fails if podman is
    missing: scripts/test installs it)."""
    from tests.support.images import build_busybox_image

    return build_busybox_image("podman", tmp_path_factory.mktemp("image"))
