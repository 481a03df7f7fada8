"""shoal certs: the CA, the three kinds of certificates, file modes, node ids."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from shoal import certs
from shoal.cli.main import main

pytestmark = pytest.mark.unit


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_init_and_issue_every_kind(tmp_path: Path) -> None:
    ca = certs.init_ca(tmp_path, days=30)
    assert stat.S_IMODE(ca.key.stat().st_mode) == 0o600
    ca_cert = _load(ca.cert)
    assert ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca

    server = certs.issue(tmp_path, "ctl1", "server", hosts=["ctl1.example.org", "10.0.0.1", "::1"])
    cert = _load(server.cert)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["ctl1.example.org"]
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {"10.0.0.1", "::1"}
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku and ExtendedKeyUsageOID.CLIENT_AUTH in eku
    cert.verify_directly_issued_by(ca_cert)
    assert stat.S_IMODE(server.key.stat().st_mode) == 0o600

    agent = certs.issue(tmp_path, "node-7", "agent")
    assert certs.node_id_of(agent.cert.read_bytes()) == "node-7"
    eku = _load(agent.cert).extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]

    client = certs.issue(tmp_path, "controller", "client")
    _load(client.cert).verify_directly_issued_by(ca_cert)


def test_refusals(tmp_path: Path) -> None:
    with pytest.raises(certs.CertError, match="certs init"):
        certs.issue(tmp_path, "x", "agent")
    certs.init_ca(tmp_path)
    with pytest.raises(certs.CertError, match="already exists"):
        certs.init_ca(tmp_path)
    with pytest.raises(certs.CertError, match="--host"):
        certs.issue(tmp_path, "ctl", "server")
    with pytest.raises(certs.CertError, match="--kind"):
        certs.issue(tmp_path, "ctl", "peer")
    with pytest.raises(certs.CertError, match="--name"):
        certs.issue(tmp_path, "../evil", "agent")
    with pytest.raises(certs.CertError, match="neither"):
        certs.issue(tmp_path, "ctl", "server", hosts=["bad host"])
    certs.issue(tmp_path, "n", "agent")
    with pytest.raises(certs.CertError, match="already exists"):
        certs.issue(tmp_path, "n", "agent")
    certs.issue(tmp_path, "n", "agent", force=True)


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = str(tmp_path / "pki")
    assert main(["certs", "init", "--dir", d, "--days", "10"]) == 0
    assert main(["certs", "issue", "--dir", d, "--name", "etcd1", "--kind", "server", "--host", "127.0.0.1"]) == 0
    assert (tmp_path / "pki" / "etcd1-key.pem").exists()
    assert main(["certs", "issue", "--dir", d, "--name", "x", "--kind", "server"]) == 2
    assert "--host" in capsys.readouterr().err
