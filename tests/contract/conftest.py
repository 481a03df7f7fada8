"""Fixtures for the etcd layer's contract tests: clients, dedicated members, a 3-member cluster, TLS.

The session etcd (`etcd_server`) is shared; tests that freeze, stop or reconfigure etcd get
their own members here so they never disturb the others.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from controller.store.etcd import EtcdClient
from shoal.devcluster import EtcdServer


@pytest.fixture
async def client(etcd_server: EtcdServer) -> AsyncIterator[EtcdClient]:
    async with EtcdClient([etcd_server.endpoint], timeout=5.0) as c:
        yield c


@pytest.fixture
def solo_etcd(tmp_path: Path) -> Iterator[EtcdServer]:
    """An etcd member of its own, for tests that freeze or kill it."""
    server = EtcdServer(data_dir=tmp_path / "solo")
    server.start()
    try:
        yield server
    finally:
        if server.process is not None:
            server.process.signal(signal.SIGCONT)  # in case a test left it frozen
        server.stop()


@pytest.fixture
def etcd_cluster(tmp_path: Path) -> Iterator[list[EtcdServer]]:
    """Three members forming one cluster; stopped (whatever state they are in) at the end."""
    members = EtcdServer.cluster(tmp_path, 3)
    try:
        for m in members:
            m.start(wait=False)
        for m in members:
            m.wait_healthy()
        yield members
    finally:
        for m in members:
            m.stop()


@contextmanager
def frozen(server: EtcdServer) -> Iterator[None]:
    """SIGSTOP an etcd member (it keeps its sockets open but answers nothing), SIGCONT on exit."""
    assert server.process is not None
    pid = server.process.pid
    os.kill(pid, signal.SIGSTOP)
    # SIGSTOP is asynchronous: a thread running on another core may still answer a request
    # until it is stopped too. Wait until every thread of etcd is in the stopped state.
    deadline = time.monotonic() + 10
    while not _all_threads_stopped(pid):
        assert time.monotonic() < deadline, f"etcd (pid {pid}) did not stop"
        time.sleep(0.005)
    try:
        yield
    finally:
        os.kill(server.process.pid, signal.SIGCONT)


def _all_threads_stopped(pid: int) -> bool:
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            state = (task / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, IndexError):
            continue  # the thread ended
        if state not in ("T", "t"):
            return False
    return True


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A throwaway CA, a server certificate for 127.0.0.1 and a client certificate."""
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=shoal-test-ca",
             "-keyout", d / "ca.key", "-out", d / "ca.crt")  # fmt: skip
    for name, ext in (
        ("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        (d / f"{name}.ext").write_text(ext + "\n")
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN=shoal-{name}",
                 "-keyout", d / f"{name}.key", "-out", d / f"{name}.csr")  # fmt: skip
        _openssl("x509", "-req", "-in", d / f"{name}.csr", "-CA", d / "ca.crt", "-CAkey", d / "ca.key",
                 "-CAcreateserial", "-days", "2", "-extfile", d / f"{name}.ext", "-out", d / f"{name}.crt")  # fmt: skip
    return Pki(d / "ca.crt", d / "server.crt", d / "server.key", d / "client.crt", d / "client.key")


@pytest.fixture
def tls_etcd(tmp_path: Path, pki: Pki) -> Iterator[EtcdServer]:
    """An etcd member serving clients over TLS only, and requiring a client certificate.

    Not waited for here: its /health is HTTPS, which the dev launcher does not speak; tests wait
    through the client under test.
    """
    server = EtcdServer(data_dir=tmp_path / "tls")
    url = f"https://{server.endpoint}"
    server.extra_args = [
        "--listen-client-urls", url,
        "--advertise-client-urls", url,
        "--cert-file", str(pki.server_cert),
        "--key-file", str(pki.server_key),
        "--trusted-ca-file", str(pki.ca),
        "--client-cert-auth",
    ]  # fmt: skip
    server.start(wait=False)
    try:
        yield server
    finally:
        server.stop()


# --- container runtimes (tests/contract/test_runtimes.py) --------------------------------------


@pytest.fixture(scope="session")
def busybox_image(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The test image (busybox-static, imported into podman), built once per session.

    Fails (never skips) when podman or busybox-static is missing: scripts/test installs them.
    """
    from tests.support.images import build_busybox_image

    return build_busybox_image("podman", tmp_path_factory.mktemp("image"))
