"""A loopback HTTP peer with canned answers, for the CLI's HTTP clients (wire.py, the native front)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

Answer = Callable[[bytes], bytes | None]  # request bytes -> raw answer (None: close without one)


class Canned:
    """A loopback TCP server that answers each connection with `answer(request)`."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    more = conn.recv(65536)
                    if not more:
                        break
                    data += more
                if b"\r\n\r\n" not in data:
                    continue  # the client went away without a request
                head, _, body = data.partition(b"\r\n\r\n")
                length = int(next(h.split(b":")[1] for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")))
                while len(body) < length:
                    body += conn.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + body)
                reply = self.answer(body)
                if reply is not None:
                    conn.sendall(reply)

    def close(self) -> None:
        # shutdown() wakes the accept() the thread is blocked in (close() alone would not), so
        # the thread is gone before the next test's server may get the same descriptor.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(timeout=10)


def http(status: str, body: bytes, *, shoal: bool = True, extra: str = "") -> bytes:
    mark = "shoal-api: 1\r\n" if shoal else ""
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{mark}{extra}\r\n").encode() + body
