"""The log writer: one small process per agent between the jobs' stdout/stderr pipes and their logs.

Run as `python -I -S logwriter.py --serve DIR` (the agent starts it, see `agent.runtime.output`).
It listens on the unix socket `DIR/logwriter.v2.sock` (SOCK_SEQPACKET; DIR is the agent's state
directory) and serves every attempt of that agent: per attempt, the agent sends one message with
the log path, the size cap and the read ends of the attempt's stdout and stderr pipes
(SCM_RIGHTS); the writer acknowledges it (with its pid), copies both pipes into the log until
both reached EOF (every holder of the write ends closed them), then closes the log, creates the
attempt's "written" marker (`done_file_for`) and tells the agent that sent it ("done"), if that
agent is still connected.

Why a process of its own: a job printing gigabytes costs the agent nothing, and output keeps
being written while the agent is dead or restarting. It needs only the standard library and
imports nothing from shoal, so it starts in a few milliseconds; one writer serves all attempts of
an agent (one selector loop, one thread), so an attempt costs a message, not a process start.

Lifetime:
- it daemonizes: the process the agent starts binds the socket, forks and exits; the writer
  itself (the fork) runs in a session of its own, not as a child of the agent: a kill -9 of the
  agent's process group does not reach it, and it is no descendant of the agent's to be taken
  for a job;
- one writer per DIR: it holds an exclusive lock on `DIR/logwriter.v2.lock` while it lives, so a
  second one started meanwhile (two agents racing, or an agent while the previous writer exits)
  exits at once with EXIT_ALREADY_SERVED and the agent connects to the first;
- it exits once no agent is connected and no attempt is open (a connected agent keeps it, also
  when idle; an agent killed with attempts open leaves it writing them until they end, and a
  restarted agent connects to it again); a writer nobody connects to exits after STARTUP_WAIT.
- it is the host's local fence (agent/runtime/fence.py): when an agent's connection ends (the
  agent died, however) the attempts it handed over are stopped after the agent's window unless a
  new agent claims them; so it stays while such an orphan waits for its deadline or its SIGKILL;
- if it dies, attempts it served lose the rest of their output (their jobs see EPIPE); a
  connected agent starts a new writer at once and tells it what the dead one watched (so the
  attempts stay fenced); waits for an attempt's output end when the marker exists or the writer
  is gone. (If the agent and its writer die together and the host lives on, nothing stops the
  attempts: the one case the fence does not cover.)

Log format, one record per line (the CRI log format of Kubernetes):

    2024-05-01T12:00:00.123456Z stdout F hello world
    2024-05-01T12:00:00.123999Z stderr P a partial line (no newline yet)...

timestamp (RFC 3339, UTC, microseconds), stream ("stdout", "stderr", or "shoal" for the
agent's own notes), "F" for a full line or "P" for a piece of a longer one (a line longer
than 16 KiB, or output without a newline that stayed pending for 0.2 s, e.g. a progress bar),
then the text. Bytes are written as they came (not re-encoded).

Rotation: when the current file reaches MAX_BYTES it is renamed to `LOG_PATH.<offset>` (the
offset of its first byte in the attempt's whole output) and a new one is started; only the KEEP
newest rotated files are kept, so an attempt's logs never take more than (KEEP + 1) x MAX_BYTES.

A log that cannot be written (disk full) loses that output; the writer keeps draining the pipes
(the job is not blocked) and every other attempt is unaffected. The price of one thread for all
attempts: a write that hangs (a stuck filesystem) holds up every attempt's output meanwhile.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import selectors
import signal
import socket
import struct
import sys
import time

if __package__:
    from agent.runtime import fence
else:  # run as a script (python -I -S logwriter.py): the module next to this file
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import fence  # type: ignore[no-redef]

MAX_PIECE = 16 * 1024
IDLE_FLUSH_SECONDS = 0.2
READ_BYTES = 64 * 1024

# Protocol version in the names: an agent of another version starts a writer of its own (v2: the
# fence's messages; a v2 agent claims a v1 writer's attempts from a v2 writer, which adopts them).
SOCKET_NAME = "logwriter.v2.sock"
LOCK_NAME = "logwriter.v2.lock"
DONE_SUFFIX = ".written"
MAX_MESSAGE = 16 * 1024
STARTUP_WAIT = 10.0
"""A writer no agent connected to within this many seconds exits."""
EXIT_SERVING = 0
"""Exit status of the started process: the writer listens (its fork serves)."""
EXIT_ALREADY_SERVED = 3
"""Exit status of the started process: another writer holds the lock of DIR."""
FENCE_MESSAGES = frozenset({b"hello", b"watch", b"release", b"handover", b"renew"})
"""Messages of the local fence (agent/runtime/fence.py), sent without fds:

    hello\0WINDOW_MS\0GRACE_MS              first on a connection: its window W and kill grace G
    watch\0KEY\0LOG_PATH\0KIND\0PID\0PID_START\0PGID\0BINARY\0CONTAINER_ID
                                            what to stop for an attempt (the owner), or a claim
                                            (a new agent): answered "ok" or "fenced" (too late)
    release\0LOG_PATH                       the attempt ended and was cleaned up: forget it
    handover\0WINDOW_MS                     this agent exits on purpose: wait this long instead of W
    renew\0LEASE_MS\0GRACE_MS                the agent heard from a controller: if it says nothing
                                            more for LEASE_MS, stop its attempts (kill grace GRACE_MS)
"""
# Longest path a unix socket address takes (sun_path is 108 bytes with its NUL).
MAX_SOCKET_PATH = 107


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
        # The old fd is closed only once the new file is open: a failure (disk full) leaves
        # this log writing where it was, never with a closed fd another attempt may reuse.
        os.rename(self.path, f"{self.path}.{self.start}")
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        os.close(self.fd)
        self.fd = fd
        self.start += self.size
        self.size = 0
        rotated = sorted(rotated_segments(self.path))
        for _, name in rotated[: max(len(rotated) - self.keep, 0)]:
            try:
                os.unlink(name)
            except OSError:
                pass

    def close(self) -> None:
        try:
            os.close(self.fd)
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
        if name.startswith(prefix) and name[len(prefix) :].isdigit():
            found.append((int(name[len(prefix) :]), os.path.join(directory, name)))
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


def done_file_for(log_path: str) -> str:
    """The marker the writer creates (empty) once an attempt's output is completely in `log_path`."""
    return os.path.splitext(log_path)[0] + DONE_SUFFIX


def socket_address(directory: str, name: str = SOCKET_NAME) -> tuple[str, int]:
    """(address to bind/connect, fd to close afterwards or -1) of the socket `name` in `directory`.

    A path too long for a unix socket address is reached through /proc/self/fd/N of an fd
    opened on the directory (closed by the caller once bound or connected).
    """
    path = os.path.join(directory, name)
    if len(os.fsencode(path)) <= MAX_SOCKET_PATH:
        return path, -1
    fd = os.open(directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    return f"/proc/self/fd/{fd}/{name}", fd


# --- the writer's loop -----------------------------------------------------------------------------


class Attempt:
    """One attempt's log and its two open pipes."""

    __slots__ = ("key", "conn", "log", "done_file", "open", "out")

    def __init__(self, key: bytes, conn: socket.socket, log: RotatingLog, done_file: str) -> None:
        self.key = key
        self.conn = conn
        self.log = log
        self.done_file = done_file
        self.open = 2
        self.out: list[bytes] = []


class Stream:
    """One pipe of an attempt: the records of a stream ("stdout"/"stderr")."""

    __slots__ = ("fd", "name", "attempt", "pending", "since")

    def __init__(self, fd: int, name: bytes, attempt: Attempt) -> None:
        self.fd = fd
        self.name = name
        self.attempt = attempt
        self.pending = b""
        self.since = 0.0


class Server:
    """The selector loop: accepts agents, takes attempts from them, copies pipes into logs."""

    def __init__(self, listener: socket.socket) -> None:
        self.listener = listener
        self.selector = selectors.DefaultSelector()
        listener.setblocking(False)
        self.selector.register(listener, selectors.EVENT_READ, None)
        self.conns: dict[int, socket.socket] = {}
        self.streams: dict[int, Stream] = {}
        self.partial: set[Stream] = set()
        self.ever_connected = False
        self.pid = os.getpid()
        self.uid = os.geteuid()
        # The local fence (agent/runtime/fence.py): connections are named by a number of their
        # own (an fd number is reused once closed).
        self.book = fence.Book()
        self.fence = fence.Fence(self.book)
        self.conn_ids: dict[int, int] = {}
        self._next_conn = 0

    def run(self, startup_wait: float = STARTUP_WAIT) -> None:
        started = time.monotonic()
        while True:
            if not self.conns and not self.streams and not self.book.busy():
                if self.ever_connected or time.monotonic() - started >= startup_wait:
                    if not self._accept_pending():
                        return  # nobody connected, nothing open, no orphan to stop: done
                    continue
            timeout = self._timeout(started, startup_wait)
            events = self.selector.select(timeout)
            self.fence.run_due(time.monotonic())
            now = time.time()
            touched: list[Attempt] = []
            for key, _ in events:
                if key.data is None:
                    self._accept()
                elif isinstance(key.data, Stream):
                    self._read(key.data, now, touched)
                else:
                    self._serve(key.data)
            for stream in [s for s in self.partial if now - s.since >= IDLE_FLUSH_SECONDS]:
                stream.attempt.out.append(record(stream.name, b"P", stream.pending, now))
                stream.pending = b""
                self.partial.discard(stream)
                touched.append(stream.attempt)
            for attempt in touched:
                if attempt.out:
                    self._write(attempt)
                if attempt.open == 0 and attempt.log is not None:
                    self._finish(attempt)

    def _timeout(self, started: float, startup_wait: float) -> float | None:
        timeouts = []
        if self.partial:
            now = time.time()
            timeouts.append(max(min(s.since for s in self.partial) + IDLE_FLUSH_SECONDS - now, 0.0))
        if not self.ever_connected and not self.conns and not self.streams:
            timeouts.append(max(started + startup_wait - time.monotonic(), 0.0))
        deadline = self.book.next_wake()
        if deadline is not None:
            timeouts.append(max(deadline - time.monotonic(), 0.0))
        return min(timeouts) if timeouts else None

    # --- agents -----------------------------------------------------------------------------------

    def _accept_pending(self) -> bool:
        """Before exiting: take connections already queued (an agent connecting right now)."""
        accepted = False
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # BlockingIOError: none queued
                return accepted
            accepted = self._add_conn(conn) or accepted

    def _accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        self._add_conn(conn)

    def _add_conn(self, conn: socket.socket) -> bool:
        try:
            _, uid, _ = struct.unpack("iII", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        except OSError:
            conn.close()
            return False
        if uid not in (self.uid, 0):
            conn.close()  # only the agent's own user (or root) may hand us attempts
            return False
        conn.setblocking(False)
        self.conns[conn.fileno()] = conn
        self._next_conn += 1
        self.conn_ids[conn.fileno()] = self._next_conn
        self.selector.register(conn, selectors.EVENT_READ, conn)
        self.ever_connected = True
        return True

    def _drop_conn(self, conn: socket.socket) -> None:
        fd = conn.fileno()
        if fd >= 0 and self.conns.pop(fd, None) is not None:
            self.selector.unregister(conn)
            # The agent is gone (its process died, or it exited): the fence's window starts.
            self.book.gone(self.conn_ids.pop(fd), time.monotonic())
        conn.close()  # attempts it sent go on; their "done" goes nowhere

    def _serve(self, conn: socket.socket) -> None:
        while conn.fileno() >= 0:
            try:
                message, fds, flags, _ = socket.recv_fds(conn, MAX_MESSAGE, 2)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._drop_conn(conn)
                return
            if not message and not fds:
                self._drop_conn(conn)  # the agent closed its end (or died)
                return
            self._message(conn, message, fds, flags)

    def _message(self, conn: socket.socket, message: bytes, fds: list[int], flags: int) -> None:
        parts = message.split(b"\0")
        key = parts[1] if len(parts) > 1 else b""
        if parts[0] in FENCE_MESSAGES and not fds:
            self._fence_message(conn, parts)
            return
        if (
            parts[0] != b"open"
            or len(parts) != 5
            or len(fds) != 2
            or flags & (socket.MSG_CTRUNC | socket.MSG_TRUNC)
        ):
            for fd in fds:
                _close(fd)
            why = (
                b"cannot receive the pipes (too many open files?)"
                if flags & socket.MSG_CTRUNC
                else b"bad request"
            )
            self._send(conn, b"err\0" + key + b"\0" + why)
            return
        path = os.fsdecode(parts[2])
        refused = self.book.opened(self.conn_ids[conn.fileno()], path)
        if refused:
            for fd in fds:
                _close(fd)
            self._send(conn, b"err\0" + key + b"\0" + refused.encode())
            return
        try:
            log = RotatingLog(path, int(parts[3]), int(parts[4]))
        except (OSError, ValueError) as err:
            for fd in fds:
                _close(fd)
            self._send(conn, b"err\0" + key + b"\0" + f"cannot open {path}: {err}".encode(errors="replace"))
            return
        attempt = Attempt(key, conn, log, done_file_for(path))
        # Acknowledged before anything is read: once the agent closes its read ends, only we hold them.
        self._send(conn, b"ok\0" + key + b"\0" + str(self.pid).encode())
        for fd, name in zip(fds, (b"stdout", b"stderr"), strict=True):
            os.set_blocking(fd, False)
            os.set_inheritable(fd, False)  # received fds are inheritable: not for the fence's CLI calls
            stream = Stream(fd, name, attempt)
            self.streams[fd] = stream
            self.selector.register(fd, selectors.EVENT_READ, stream)

    def _fence_message(self, conn: socket.socket, parts: list[bytes]) -> None:
        """hello / watch / release / handover (see FENCE_MESSAGES)."""
        conn_id = self.conn_ids[conn.fileno()]
        kind = parts[0]
        try:
            if kind == b"hello" and len(parts) == 3:
                self.book.hello(conn_id, int(parts[1]) / 1000, int(parts[2]) / 1000)
            elif kind == b"handover" and len(parts) == 2:
                self.book.handover(conn_id, int(parts[1]) / 1000)
            elif kind == b"renew" and len(parts) == 3:
                self.book.renew(conn_id, time.monotonic(), int(parts[1]) / 1000, int(parts[2]) / 1000)
            elif kind == b"release" and len(parts) == 2:
                self.book.release(os.fsdecode(parts[1]))
            elif kind == b"watch" and len(parts) == 9:
                key, path = parts[1], os.fsdecode(parts[2])
                target = fence.Target(
                    kind=parts[3].decode(), pid=int(parts[4]), pid_start=float(parts[5]), pgid=int(parts[6]),
                    binary=os.fsdecode(parts[7]), container_id=parts[8].decode(),
                )
                if target.kind not in fence.KINDS:
                    raise ValueError(target.kind)
                fenced_before = os.path.exists(fence.fenced_file_for(path))
                watching = self.book.watch(conn_id, path, target, fenced_before=fenced_before)
                self._send(conn, (b"ok\0" if watching else b"fenced\0") + key + b"\0" + str(self.pid).encode())
            else:
                raise ValueError(kind)
        except (ValueError, UnicodeDecodeError):
            key = parts[1] if len(parts) > 1 and kind == b"watch" else b""
            self._send(conn, b"err\0" + key + b"\0bad fence request")

    def _send(self, conn: socket.socket, message: bytes) -> None:
        """Best effort: an agent that is gone (or not reading) misses it; it can look at the marker."""
        try:
            conn.send(message)
        except OSError:
            pass

    # --- output -----------------------------------------------------------------------------------

    def _read(self, stream: Stream, now: float, touched: list[Attempt]) -> None:
        attempt = stream.attempt
        try:
            data = os.read(stream.fd, READ_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        touched.append(attempt)
        if not data:
            self.selector.unregister(stream.fd)
            del self.streams[stream.fd]
            _close(stream.fd)
            if stream.pending:
                attempt.out.append(record(stream.name, b"F", stream.pending, now))
                stream.pending = b""
            self.partial.discard(stream)
            attempt.open -= 1
            return
        buffer = stream.pending + data
        lines = buffer.split(b"\n")
        buffer = lines.pop()
        for line in lines:
            attempt.out.append(record(stream.name, b"F", line, now))
        while len(buffer) > MAX_PIECE:
            attempt.out.append(record(stream.name, b"P", buffer[:MAX_PIECE], now))
            buffer = buffer[MAX_PIECE:]
        if buffer and not stream.pending:
            stream.since = now
        stream.pending = buffer
        if buffer:
            self.partial.add(stream)
        else:
            self.partial.discard(stream)

    def _write(self, attempt: Attempt) -> None:
        data = b"".join(attempt.out)
        attempt.out.clear()
        try:
            attempt.log.write(data)
        except OSError:
            pass  # e.g. disk full: this output is lost; the pipes keep draining

    def _finish(self, attempt: Attempt) -> None:
        attempt.log.close()
        attempt.log = None  # type: ignore[assignment]
        with contextlib.suppress(OSError):
            os.close(os.open(attempt.done_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644))
        self._send(attempt.conn, b"done\0" + attempt.key)


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def _raise_fd_limit() -> None:
    """Three fds per open attempt: take the hard limit of open files, not the (often 1024) soft one."""
    try:
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, OSError, ValueError):
        pass


def serve(directory: str) -> int:
    """Become DIR's writer: lock, bind, fork; the parent returns EXIT_SERVING once the fork listens."""
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    lock_fd = os.open(LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return EXIT_ALREADY_SERVED
    # Only the lock holder binds: a socket file left here is a dead writer's.
    with contextlib.suppress(FileNotFoundError):
        os.unlink(SOCKET_NAME, dir_fd=dir_fd)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    address, path_fd = socket_address(directory)
    umask = os.umask(0o077)  # the socket: for the agent's user only
    try:
        listener.bind(address)
    finally:
        os.umask(umask)
        if path_fd >= 0:
            os.close(path_fd)
    listener.listen(128)
    if os.fork() != 0:
        os._exit(EXIT_SERVING)  # the agent waits for this exit; the fork serves
    os.setsid()
    os.chdir("/")
    # The fence's CLI calls run in children nobody waits for: the kernel reaps them.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 2)  # the agent reads the started process's stderr only when it failed
    os.close(devnull)
    _raise_fd_limit()
    try:
        Server(listener).run()
    finally:
        # Still holding the lock: no other writer can have bound the name meanwhile.
        with contextlib.suppress(OSError):
            os.unlink(SOCKET_NAME, dir_fd=dir_fd)
        listener.close()
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[1] == "--serve":
        return serve(argv[2])
    sys.stderr.write("usage: logwriter.py --serve DIR\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
