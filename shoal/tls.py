"""TLS and token plumbing shared by the SDK, the CLI, the agent and the controller.

Files are read once, at start-up, and every problem is an InvalidArgument naming the file, so a
daemon with a wrong path fails with one line instead of a gRPC handshake error much later.

Imports are deferred into the functions that need them (grpc, pathlib, ipaddress, socket): the
CLI reads the environment variable names below on every call and must not pay for the rest.
"""

from __future__ import annotations

import os

from shoal.errors import InvalidArgument

TYPE_CHECKING = False  # (typing costs milliseconds at start-up; type checkers read this constant)
if TYPE_CHECKING:
    import grpc

CA_ENV = "SHOAL_CA"
"""PEM file of the cluster CA that clients verify the controller with."""
TOKEN_ENV = "SHOAL_TOKEN"
"""Bearer token clients send (overrides SHOAL_TOKEN_FILE)."""
TOKEN_FILE_ENV = "SHOAL_TOKEN_FILE"
"""File whose first line is the bearer token."""
AUTH_METADATA_KEY = "authorization"


def read_pem(path: str | os.PathLike[str], what: str) -> bytes:
    from pathlib import Path

    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise InvalidArgument(f"{what}: cannot read {path}: {err.strerror}") from None
    if b"-----BEGIN" not in data:
        raise InvalidArgument(f"{what}: {path} is not a PEM file")
    return data


def channel_credentials(
    ca: str | os.PathLike[str] | bytes | None = None,
    cert: str | os.PathLike[str] | None = None,
    key: str | os.PathLike[str] | None = None,
) -> grpc.ChannelCredentials:
    """Credentials of a TLS channel: verify the server with `ca` (else the system roots) and,
    with `cert` + `key`, present a client certificate (agents)."""
    import grpc

    if (cert is None) != (key is None):
        raise InvalidArgument("a client certificate needs both its certificate and its key file")
    root = ca if isinstance(ca, bytes) or ca is None else read_pem(ca, "CA")
    return grpc.ssl_channel_credentials(
        root_certificates=root,
        private_key=read_pem(key, "TLS key") if key is not None else None,
        certificate_chain=read_pem(cert, "TLS certificate") if cert is not None else None,
    )


def server_credentials(
    cert: str | os.PathLike[str], key: str | os.PathLike[str], client_ca: str | os.PathLike[str] | None = None
) -> grpc.ServerCredentials:
    """A server's TLS credentials; with `client_ca`, every peer must present a certificate that
    chains to it (mutual TLS: the handshake fails otherwise)."""
    import grpc

    pair = (read_pem(key, "--tls-key"), read_pem(cert, "--tls-cert"))
    if client_ca is None:
        return grpc.ssl_server_credentials([pair])
    return grpc.ssl_server_credentials(
        [pair], root_certificates=read_pem(client_ca, "--tls-client-ca"), require_client_auth=True
    )


def is_loopback(address: str) -> bool:
    """True when HOST:PORT binds only loopback (127.0.0.0/8, ::1, localhost)."""
    import ipaddress
    import socket

    host, _, _port = address.rpartition(":")
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def resolve_token(token: str | None = None) -> str:
    """The bearer token to send: `token`, else $SHOAL_TOKEN, else $SHOAL_TOKEN_FILE's first line."""
    if token:
        return token.strip()
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV].strip()
    path = os.environ.get(TOKEN_FILE_ENV)
    if path:
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except OSError as err:
            raise InvalidArgument(f"${TOKEN_FILE_ENV}: cannot read {path}: {err.strerror}") from None
        return lines[0].strip() if lines else ""
    return ""


def token_metadata(token: str) -> tuple[tuple[str, str], ...]:
    return ((AUTH_METADATA_KEY, f"Bearer {token}"),) if token else ()
