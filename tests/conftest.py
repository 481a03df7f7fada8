"""Fixtures shared by every tier.

`etcd_server` is one real etcd per test session on free loopback ports (the same launcher
`shoal up` uses); `etcd_prefix` gives each test its own key prefix in it, so tests never see
each other's state and need no cleanup between them.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.devcluster import EtcdServer


@pytest.fixture(scope="session")
def etcd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdServer]:
    server = EtcdServer(data_dir=Path(tmp_path_factory.mktemp("etcd")))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def etcd_prefix() -> str:
    """A key prefix no other test uses, e.g. '/t-3f2a9c1e/'."""
    return f"/t-{uuid.uuid4().hex[:8]}/"


@pytest.fixture(scope="session")
def native_front(tmp_path_factory: pytest.TempPathFactory) -> str:
    """shoal's native front (shoal/native/front.c) built for this interpreter, as
    `python -m shoal.native` installs it: plain `shoal submit` lines in C, the rest handed over."""
    from shoal import native

    return str(native.build(Path(tmp_path_factory.mktemp("native")) / "shoal", sys.executable))
