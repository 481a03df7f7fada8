"""Where an attempt's stdout and stderr go: pipes into the agent's log writer process.

One log writer process serves every attempt of an agent (`agent.runtime.logwriter`: format,
rotation, and how it lives). The agent starts it on its first attempt and keeps a connection to
it (a unix socket in the agent's state directory, `writer_dir`); an agent restarted meanwhile
connects to the writer already there. Per attempt, `open_output` creates the stdout and stderr
pipes, hands their read ends to the writer in one message, and returns once the writer has
taken them; runtimes hand the job the write ends and close them in the agent right after.

The writer runs in a session of its own, not as a child of the agent: the job's output is still
written while no agent runs (killed, crashed, restarted). When both pipes of an attempt reached
EOF and everything is in the log, the writer creates the attempt's marker file (`done_file`,
`output.written` next to `output.log`) and tells the agent that handed the pipes over, if it is
still connected. `Output.wait_writer` waits for that message; a re-attaching agent waits for the
marker, or for the writer process to be gone (pid and creation time in the attempt's handle).

The writer is also the host's local fence (`agent.runtime.fence`): the runtimes tell it what to
stop for each attempt (`Output.watch`, before the job's command runs), a new agent claims the
attempts it re-attached to once the controller accepted them (`claim`), `release` forgets an
attempt that ended, and `announce_handover` gives the fence the longer window of an intentional
exit. The connection is the agent's life line: when it ends, the fence's window starts.

The agent closes its connection after IDLE_CLOSE_SECONDS without an attempt in flight or
watched (and on exit the kernel closes it); a writer with no agent connected, no attempt open
and no orphan to stop exits, so no writer outlives the agent and its attempts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from agent.runtime import fence, logwriter
from agent.runtime.reattach import output_written
from shoal import log

_log = log.get("agent.runtime.output")

WRITER_SCRIPT = Path(logwriter.__file__).resolve()
# Defaults: 64 MiB per file, 3 rotated files kept: at most 256 MiB of logs per attempt.
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_KEEP = 3

START_SECONDS = 10.0
"""How long starting (or reaching) a log writer may take before the attempt cannot start."""
ACK_SECONDS = 10.0
"""How long the writer may take to acknowledge an attempt's pipes."""
IDLE_CLOSE_SECONDS = 30.0
"""The agent disconnects from a writer after this long without an attempt in flight."""
CHECK_SECONDS = 1.0
"""While waiting for a writer's "done": how often the marker and the writer are looked at too."""
POLL_SECONDS = 0.05


# What the writer's environment keeps of the agent's: the fence may run the container CLI.
_WRITER_ENV = ("PATH", "HOME", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "CONTAINERS_CONF",
               "CONTAINERS_STORAGE_CONF", "CONTAINER_HOST", "DOCKER_HOST", "DOCKER_CONFIG")


@dataclass(frozen=True)
class FenceSettings:
    """The promises this agent's connections make to the fence (see agent/runtime/fence.py)."""

    window: float = fence.DEFAULT_WINDOW
    """Seconds the fence waits for a new agent after this one died before stopping its attempts."""
    grace: float = fence.DEFAULT_GRACE
    """Seconds between the fence's SIGTERM and SIGKILL."""


_fence_settings = [FenceSettings()]


def configure_fence(settings: FenceSettings) -> None:
    """Set once by `shoal agent` from its flags; sent on every connection to a writer."""
    _fence_settings[0] = settings


def fence_settings() -> FenceSettings:
    return _fence_settings[0]


class Fenced(OSError):
    """The fence stopped (or is stopping) the attempt: it cannot be claimed any more."""


@dataclass(frozen=True)
class LogLimits:
    """Size cap of one attempt's log: `max_bytes` per file, `keep` rotated files."""

    max_bytes: int = DEFAULT_MAX_BYTES
    keep: int = DEFAULT_KEEP


@dataclass
class Output:
    """The pipe ends an attempt writes to, and the log writer that took the read ends."""

    stdout: int
    stderr: int
    writer_pid: int
    """Pid of the log writer process (shared by the agent's attempts)."""
    writer_start_time: float
    """Creation time of the writer process (recorded in the attempt's handle)."""
    done_file: str
    """Created by the writer once the attempt's output is completely in its log."""
    log_path: str = ""
    _done: asyncio.Future[bool] | None = field(default=None, repr=False)
    _writer: _Writer | None = field(default=None, repr=False)

    async def watch(self, target: fence.Target) -> None:
        """Tell the fence what to stop for this attempt if this agent dies; returns once it
        knows. OSError if the writer is gone (the attempt must not run unfenced)."""
        if self._writer is None:
            raise OSError("no log writer holds this attempt")
        if self._writer.closed:  # it died: the writer that took over (see `_refence`)
            self._writer = await _writer(self._writer.directory)
        await self._writer.watch(self.log_path, target)

    @property
    def handle_fields(self) -> dict[str, float | int | str]:
        """`AttemptHandle` fields that let a later agent wait for this attempt's output."""
        return {
            "writer_pid": self.writer_pid,
            "writer_start_time": self.writer_start_time,
            "writer_done_file": self.done_file,
        }

    def close_job_ends(self) -> None:
        for fd in (self.stdout, self.stderr):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.stdout = self.stderr = -1

    async def wait_writer(self) -> None:
        """Until the writer wrote everything (every holder of the pipes' write ends is gone)."""
        done = self._done
        if done is not None and done.done() and done.result():
            return
        if done is not None and done.get_loop() is asyncio.get_running_loop():
            while True:
                try:
                    if await asyncio.wait_for(asyncio.shield(done), CHECK_SECONDS):
                        return
                    break  # the connection was lost: the marker tells
                except TimeoutError:
                    if output_written(self.done_file, self.writer_pid, self.writer_start_time):
                        return
        while not output_written(self.done_file, self.writer_pid, self.writer_start_time):  # noqa: ASYNC110
            await asyncio.sleep(POLL_SECONDS)


def writer_dir(log_path: Path) -> Path:
    """The directory whose log writer serves the attempt logging to `log_path`.

    The agent's state directory for its own layout, `<state>/attempts/<job>/<n>/output.log`
    (agent/attempts.py), so that one writer serves all of its attempts; else the log's directory.
    """
    parents = log_path.parents
    if len(parents) >= 4 and parents[2].name == "attempts":
        return parents[3]
    return log_path.parent


async def open_output(log_path: Path, limits: LogLimits) -> Output:
    """Create the attempt's pipes and hand their read ends to the log writer (started if needed).

    The caller owns the returned write ends. The log file exists when this returns (readers may
    open it at once). OSError if no writer takes the pipes.
    """
    log_path, done_file = _prepare_files(log_path)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    try:
        writer, done = await _hand_over(writer_dir(log_path), log_path, limits, out_r, err_r)
    except BaseException:
        for fd in (out_r, out_w, err_r, err_w):
            os.close(fd)
        raise
    os.close(out_r)
    os.close(err_r)
    return Output(
        stdout=out_w,
        stderr=err_w,
        writer_pid=writer.pid,
        writer_start_time=writer.start_time,
        done_file=done_file,
        log_path=str(log_path),
        _done=done,
        _writer=writer,
    )


async def claim(log_path: Path, target: fence.Target) -> None:
    """A re-attached attempt the controller still wants: take it over from the dead agent before
    the fence stops it. `Fenced` if that is too late; OSError if no writer can be reached (a
    new one is started if none runs: it watches the attempt from now on)."""
    path = os.path.abspath(log_path)  # noqa: ASYNC240 - no I/O: the cwd is known
    writer = await _writer(writer_dir(Path(path)))
    await writer.watch(path, target)


def release(log_path: Path) -> None:
    """The attempt ended and was cleaned up: the fence forgets it (if this process talks to it)."""
    path = os.path.abspath(log_path)
    writer = _writers.get(writer_dir(Path(path)))
    if writer is not None:
        writer.release(path)


def renew_lease(seconds: float, grace: float) -> None:
    """This agent heard from a controller: every writer it talks to holds off its lease-expiry
    stop (agent/runtime/fence.py) for `seconds` more; a few bytes per writer, no answer. A writer
    connected later gets what is left of the lease at once (`_Writer.__init__`)."""
    _lease[0] = (time.monotonic() + seconds, grace)
    for writer in list(_writers.values()):
        writer.renew()


# (monotonic time the lease runs out, kill grace) of the last renewal; None before the first.
_lease: list[tuple[float, float] | None] = [None]


def forget_lease() -> None:
    """No lease for writers connected from now on (the session that renewed it has ended)."""
    _lease[0] = None


def announce_handover(seconds: float) -> int:
    """This agent exits on purpose: every writer it talks to waits `seconds` (not the window)
    before stopping its attempts. Returns how many writers were told."""
    told = 0
    for writer in list(_writers.values()):
        if writer.send_control(b"handover\0" + str(int(seconds * 1000)).encode()):
            told += 1
    return told


def _prepare_files(log_path: Path) -> tuple[Path, str]:
    """(absolute log path, its marker): the log created, a marker of an earlier use removed."""
    log_path = log_path.absolute()
    os.close(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644))
    done_file = logwriter.done_file_for(str(log_path))
    for stale in (done_file, fence.fenced_file_for(str(log_path))):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(stale)  # an earlier attempt's, if the path is used again
    return log_path, done_file


async def disconnect_log_writers() -> None:
    """Close this process's connections to log writers (each exits once its attempts ended)."""
    forget_lease()
    for writer in list(_writers.values()):
        writer.close(notify=writer.loop is asyncio.get_running_loop())


def note(log_path: Path, text: str) -> None:
    """Append the agent's own line(s) to an attempt's log (stream "shoal")."""
    data = b"".join(logwriter.record(b"shoal", b"F", line.encode()) for line in text.splitlines() or [""])
    log_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


# --- the connection to the writer ----------------------------------------------------------------


class WriterRefused(OSError):
    """The writer could not take the attempt (e.g. its log file cannot be opened)."""


class _Writer:
    """This process's connection to the log writer of one directory (bound to one event loop)."""

    def __init__(self, directory: Path, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        self.directory = directory
        self.sock = sock
        self.loop = loop
        self.pid = 0
        self.start_time = 0.0
        self.closed = False
        self._acks: dict[bytes, asyncio.Future[int]] = {}
        self._done: dict[bytes, asyncio.Future[bool]] = {}
        # Attempts the fence watches for this process: log path -> what to stop (all it was told).
        self._watched: dict[str, fence.Target] = {}
        self._next = 0
        self._idle: asyncio.TimerHandle | None = None
        sock.setblocking(False)
        loop.add_reader(sock.fileno(), self._readable)
        settings = fence_settings()
        # First on the connection: what the fence waits and grants when this agent dies.
        self.send_control(b"hello\0" + str(int(settings.window * 1000)).encode() + b"\0"
                          + str(int(settings.grace * 1000)).encode())
        self.renew()  # the lease runs from this agent's last word from a controller, not from now
        self._schedule_idle_close()

    def renew(self) -> None:
        lease = _lease[0]
        if lease is not None and lease[0] > time.monotonic():  # an expired one: our own self-fencing acts
            until, grace = lease
            left = until - time.monotonic()
            self.send_control(b"renew\0" + str(int(left * 1000)).encode() + b"\0" + str(int(grace * 1000)).encode())

    def send_control(self, message: bytes) -> bool:
        """A message without an answer (a few bytes: the socket buffer always takes it)."""
        if self.closed:
            return False
        try:
            self.sock.send(message)
        except OSError:
            return False
        return True

    async def watch(self, log_path: str, target: fence.Target) -> None:
        """What the fence stops for the attempt logging to `log_path` (or a claim of it)."""
        if self.closed:
            raise ConnectionResetError("the connection to the log writer is closed")
        self._next += 1
        key = str(self._next).encode()
        message = b"\0".join((
            b"watch", key, os.fsencode(log_path), target.kind.encode(), str(target.pid).encode(),
            repr(target.pid_start).encode(), str(target.pgid).encode(), os.fsencode(target.binary),
            target.container_id.encode(),
        ))  # fmt: skip
        ack: asyncio.Future[int] = self.loop.create_future()
        self._acks[key] = ack
        known = self._watched.get(log_path)
        self._watched[log_path] = target if known is None else known.merged(target)
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        try:
            await self._send(message, [])
            await asyncio.wait_for(ack, ACK_SECONDS)
        except TimeoutError:
            self._watched.pop(log_path, None)
            raise OSError(f"the log writer in {self.directory} did not answer within {ACK_SECONDS:g}s") from None
        except BaseException:
            self._watched.pop(log_path, None)
            raise
        finally:
            self._acks.pop(key, None)
            self._schedule_idle_close()

    def release(self, log_path: str) -> None:
        if log_path in self._watched:
            del self._watched[log_path]
            self.send_control(b"release\0" + os.fsencode(log_path))
            self._schedule_idle_close()

    async def open(self, log_path: Path, limits: LogLimits, out_r: int, err_r: int) -> asyncio.Future[bool]:
        """Hand over an attempt's read ends; its "done" future once the writer took them."""
        if self.closed:
            raise ConnectionResetError("the connection to the log writer is closed")
        self._next += 1
        key = str(self._next).encode()
        message = b"\0".join(
            (b"open", key, os.fsencode(log_path), str(limits.max_bytes).encode(), str(limits.keep).encode())
        )
        ack: asyncio.Future[int] = self.loop.create_future()
        done: asyncio.Future[bool] = self.loop.create_future()
        self._acks[key] = ack
        self._done[key] = done
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        try:
            await self._send(message, [out_r, err_r])
            try:
                pid = await asyncio.wait_for(ack, ACK_SECONDS)
            except TimeoutError:
                raise OSError(
                    f"the log writer in {self.directory} did not take the attempt's output "
                    f"within {ACK_SECONDS:g}s"
                ) from None
        except BaseException:
            self._done.pop(key, None)
            self._schedule_idle_close()
            raise
        finally:
            self._acks.pop(key, None)
        if pid != self.pid:
            self.pid = pid
            try:
                self.start_time = psutil.Process(pid).create_time()
            except psutil.Error:
                self.start_time = 0.0
        return done

    async def _send(self, message: bytes, fds: list[int]) -> None:
        while True:
            if self.closed:
                raise ConnectionResetError("the connection to the log writer is closed")
            try:
                if fds:
                    socket.send_fds(self.sock, [message], fds)
                else:
                    self.sock.send(message)
                return
            except (BlockingIOError, InterruptedError):
                writable: asyncio.Future[None] = self.loop.create_future()
                self.loop.add_writer(self.sock.fileno(), _resolve, writable)
                try:
                    await asyncio.wait_for(writable, ACK_SECONDS)
                finally:
                    self.loop.remove_writer(self.sock.fileno())

    def _readable(self) -> None:
        while not self.closed:
            try:
                message = self.sock.recv(logwriter.MAX_MESSAGE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                message = b""
            if not message:  # the writer died (it never exits while an agent is connected)
                lost = dict(self._watched)
                self.close()
                if lost:
                    _refence(self.directory, lost, self.loop)
                return
            kind, _, rest = message.partition(b"\0")
            key, _, text = rest.partition(b"\0")
            if kind == b"done":
                done = self._done.pop(key, None)
                if done is not None and not done.done():
                    done.set_result(True)
                self._schedule_idle_close()
                continue
            ack = self._acks.get(key)
            if ack is None or ack.done():
                continue
            if kind == b"ok":
                ack.set_result(int(text))
            elif kind == b"fenced":
                ack.set_exception(Fenced("the host's fence stopped this attempt (its agent was gone too long)"))
            else:
                ack.set_exception(WriterRefused(text.decode(errors="replace") or "the log writer refused"))

    def _schedule_idle_close(self) -> None:
        # Never while the fence watches an attempt for us: closing would start its window.
        if not self.closed and not self._done and not self._acks and not self._watched and self._idle is None:
            self._idle = self.loop.call_later(IDLE_CLOSE_SECONDS, self._close_if_idle)

    def _close_if_idle(self) -> None:
        self._idle = None
        if not self._done and not self._acks and not self._watched:
            self.close()

    def close(self, *, notify: bool = True) -> None:
        """Disconnect; with `notify`, whoever waits on this connection is told (on its loop)."""
        if self.closed:
            return
        self.closed = True
        if _writers.get(self.directory) is self:
            del _writers[self.directory]
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        with contextlib.suppress(Exception):  # the loop may be closed already
            self.loop.remove_reader(self.sock.fileno())
        self.sock.close()
        acks, dones = list(self._acks.values()), list(self._done.values())
        self._acks.clear()
        self._done.clear()
        if notify:
            for ack in acks:
                if not ack.done():
                    ack.set_exception(ConnectionResetError("the log writer closed the connection"))
            for done in dones:
                if not done.done():
                    done.set_result(False)  # not known: waiters look at the marker


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _refence(directory: Path, lost: dict[str, fence.Target], loop: asyncio.AbstractEventLoop) -> None:
    """The writer died: its attempts lost their pipes (the rest of their output) and their fence.
    Start a new writer and tell it every attempt the old one watched for this process, so that
    they are still stopped if this agent dies too."""

    async def again() -> None:
        _log.warning("the log writer died: a new one fences the attempts (their further output is lost)",
                     directory=str(directory), attempts=len(lost))
        try:
            writer = await _writer(directory)
        except OSError as err:
            _log.error("cannot start a new log writer: the attempts run unfenced", directory=str(directory),
                       error=str(err))
            return
        for path, target in lost.items():
            try:
                await writer.watch(path, target)
            except OSError as err:
                _log.error("cannot fence an attempt again", log_path=path, error=str(err))

    _refencing[directory] = loop.create_task(again(), name=f"refence-{directory}")


async def refenced() -> None:
    """Until attempts of writers that died are fenced again by new writers (see `_refence`)."""
    while _refencing:
        directory, task = next(iter(_refencing.items()))
        await asyncio.gather(task, return_exceptions=True)
        if _refencing.get(directory) is task:
            del _refencing[directory]


_refencing: dict[Path, asyncio.Task[None]] = {}
_writers: dict[Path, _Writer] = {}
_locks: dict[Path, tuple[asyncio.AbstractEventLoop, asyncio.Lock]] = {}


async def _hand_over(
    directory: Path, log_path: Path, limits: LogLimits, out_r: int, err_r: int
) -> tuple[_Writer, asyncio.Future[bool]]:
    """Give the read ends to the directory's writer; once more to a new writer if it went away."""
    for last in (False, True):
        writer = await _writer(directory)
        try:
            return writer, await writer.open(log_path, limits, out_r, err_r)
        except ConnectionError as err:  # it exited or died before taking them: we still hold them
            writer.close()
            if last:
                raise OSError(f"the log writer in {directory} went away: {err}") from err
    raise AssertionError("unreachable")


async def _writer(directory: Path) -> _Writer:
    """The connection to `directory`'s writer, connecting (and starting the writer) if needed."""
    loop = asyncio.get_running_loop()
    for other in [w for w in _writers.values() if w.loop is not loop]:
        other.close(notify=False)  # of an event loop that is gone (tests run one loop each)
    writer = _writers.get(directory)
    if writer is not None:
        return writer
    held = _locks.get(directory)
    if held is None or held[0] is not loop:
        held = _locks[directory] = (loop, asyncio.Lock())
    async with held[1]:
        writer = _writers.get(directory)
        if writer is None:
            writer = _Writer(directory, await _connect(directory), loop)
            _writers[directory] = writer
        return writer


async def _connect(directory: Path) -> socket.socket:
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            return _connect_once(directory)
        except (FileNotFoundError, ConnectionRefusedError) as err:
            if time.monotonic() > deadline:
                raise OSError(f"cannot reach the log writer in {directory}: {err}") from err
        status, why = await _start_writer(directory, deadline)
        if status == logwriter.EXIT_ALREADY_SERVED:
            await asyncio.sleep(0.01)  # another writer is starting, or exiting: look again
        elif status != logwriter.EXIT_SERVING:
            raise OSError(f"the log writer could not start in {directory} (exit status {status}): {why}")


def _connect_once(directory: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        address, path_fd = logwriter.socket_address(str(directory))
        try:
            sock.settimeout(START_SECONDS)
            sock.connect(address)
        finally:
            if path_fd >= 0:
                os.close(path_fd)
        _, uid, _ = struct.unpack("iII", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        if uid != os.geteuid():
            raise OSError(f"the log writer socket in {directory} belongs to uid {uid}, not to this agent")
    except BaseException:
        sock.close()
        raise
    return sock


async def _start_writer(directory: Path, deadline: float) -> tuple[int, str]:
    """Start a writer for `directory`: (exit status of the started process, its error output).

    The process binds the socket, forks the writer (in a session of its own) and exits: the
    writer is no child of the agent. Exit status EXIT_ALREADY_SERVED: another writer holds the
    directory.
    """
    proc = subprocess.Popen(  # noqa: ASYNC220 - fork+exec is quick; its exit is polled below
        [sys.executable, "-I", "-S", str(WRITER_SCRIPT), "--serve", str(directory)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        close_fds=True,
        cwd="/",
        env={name: os.environ[name] for name in _WRITER_ENV if name in os.environ},
    )
    assert proc.stderr is not None
    try:
        while (status := proc.poll()) is None:
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise OSError(f"the log writer did not start within {START_SECONDS:g}s")
            await asyncio.sleep(0.002)
        if status in (logwriter.EXIT_SERVING, logwriter.EXIT_ALREADY_SERVED):
            return status, ""
        # No writer was forked: nothing else holds the pipe, reading does not block.
        lines = proc.stderr.read(4096).decode(errors="replace").strip().splitlines()
        return status, lines[-1] if lines else ""
    finally:
        proc.stderr.close()
