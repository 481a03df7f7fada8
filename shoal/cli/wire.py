"""The CLI's path to a controller without gRPC: HTTP/1.1 and JSON to its native routes.

The routes (controller/http/native.py) take a shoal.v1.Batch request as proto3 JSON at
`POST /shoal.v1.Batch/<Method>` and answer with the response as JSON, or an error
`{"code": "not_found", "message": ...}` that maps to the same shoal.errors class (and so the
same one-line message and exit code) as the gRPC status would.

Why so bare: `shoal submit` in a shell loop pays for every module it imports, on every call.
`import grpc` is ~100 ms, the generated protobuf code tens of ms, and even `socket`, `json` and
`http.client` cost several ms each on a small VM (they pull in `re`, `enum`, `email`). This module
uses the C halves of the stdlib directly: `_socket` for plain HTTP and `_json` for JSON, with the
pure-Python modules as the fallback where those are missing. HTTPS needs `ssl` (and `socket`,
which ssl wraps): that import is paid only for https:// addresses.

Failover follows shoal.Client's rules: a read moves on to the next address after any transport
failure; a write only when the request certainly never left (the connection was not made), so
a submission is never sent twice.
"""

from __future__ import annotations

from shoal import errors

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

SHOAL_API_HEADER = "shoal-api"
"""Every answer of the native routes carries it: a response without it came from something else
(an older controller, another program on that port), so nothing was applied and gRPC may be used."""

try:
    import _json as _cjson
except ImportError:  # pragma: no cover - not CPython
    _cjson = None  # type: ignore[assignment]


class _ScanContext:
    # What _json.make_scanner reads from its context (json.JSONDecoder's attributes).
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo: dict[str, Any] = {}

    @staticmethod
    def parse_constant(name: str) -> float:
        return float(name.lower().replace("infinity", "inf"))


def _no_default(obj: object) -> object:
    raise TypeError(f"cannot encode {type(obj).__name__} as JSON")


if _cjson is not None:
    _scan = _cjson.make_scanner(_ScanContext())
    _encode = _cjson.make_encoder(
        None, _no_default, _cjson.encode_basestring_ascii, None, ":", ",", False, False, True
    )

    def dumps(obj: object) -> str:
        """Compact JSON (what json.dumps(obj, separators=(",", ":")) gives)."""
        return "".join(_encode(obj, 0))

    def loads(text: str) -> Any:
        text = text.strip()
        try:
            value, end = _scan(text, 0)
        except StopIteration as stop:
            raise ValueError(f"not JSON at character {stop.value}") from None
        if end != len(text):
            raise ValueError(f"extra data after JSON at character {end}")
        return value

else:  # pragma: no cover

    def dumps(obj: object) -> str:
        import json

        return json.dumps(obj, separators=(",", ":"))

    def loads(text: str) -> Any:
        import json

        return json.loads(text)


# --- errors --------------------------------------------------------------------------------------


class EdgeMissing(Exception):
    """No address answered as a shoal HTTP edge: nothing was sent to a controller there.

    `tried` holds (address, short reason) pairs; the caller may use gRPC instead.
    """

    def __init__(self, tried: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{a} ({r})" for a, r in tried))
        self.tried = tried


class _NotConnected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Broken(Exception):
    """The connection failed after the request (or part of it) was sent."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _NotShoal(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _os_reason(err: OSError) -> str:
    text = (err.strerror or str(err) or type(err).__name__).lower()
    if isinstance(err, ConnectionRefusedError) or "refused" in text:
        return "connection refused"
    if isinstance(err, TimeoutError) or "timed out" in text:
        return "timed out"
    if "name or service" in text or "nodename" in text or "name resolution" in text:
        return "cannot resolve host name"
    return text


# --- one HTTP exchange ---------------------------------------------------------------------------


def split_url(url: str) -> tuple[bool, str, int, str]:
    """'https://h:8443/x' -> (tls, host, port, path prefix); IPv6 hosts in brackets."""
    tls = url.startswith("https://")
    rest = url[len("https://") :] if tls else url.removeprefix("http://")
    hostport, slash, prefix = rest.partition("/")
    prefix = ("/" + prefix).rstrip("/") if slash else ""
    if hostport.startswith("["):
        host, _, tail = hostport[1:].partition("]")
        port_text = tail.removeprefix(":")
    else:
        host, _, port_text = hostport.rpartition(":") if ":" in hostport else (hostport, "", "")
    if not host:
        raise errors.InvalidArgument(f"controller address {url!r}: expected http(s)://HOST:PORT")
    try:
        port = int(port_text) if port_text else (443 if tls else 80)
    except ValueError:
        raise errors.InvalidArgument(f"controller address {url!r}: the port must be a number") from None
    return tls, host, port, prefix


def _is_ipv4(host: str) -> bool:
    parts = host.split(".")
    return len(parts) == 4 and all(p.isdigit() and len(p) <= 3 and int(p) < 256 for p in parts)


class _Connection:
    """One request on a fresh connection (`Connection: close`): a CLI call makes one or two."""

    def __init__(self, url: str, timeout: float | None, ca: str | None) -> None:
        self.url = url
        tls, self.host, self.port, self.prefix = split_url(url)
        self.sock: Any = None
        try:
            self.sock = self._open_tls(timeout, ca) if tls else self._open_plain(timeout)
        except OSError as err:
            raise _NotConnected(_os_reason(err)) from None

    def _open_plain(self, timeout: float | None) -> Any:
        import _socket

        last: OSError = OSError("no address")
        if _is_ipv4(self.host):
            infos = [(_socket.AF_INET, _socket.SOCK_STREAM, 0, "", (self.host, self.port))]
        else:
            # An ASCII name as bytes: a str goes through the idna codec, whose import (with
            # stringprep and re) costs more than the rest of the call.
            host: str | bytes = self.host.encode("ascii") if self.host.isascii() else self.host
            try:
                infos = _socket.getaddrinfo(host, self.port, 0, _socket.SOCK_STREAM)
            except OSError:
                raise OSError("cannot resolve host name") from None
        for family, kind, proto, _name, address in infos:
            sock = _socket.socket(family, kind, proto)
            sock.settimeout(timeout)
            try:
                sock.connect(address)
            except OSError as err:
                sock.close()
                last = err
                continue
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            return sock
        raise last

    def _open_tls(self, timeout: float | None, ca: str | None) -> Any:
        import socket
        import ssl

        try:
            context = ssl.create_default_context(cafile=ca) if ca else ssl.create_default_context()
        except (OSError, ssl.SSLError) as err:
            raise errors.InvalidArgument(f"CA: cannot use {ca}: {err}") from None
        raw = socket.create_connection((self.host, self.port), timeout=timeout)
        try:
            return context.wrap_socket(raw, server_hostname=self.host)
        except ssl.SSLError as err:
            raw.close()
            raise OSError(f"TLS handshake failed: {err.reason or err}") from None

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def send(self, method: str, body: bytes, token: str, content_type: str) -> None:
        head = (
            f"POST {self.prefix}/shoal.v1.Batch/{method} HTTP/1.1\r\n"
            f"Host: {self.host}:{self.port}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Connection: close\r\n"
        )
        if token:
            head += f"Authorization: Bearer {token}\r\n"
        try:
            self.sock.sendall(head.encode() + b"\r\n" + body)
        except OSError as err:
            raise _Broken(_os_reason(err)) from None

    def _recv(self) -> bytes:
        try:
            return self.sock.recv(65536)
        except OSError as err:
            raise _Broken(_os_reason(err)) from None

    def read_head(self) -> tuple[int, dict[str, str], bytes]:
        """(status, lower-cased headers, the body bytes read with the head)."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self._recv()
            if not chunk:
                raise _Broken("connection closed before an answer" if not data else "truncated answer")
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise _NotShoal("not an HTTP answer")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(parts[1]), headers, rest

    def body(self, headers: dict[str, str], rest: bytes) -> bytes:
        """The whole body, by Content-Length, chunked encoding, or until the server closes."""
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return b"".join(self.chunks(rest))
        length = headers.get("content-length")
        data = rest
        while length is None or len(data) < int(length):
            chunk = self._recv()
            if not chunk:
                if length is None:
                    break
                raise _Broken("truncated answer")
            data += chunk
        return data

    def until_close(self, rest: bytes) -> Iterator[bytes]:
        """The pieces of a body that ends when the server closes the connection."""
        yield rest
        while chunk := self._recv():
            yield chunk

    def chunks(self, rest: bytes) -> Iterator[bytes]:
        """The pieces of a chunked body as they arrive."""
        buffer = rest
        while True:
            while b"\r\n" not in buffer:
                more = self._recv()
                if not more:
                    raise _Broken("the answer stopped in the middle")
                buffer += more
            size_line, _, buffer = buffer.partition(b"\r\n")
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                return
            while len(buffer) < size + 2:
                more = self._recv()
                if not more:
                    raise _Broken("the answer stopped in the middle")
                buffer += more
            yield buffer[:size]
            buffer = buffer[size + 2 :]


def _refusal(status: int, headers: dict[str, str], body: bytes) -> errors.ShoalError:
    try:
        doc = loads(body.decode("utf-8", "replace"))
        code, message = str(doc["code"]), str(doc.get("message", ""))
        leader = str(doc.get("leader", "") or headers.get(errors.LEADER_METADATA_KEY, ""))
    except (ValueError, KeyError, TypeError):
        return errors.ShoalError(f"HTTP {status} from the controller: {body[:200].decode('utf-8', 'replace')}")
    return errors.from_status(code, message, leader)


# --- the client ----------------------------------------------------------------------------------


class HttpApi:
    """shoal.v1.Batch over the native HTTP routes of one or more controllers, in JSON.

    Bodies are proto3 JSON dicts (camelCase names, enums by full name, int64 as strings).
    """

    def __init__(self, urls: list[str], *, token: str = "", ca: str | None = None, timeout: float = 30.0):
        self.urls = list(urls)
        self.token = token
        self.ca = ca
        self.timeout = timeout

    def _candidates(self) -> list[str]:
        return self.urls

    def call(self, method: str, request: dict[str, Any], *, idempotent: bool) -> dict[str, Any]:
        """One unary call; raises shoal.errors, or EdgeMissing when no address is a shoal edge."""
        body = dumps(request).encode()
        never_sent: list[tuple[str, str]] = []
        failed: list[tuple[str, str]] = []
        for url in self._candidates():
            try:
                conn = _Connection(url, self.timeout, self.ca)
            except _NotConnected as err:
                never_sent.append((url, err.reason))
                continue
            try:
                conn.send(method, body, self.token, "application/json")
                status, headers, rest = conn.read_head()
                if SHOAL_API_HEADER not in headers:
                    raise _NotShoal(f"HTTP {status}, not a shoal edge")
                data = conn.body(headers, rest)
            except _NotShoal as err:
                never_sent.append((url, err.reason))
                continue
            except _Broken as err:
                if not idempotent:
                    raise errors.Unavailable(
                        f"lost the connection to {url} ({err.reason}); the request may have been applied"
                    ) from None
                failed.append((url, err.reason))
                continue
            finally:
                conn.close()
            if status != 200:
                refusal = _refusal(status, headers, data)
                if idempotent and isinstance(refusal, errors.Unavailable) and not isinstance(refusal, errors.NotLeader):
                    failed.append((url, refusal.message))
                    continue
                raise refusal
            return loads(data.decode("utf-8")) if data.strip() else {}
        if failed:
            parts = "; ".join(f"{a} ({r})" for a, r in [*failed, *never_sent])
            raise errors.Unavailable(f"no controller could answer: {parts}")
        raise EdgeMissing(never_sent)

    def stream(self, method: str, request: dict[str, Any], *, timeout: float | None) -> Iterator[dict[str, Any]]:
        """A server stream as dicts, one per JSON line. Streams are reads: any address will do.

        Errors before the first message are raised as for `call`; a break later raises
        Unavailable (the caller may re-open: the server re-sends current state).
        """
        body = dumps(request).encode()
        never_sent: list[tuple[str, str]] = []
        failed: list[tuple[str, str]] = []
        for url in self._candidates():
            try:
                conn = _Connection(url, timeout, self.ca)
            except _NotConnected as err:
                never_sent.append((url, err.reason))
                continue
            try:
                conn.send(method, body, self.token, "application/json")
                status, headers, rest = conn.read_head()
                if SHOAL_API_HEADER not in headers:
                    raise _NotShoal(f"HTTP {status}, not a shoal edge")
                if status != 200:
                    refusal = _refusal(status, headers, conn.body(headers, rest))
                    if isinstance(refusal, errors.Unavailable) and not isinstance(refusal, errors.NotLeader):
                        failed.append((url, refusal.message))
                        continue
                    raise refusal
            except _NotShoal as err:
                conn.close()
                never_sent.append((url, err.reason))
                continue
            except _Broken as err:
                conn.close()
                failed.append((url, err.reason))
                continue
            except BaseException:
                conn.close()
                raise
            return self._lines(conn, headers, rest, url)
        if failed:
            parts = "; ".join(f"{a} ({r})" for a, r in [*failed, *never_sent])
            raise errors.Unavailable(f"no controller could answer: {parts}")
        raise EdgeMissing(never_sent)

    @staticmethod
    def _lines(conn: _Connection, headers: dict[str, str], rest: bytes, url: str) -> Iterator[dict[str, Any]]:
        try:
            pending = b""
            chunked = "chunked" in headers.get("transfer-encoding", "").lower()
            for piece in conn.chunks(rest) if chunked else conn.until_close(rest):
                pending += piece
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if not line.strip():
                        continue
                    item = loads(line.decode("utf-8"))
                    if "error" in item and len(item) == 1:
                        e = item["error"]
                        raise errors.from_status(str(e.get("code", "unknown")), str(e.get("message", "")))
                    yield item
            raise errors.Unavailable(f"{url} closed the stream")
        except _Broken as err:
            if err.reason == "timed out":
                raise errors.DeadlineExceeded("Deadline Exceeded") from None
            raise errors.Unavailable(f"lost the stream from {url} ({err.reason})") from None
        finally:
            conn.close()
