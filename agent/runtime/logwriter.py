"""The per-attempt log writer: a tiny process between a job's stdout/stderr pipes and its log.

Run as `python -I -S logwriter.py LOG_PATH MAX_BYTES KEEP` with the read ends of the job's
stdout and stderr pipes inherited, their numbers in $SHOAL_LOG_FDS ("OUT,ERR"). It is its own process (not a task in the agent) so
that a job printing gigabytes costs the agent nothing, and so that the output is still written
if the agent restarts. It needs only the standard library and imports nothing from shoal: it
starts in a few milliseconds.

Log format, one record per line (the CRI log format of Kubernetes):

    2024-05-01T12:00:00.123456Z stdout F hello world
    2024-05-01T12:00:00.123999Z stderr P a partial line (no newline yet)...

timestamp (RFC 3339, UTC, microseconds), stream ("stdout", "stderr", or "shoal" for the
agent's own notes), "F" for a full line or "P" for a piece of a longer one (a line longer
than 16 KiB, or output without a newline that stayed idle for 0.2 s, e.g. a progress bar),
then the text. Bytes are written as they came (not re-encoded).

Rotation: when the current file reaches MAX_BYTES it is renamed to `LOG_PATH.<offset>` (the
offset of its first byte in the attempt's whole output) and a new one is started; only the KEEP
newest rotated files are kept, so an attempt's logs never take more than (KEEP + 1) x MAX_BYTES.
"""

from __future__ import annotations

import os
import selectors
import sys
import time

MAX_PIECE = 16 * 1024
IDLE_FLUSH_SECONDS = 0.2
READ_BYTES = 64 * 1024


def timestamp(now: float | None = None) -> bytes:
    now = time.time() if now is None else now
    seconds = int(now)
    micros = int((now - seconds) * 1_000_000)
    return (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micros:06d}Z").encode()


def record(stream: bytes, tag: bytes, text: bytes, now: float | None = None) -> bytes:
    return timestamp(now) + b" " + stream + b" " + tag + b" " + text + b"\n"


class RotatingLog:
    def __init__(self, path: str, max_bytes: int, keep: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.keep = max(keep, 1)
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        self.size = os.fstat(self.fd).st_size
        self.start = current_start(path)

    def write(self, data: bytes) -> None:
        """Append whole records; rotate at record boundaries once the file is full."""
        while data:
            if self.max_bytes and self.size >= self.max_bytes:
                self.rotate()
            room = self.max_bytes - self.size if self.max_bytes else len(data)
            cut = len(data) if room >= len(data) else data.rfind(b"\n", 0, room) + 1
            if cut <= 0:  # one record larger than the room left: it goes whole
                cut = data.find(b"\n") + 1 or len(data)
            self._write_all(data[:cut])
            data = data[cut:]

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]
        self.size += len(data)

    def rotate(self) -> None:
        os.close(self.fd)
        os.rename(self.path, f"{self.path}.{self.start}")
        self.start += self.size
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        self.size = 0
        rotated = sorted(rotated_segments(self.path))
        for _, name in rotated[: max(len(rotated) - self.keep, 0)]:
            try:
                os.unlink(name)
            except OSError:
                pass


def rotated_segments(path: str) -> list[tuple[int, str]]:
    """(start offset, file name) of every rotated segment of `path`."""
    directory, base = os.path.split(path)
    prefix = base + "."
    found = []
    try:
        names = os.listdir(directory or ".")
    except OSError:
        return []
    for name in names:
        if name.startswith(prefix) and name[len(prefix):].isdigit():
            found.append((int(name[len(prefix):]), os.path.join(directory, name)))
    return found


def current_start(path: str) -> int:
    """Offset of the current file's first byte: where the newest rotated segment ends."""
    rotated = rotated_segments(path)
    if not rotated:
        return 0
    start, name = max(rotated)
    try:
        return start + os.stat(name).st_size
    except OSError:
        return start


def pump(fds: dict[int, bytes], log: RotatingLog) -> None:
    """Copy every fd (stream name by fd) into `log` as records until all reached EOF."""
    selector = selectors.DefaultSelector()
    pending: dict[int, bytes] = {}
    since: dict[int, float] = {}
    for fd in fds:
        os.set_blocking(fd, False)
        selector.register(fd, selectors.EVENT_READ)
        pending[fd] = b""
    open_fds = set(fds)
    while open_fds:
        timeout = IDLE_FLUSH_SECONDS if any(pending[fd] for fd in open_fds) else None
        events = selector.select(timeout)
        now = time.time()
        out = []
        for key, _ in events:
            fd = key.fd
            try:
                data = os.read(fd, READ_BYTES)
            except BlockingIOError:
                continue
            if not data:
                selector.unregister(fd)
                open_fds.discard(fd)
                if pending[fd]:
                    out.append(record(fds[fd], b"F", pending[fd], now))
                    pending[fd] = b""
                os.close(fd)
                continue
            buffer = pending[fd] + data
            lines = buffer.split(b"\n")
            buffer = lines.pop()
            for line in lines:
                out.append(record(fds[fd], b"F", line, now))
            while len(buffer) > MAX_PIECE:
                out.append(record(fds[fd], b"P", buffer[:MAX_PIECE], now))
                buffer = buffer[MAX_PIECE:]
            if buffer and not pending[fd]:
                since[fd] = now
            pending[fd] = buffer
        for fd in list(open_fds):
            if pending[fd] and now - since.get(fd, now) >= IDLE_FLUSH_SECONDS:
                out.append(record(fds[fd], b"P", pending[fd], now))
                pending[fd] = b""
        if out:
            log.write(b"".join(out))


def main(argv: list[str]) -> int:
    path, max_bytes, keep = argv[1], int(argv[2]), int(argv[3])
    log = RotatingLog(path, max_bytes, keep)
    out_fd, err_fd = (int(fd) for fd in os.environ["SHOAL_LOG_FDS"].split(","))
    pump({out_fd: b"stdout", err_fd: b"stderr"}, log)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
