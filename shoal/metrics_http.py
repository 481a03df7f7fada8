"""The small HTTP endpoint both daemons serve with `--metrics-listen HOST:PORT`.

`GET /metrics` is the Prometheus text format of the daemon's registry, collected at request
time; `GET /healthz` is "ok" (200) or a one-line reason (503), for load balancers, Ansible's
`uri` module and `curl -f`. It runs on the daemon's own event loop (not a thread), so the
collectors read the daemon's state between two of its steps and never see it half-changed.
Anything else is 404; only GET and HEAD are served, one request per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from shoal import log

_log = log.get("shoal.metrics_http")

#: () -> (healthy, reason). The reason is shown on a 503.
HealthCheck = Callable[[], tuple[bool, str]]

_MAX_HEAD_BYTES = 16 * 1024
_READ_TIMEOUT = 5.0


def parse_listen(value: str) -> tuple[str, int]:
    """'HOST:PORT' (or ':PORT' for every interface) -> (host, port); raises ValueError."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"--metrics-listen {value!r} is not HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


class MetricsServer:
    def __init__(self, listen: str, registry: CollectorRegistry, health: HealthCheck) -> None:
        try:
            self.host, self.port = parse_listen(listen)
        except ValueError as err:
            raise SystemExit(f"shoal: {err}") from None
        self.registry = registry
        self.health = health
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        try:
            self._server = await asyncio.start_server(self._handle, self.host, self.port)
        except OSError as err:
            raise SystemExit(f"shoal: cannot serve metrics on {self.host}:{self.port}: {err.strerror}") from None
        _log.info("metrics.listening", address=f"{self.host}:{self.port}")

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _READ_TIMEOUT)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
                return
            if len(head) > _MAX_HEAD_BYTES:
                return
            method, _, rest = head.decode("latin-1").partition(" ")
            path = rest.partition(" ")[0].partition("?")[0]
            status, content_type, body = self._respond(method, path)
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            )
            if method != "HEAD":
                writer.write(body)
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _respond(self, method: str, path: str) -> tuple[str, str, bytes]:
        text = "text/plain; charset=utf-8"
        if method not in ("GET", "HEAD"):
            return "405 Method Not Allowed", text, b"only GET and HEAD\n"
        if path == "/metrics":
            return "200 OK", CONTENT_TYPE_LATEST, generate_latest(self.registry)
        if path in ("/healthz", "/health"):
            try:
                ok, reason = self.health()
            except Exception as err:  # noqa: BLE001 - a broken check is an unhealthy daemon
                ok, reason = False, f"health check failed: {err}"
            if ok:
                return "200 OK", text, b"ok\n"
            return "503 Service Unavailable", text, (reason.replace("\n", " ") + "\n").encode()
        return "404 Not Found", text, b"not found: try /metrics or /healthz\n"
