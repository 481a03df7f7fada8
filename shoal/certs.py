"""The cluster's certificate authority: `shoal certs init|issue` (with the `cryptography` package).

One CA per cluster signs three kinds of certificates:

* ``server``: controllers and etcd members. Carries every ``--host`` as a subject alternative
  name (DNS names and IP addresses); usable for both server and client auth, because etcd
  members also dial each other with it (peer TLS).
* ``agent``: a node agent. The node id is the subject CN and a ``shoal://node/<id>`` URI SAN;
  the controller takes the node id from it, so one agent cannot speak for another.
* ``client``: client auth only, e.g. the controller's certificate towards etcd.

Keys are ECDSA P-256 (what etcd, Go and gRPC all accept), written 0600; certificates 0644.
Nothing here talks to the network.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from shoal.errors import InvalidArgument

KINDS = ("server", "agent", "client")
CA_CERT = "ca.pem"
CA_KEY = "ca-key.pem"
DEFAULT_CA_DAYS = 3650
DEFAULT_DAYS = 825
NODE_URI_PREFIX = "shoal://node/"
_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")
_DNS_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


class CertError(InvalidArgument):
    """A certificate cannot be created or read; the message says which file and why."""


@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _write(path: Path, data: bytes, mode: int, force: bool) -> None:
    if path.exists() and not force:
        raise CertError(f"{path} already exists (pass --force to replace it)")
    tmp = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)  # the umask may have narrowed it; keys stay 0600 regardless
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _check_days(days: int) -> None:
    if not 1 <= days <= 36500:
        raise CertError(f"--days must be 1..36500 (got {days})")


def init_ca(directory: Path, *, days: int = DEFAULT_CA_DAYS, common_name: str = "shoal cluster CA",
            force: bool = False) -> Issued:
    """Create DIR/ca.pem and DIR/ca-key.pem (0600): a self-signed CA for one cluster."""
    _check_days(days)
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    result = Issued(directory / CA_CERT, directory / CA_KEY)
    if not force:
        for path in (result.cert, result.key):
            if path.exists():
                raise CertError(f"{path} already exists (pass --force to replace the CA)")
    _write(result.key, _key_pem(key), 0o600, force)
    _write(result.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644, force)
    return result


def load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except FileNotFoundError as err:
        raise CertError(f"{err.filename} does not exist (run `shoal certs init --dir {directory}` first)") from None
    except (OSError, ValueError) as err:
        raise CertError(f"cannot read the CA in {directory}: {err}") from None
    return cert, key  # type: ignore[return-value]


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        pass
    labels = host.split(".")
    if host.startswith("*."):
        labels = labels[1:]
    if not host or len(host) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in labels):
        raise CertError(f"--host {host!r} is neither an IP address nor a DNS name")
    return x509.DNSName(host)


def issue(
    directory: Path,
    name: str,
    kind: str,
    *,
    hosts: tuple[str, ...] | list[str] = (),
    days: int = DEFAULT_DAYS,
    force: bool = False,
) -> Issued:
    """Sign DIR/NAME.pem + DIR/NAME-key.pem (0600) with the CA in DIR.

    For ``agent`` certificates NAME is the node id (the agent's --node-id).
    """
    if kind not in KINDS:
        raise CertError(f"--kind must be one of {', '.join(KINDS)} (got {kind!r})")
    if not _NAME.fullmatch(name) or name in ("ca", "ca-key"):
        raise CertError(f"--name must be 1..128 letters, digits, '.', '_' or '-' and not 'ca' (got {name!r})")
    _check_days(days)
    if kind == "server" and not hosts:
        raise CertError("a server certificate needs at least one --host (the names and IPs clients dial)")
    ca_cert, ca_key = load_ca(directory)
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    usages = {
        "server": [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        "agent": [ExtendedKeyUsageOID.CLIENT_AUTH],
        "client": [ExtendedKeyUsageOID.CLIENT_AUTH],
    }[kind]
    sans: list[x509.GeneralName] = [_san(h) for h in dict.fromkeys(hosts)]
    if kind == "agent":
        sans.insert(0, x509.UniformResourceIdentifier(NODE_URI_PREFIX + name))
    not_after = min(now + datetime.timedelta(days=days), ca_cert.not_valid_after_utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=True, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    result = Issued(directory / f"{name}.pem", directory / f"{name}-key.pem")
    if not force:
        for path in (result.cert, result.key):
            if path.exists():
                raise CertError(f"{path} already exists (pass --force to replace it)")
    _write(result.key, _key_pem(key), 0o600, force)
    _write(result.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644, force)
    return result


def node_id_of(cert_pem: bytes) -> str:
    """The node id an agent certificate speaks for (its URI SAN, else its CN), or ''."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        return ""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
            if uri.startswith(NODE_URI_PREFIX):
                return uri[len(NODE_URI_PREFIX):]
    except x509.ExtensionNotFound:
        pass
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""
