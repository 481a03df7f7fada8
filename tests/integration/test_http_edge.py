"""The controller's HTTP edge (controller/http): served beside gRPC, on loopback, answering health."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def test_http_edge_serves_health_beside_grpc(cluster_factory) -> None:  # noqa: ANN001
    cluster = cluster_factory(agents=0, http_port=0)
    assert cluster.http_url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(cluster.http_url + "/healthz", timeout=10) as resp:
        assert resp.status == 200
        assert resp.read() == b"ok\n"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(cluster.http_url + "/no-such-page", timeout=10)
    assert err.value.code == 404


def test_http_edge_refuses_plaintext_off_loopback(etcd_server) -> None:  # noqa: ANN001
    proc = subprocess.run(
        [sys.executable, "-m", "controller", "--etcd", etcd_server.endpoint, "--http-listen", "0.0.0.0:0"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode != 0
    assert "refusing to serve HTTP on 0.0.0.0:0" in proc.stderr
