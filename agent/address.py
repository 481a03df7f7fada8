"""The address other hosts reach this one at: what a multi-node job's nodes are given as the
main node's address (SHOAL_MAIN_NODE_ADDR) when the main node runs here."""

from __future__ import annotations

import contextlib
import ipaddress
import socket


def route_address(controller: str) -> str:
    """This host's address on the route to `controller` (HOST:PORT): the address the kernel
    would send from. A UDP `connect` only picks the route; no packet is sent. Falls back to the
    address the hostname resolves to, then to "" (the controller then uses the hostname)."""
    host, _, port = controller.rpartition(":")
    host = host.strip("[]")
    with contextlib.suppress(OSError, ValueError):
        infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_DGRAM)
        family, _, _, _, target = infos[0]
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect(target)
            return str(probe.getsockname()[0])
    with contextlib.suppress(OSError):
        return socket.gethostbyname(socket.gethostname())
    return ""


def validate_address(value: str) -> str:
    """An IP address or a host name (what --advertise-address accepts)."""
    value = value.strip()
    with contextlib.suppress(ValueError):
        return str(ipaddress.ip_address(value))
    if not value or len(value) > 253 or not all(c.isalnum() or c in "-._" for c in value):
        raise ValueError(f"--advertise-address must be an IP address or a host name (got {value!r})")
    return value
