"""The local fence: stops a dead agent's attempts before the controller runs them elsewhere.

It lives in the agent's log writer process (`agent.runtime.logwriter`), which is one process per
agent state directory, runs in a session of its own (a kill -9 of the agent, or of the agent's
process group, does not reach it) and already holds every attempt's pipes. Like the writer it
needs only the standard library: it runs under `python -I -S`.

The rule, for every attempt an agent handed to its writer:

- While the agent that owns it is connected, nothing happens.
- The moment the owner's connection ends (EOF on the unix socket: the kernel closes it when the
  agent process dies, however it dies) the attempt is orphaned, with a deadline: the owner's
  window W (`agent --fence-window`, 0.5 s), or the longer hand-over window it announced before
  exiting on purpose (`kill -USR2`, `--keep-jobs-on-exit`; granted by the controller first).
- A new agent of the same state directory takes an orphan back (`watch` from its connection)
  only after the controller accepted it (Registered, the attempt not stale); before the
  deadline that cancels it, after it the claim is refused ("fenced").
- At the deadline the fence records that it stops the attempt (the marker `output.fenced`
  next to the attempt's log, holding the status reason the next agent reports), sends SIGTERM
  (to the process group; a container's init), and SIGKILL after the owner's fence kill grace G
  (`agent --fence-kill-grace`, 0.5 s). A container whose host pid is not known yet is stopped
  through the runtime's CLI (`stop`, then `rm --force`).
- The controller waits W + G + its `--fence-margin` after a broken stream before it requeues
  (the agent reports W and G in Register), so attempt 1 is dead before attempt 2 can start.
- A lease covers an agent that is alive but stuck (SIGSTOP, a hung process): the agent renews
  it each time it hears from a controller, for its fence timeout F; if it runs out while the
  connection is still open, the fence stops that agent's attempts at once (SIGTERM, the agent's
  kill grace, SIGKILL), as the agent's own self-fencing would if it could run: by F + kill
  grace, before the controller's agent-lost timeout. A lease is armed by the first renewal (an
  agent that heard from a controller sends what is left of its lease when it connects).

`Book` is the pure part (no I/O, no clock: `now` is an argument); `Fence` performs its decisions
(signals, markers, CLI calls in children of their own) and is driven by the writer's loop.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
from dataclasses import dataclass, field

PROCESS = "process"
CONTAINER = "container"
KINDS = (PROCESS, CONTAINER)
FENCED_SUFFIX = ".fenced"
REASON_AGENT_GONE = "Host lost: agent exited and its jobs were stopped"
REASON_AGENT_STUCK = "Host lost: agent stopped responding and its jobs were stopped"
DEFAULT_WINDOW = 0.5
"""Seconds a dead agent's attempts wait for a new agent before they are stopped (W)."""
DEFAULT_GRACE = 0.5
"""Seconds between SIGTERM and SIGKILL when the fence stops attempts (G)."""
CLI_TIMEOUT = 60
"""Seconds a container CLI call made by the fence may take."""


def fenced_file_for(log_path: str) -> str:
    """The marker the fence writes (with the status reason) before it stops an attempt."""
    return os.path.splitext(log_path)[0] + FENCED_SUFFIX


def read_fenced(log_path: str) -> str:
    """The status reason in an attempt's marker, "" if the fence never stopped it."""
    try:
        with open(fenced_file_for(log_path), "rb") as source:
            text = source.read(4096).decode(errors="replace").strip()
    except OSError:
        return ""
    return text or REASON_AGENT_GONE


# --- the pure part ------------------------------------------------------------------------------


@dataclass
class Target:
    """What to stop for one attempt (all from the agent; 0/"" = not known yet)."""

    kind: str = ""
    pid: int = 0
    """Process: the attempt's gate (leader of its group). Container: its init's host pid."""
    pid_start: float = 0.0
    """Creation time of `pid` (seconds since the epoch, as psutil's create_time)."""
    pgid: int = 0
    """Process: the attempt's group. Container: the group of its `start --attach` CLI."""
    binary: str = ""
    """Container: the CLI (podman or docker)."""
    container_id: str = ""

    def merged(self, newer: Target) -> Target:
        """`newer`, keeping what this one knew and the newer one does not."""
        return Target(
            kind=newer.kind or self.kind,
            pid=newer.pid or self.pid,
            pid_start=newer.pid_start if newer.pid else self.pid_start,
            pgid=newer.pgid or self.pgid,
            binary=newer.binary or self.binary,
            container_id=newer.container_id or self.container_id,
        )


@dataclass
class Owner:
    """One agent connection's promises."""

    window: float = DEFAULT_WINDOW
    grace: float = DEFAULT_GRACE
    handover: float = 0.0
    """Announced hand-over window (0 = none): replaces `window` when the connection ends."""
    lease_until: float | None = None
    """While connected: its attempts are stopped at this time unless renewed (None = no lease)."""
    lease_grace: float = DEFAULT_GRACE


OWNED, ORPHANED, TERMINATING, STOPPED = "owned", "orphaned", "terminating", "stopped"


@dataclass
class Watched:
    """One attempt the fence watches, named by its log path (unique per attempt on a host)."""

    path: str
    owner: int | None
    target: Target = field(default_factory=Target)
    state: str = OWNED
    deadline: float = 0.0
    """ORPHANED: when it is stopped; TERMINATING: when SIGKILL follows."""
    grace: float = DEFAULT_GRACE
    reason: str = REASON_AGENT_GONE


@dataclass(frozen=True)
class Action:
    """What the fence must do now: "terminate" (marker + SIGTERM) or "kill" (SIGKILL)."""

    kind: str
    path: str
    target: Target
    grace: float
    reason: str = REASON_AGENT_GONE


class Book:
    """Who owns which attempt, and when an orphan is stopped. Pure: the caller passes the time."""

    def __init__(self) -> None:
        self.owners: dict[int, Owner] = {}
        self.watched: dict[str, Watched] = {}

    def hello(self, conn: int, window: float, grace: float) -> None:
        self.owners[conn] = Owner(window=max(window, 0.0), grace=max(grace, 0.0))

    def handover(self, conn: int, seconds: float) -> None:
        owner = self.owners.setdefault(conn, Owner())
        owner.handover = max(seconds, 0.0)

    def renew(self, conn: int, now: float, seconds: float, grace: float) -> None:
        """The agent heard from a controller: its attempts are safe for `seconds` more."""
        owner = self.owners.setdefault(conn, Owner())
        owner.lease_until = now + max(seconds, 0.0)
        owner.lease_grace = max(grace, 0.0)

    def opened(self, conn: int, path: str) -> str:
        """A new attempt's log handed over: "" if accepted, else why not."""
        watched = self.watched.get(path)
        if watched is not None and watched.state in (ORPHANED, TERMINATING):
            return "an earlier run of this attempt is still being stopped on this node"
        self.owners.setdefault(conn, Owner())
        self.watched[path] = Watched(path=path, owner=conn)
        return ""

    def watch(self, conn: int, path: str, target: Target, *, fenced_before: bool = False) -> bool:
        """The owner tells what to stop, or a new agent claims an attempt: False = too late, the
        fence stopped it (or is stopping it): the claimer must let it end and report it lost."""
        self.owners.setdefault(conn, Owner())
        watched = self.watched.get(path)
        if watched is None:
            if fenced_before:
                return False
            self.watched[path] = Watched(path=path, owner=conn, target=target)
            return True
        if watched.state in (TERMINATING, STOPPED):
            return False
        watched.owner = conn
        watched.state = OWNED
        watched.deadline = 0.0
        watched.target = watched.target.merged(target)
        return True

    def release(self, path: str) -> None:
        """The attempt ended and its agent cleaned up: forget it."""
        self.watched.pop(path, None)

    def gone(self, conn: int, now: float) -> None:
        """The connection ended: its attempts are orphaned until its window passes."""
        owner = self.owners.pop(conn, Owner())
        window = owner.handover or owner.window
        for watched in self.watched.values():
            if watched.owner == conn and watched.state == OWNED:
                watched.owner = None
                watched.state = ORPHANED
                watched.deadline = now + window
                watched.grace = owner.grace

    def due(self, now: float) -> list[Action]:
        """What to do now; the caller reports back with `terminated` / `stopped`."""
        for conn, owner in self.owners.items():
            if owner.lease_until is not None and owner.lease_until <= now:
                owner.lease_until = None  # stuck: its attempts are stopped now (a later
                for watched in self.watched.values():  # renewal saves only newer ones)
                    if watched.owner == conn and watched.state == OWNED:
                        watched.owner = None
                        watched.state = ORPHANED
                        watched.deadline = now
                        watched.grace = owner.lease_grace
                        watched.reason = REASON_AGENT_STUCK
        actions = []
        for watched in self.watched.values():
            if watched.state in (ORPHANED, TERMINATING) and watched.deadline <= now:
                kind = "terminate" if watched.state == ORPHANED else "kill"
                actions.append(Action(kind, watched.path, watched.target, watched.grace, watched.reason))
        return actions

    def terminated(self, path: str, now: float) -> None:
        """SIGTERM went out: SIGKILL follows after the grace."""
        watched = self.watched.get(path)
        if watched is not None and watched.state == ORPHANED:
            watched.state = TERMINATING
            watched.deadline = now + watched.grace

    def stopped(self, path: str) -> None:
        """Nothing of it runs any more (killed, or found dead): claims of it are refused."""
        watched = self.watched.get(path)
        if watched is not None:
            watched.state = STOPPED

    def next_deadline(self) -> float | None:
        """The next orphan's deadline or SIGKILL (None: nothing pending)."""
        pending = [w.deadline for w in self.watched.values() if w.state in (ORPHANED, TERMINATING)]
        return min(pending) if pending else None

    def next_wake(self) -> float | None:
        """When `due` has something to do next: a deadline, or a lease of an owner of attempts."""
        owning = {w.owner for w in self.watched.values() if w.state == OWNED}
        times = [o.lease_until for c, o in self.owners.items() if o.lease_until is not None and c in owning]
        deadline = self.next_deadline()
        if deadline is not None:
            times.append(deadline)
        return min(times) if times else None

    def busy(self) -> bool:
        """Whether an orphan still waits for its deadline or its SIGKILL (the writer must stay)."""
        return self.next_deadline() is not None


# --- the I/O part -------------------------------------------------------------------------------


def proc_start_time(pid: int) -> float | None:
    """Creation time of `pid` in seconds since the epoch (as psutil computes it), None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as source:
            stat = source.read().decode(errors="replace")
        ticks = int(stat[stat.rindex(")") + 2 :].split()[19])
        return _boot_time() + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


@functools.cache
def _boot_time() -> float:
    with open("/proc/stat", "rb") as source:
        for line in source:
            if line.startswith(b"btime"):
                return float(line.split()[1])
    raise ValueError("no btime in /proc/stat")


def _proc_state_and_group(pid: int) -> tuple[str, int] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as source:
            stat = source.read().decode(errors="replace")
        fields = stat[stat.rindex(")") + 2 :].split()
        return fields[0], int(fields[2])
    except (OSError, ValueError, IndexError):
        return None


START_SLACK = 0.05
"""Seconds two reads of one process's creation time may differ by (float rounding)."""


def same_process(pid: int, start: float) -> bool:
    """Whether `pid` runs (not a zombie) and is the process created at `start`."""
    if pid <= 0:
        return False
    created = proc_start_time(pid)
    if created is None or (start and abs(created - start) > START_SLACK):
        return False
    found = _proc_state_and_group(pid)
    return found is not None and found[0] not in ("Z", "X")


class Groups:
    """Live processes by process group, read from /proc once (on first use) and kept: one scan
    serves every attempt stopped at the same moment, however many."""

    def __init__(self) -> None:
        self._members: dict[int, list[int]] | None = None

    def alive(self, pgid: int, not_before: float) -> bool:
        """Whether group `pgid` has a live member created at or after `not_before` (an older
        group that reused the number is not ours)."""
        if pgid <= 0:
            return False
        if self._members is None:
            self._members = {}
            for name in os.listdir("/proc"):
                if name.isdigit():
                    found = _proc_state_and_group(int(name))
                    if found is not None and found[0] not in ("Z", "X"):
                        self._members.setdefault(found[1], []).append(int(name))
        for pid in self._members.get(pgid, ()):
            created = proc_start_time(pid)
            if created is not None and created >= not_before - START_SLACK:
                return True
        return False


def group_alive(pgid: int, not_before: float) -> bool:
    return Groups().alive(pgid, not_before)


def target_alive(target: Target, groups: Groups | None = None) -> bool:
    """Whether anything of the attempt may still run (unknown counts as alive)."""
    if target.kind == PROCESS:
        return same_process(target.pid, target.pid_start) or (groups or Groups()).alive(target.pgid, target.pid_start)
    if target.kind == CONTAINER:
        if target.pid:
            return same_process(target.pid, target.pid_start)
        return True  # not known whether it started: the CLI decides
    return False  # nothing was ever started (the agent died before telling what)


class Fence:
    """Carries out the book's actions. Called from the writer's (single-threaded) loop."""

    def __init__(self, book: Book) -> None:
        self.book = book

    def run_due(self, now: float) -> None:
        actions = self.book.due(now)
        groups = Groups()
        for action in actions:
            try:
                if action.kind == "terminate":
                    self._terminate(action, now, groups)
                else:
                    self._kill(action, groups)
            except Exception:  # noqa: BLE001 - one attempt's failure must not stop the others
                self.book.stopped(action.path)

    def _terminate(self, action: Action, now: float, groups: Groups) -> None:
        target = action.target
        if not target_alive(target, groups):
            self.book.stopped(action.path)
            return
        _write_marker(action.path, action.reason)
        if target.kind == CONTAINER and not target.pid:
            # Its host pid is not known: the CLI stops it (and removes it), in a child of its own.
            _spawn_container_stop(target, action.grace)
            self.book.stopped(action.path)
            return
        if action.grace > 0:
            self._signal(target, signal.SIGTERM, groups)
            self.book.terminated(action.path, now)
        else:
            self._kill(action, groups)

    def _kill(self, action: Action, groups: Groups) -> None:
        target = action.target
        self._signal(target, signal.SIGKILL, groups)
        if target.kind == CONTAINER:
            _spawn_cli(target.binary, "rm", "--force", target.container_id)
        self.book.stopped(action.path)

    @staticmethod
    def _signal(target: Target, signum: int, groups: Groups) -> None:
        if target.kind == PROCESS:
            if same_process(target.pid, target.pid_start) or groups.alive(target.pgid, target.pid_start):
                with contextlib.suppress(OSError):
                    os.killpg(target.pgid, signum)
            return
        # A container's init: when it dies the kernel kills the rest of the container. (Its
        # `start --attach` CLI ends with it; the CLI's pid is not checked against reuse, so it
        # is never signalled from here.)
        if same_process(target.pid, target.pid_start):
            with contextlib.suppress(OSError):
                os.kill(target.pid, signum)


def _write_marker(log_path: str, reason: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(fenced_file_for(log_path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, reason.encode() + b"\n")
        finally:
            os.close(fd)


def _spawn_container_stop(target: Target, grace: float) -> None:
    """`stop --time G` then `rm --force` (which also wins over a `start` still in progress: the
    CLI serialises both on the container's lock), in a child."""
    if not target.binary or not target.container_id:
        return
    seconds = str(max(int(grace + 0.999), 0))
    script = '"$0" stop --time "$1" "$2" >/dev/null 2>&1; "$0" rm --force "$2" >/dev/null 2>&1; exit 0'
    _spawn(["/bin/sh", "-c", script, target.binary, seconds, target.container_id])


def _spawn_cli(binary: str, *args: str) -> None:
    if binary and all(args):
        _spawn([binary, *args])


_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _spawn(argv: list[str]) -> None:
    """Start `argv` detached (its exit is reaped by the kernel: the writer ignores SIGCHLD),
    bounded by CLI_TIMEOUT so a hung CLI does not linger forever."""
    env = dict(os.environ)
    env.setdefault("PATH", _PATH)
    if shutil.which("timeout", path=env["PATH"]):  # coreutils; without it, unbounded
        argv = ["timeout", "-s", "KILL", str(CLI_TIMEOUT), *argv]
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_RDWR)
        try:
            os.posix_spawnp(argv[0], argv, env, file_actions=[
                (os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1),
                (os.POSIX_SPAWN_DUP2, devnull, 2),
            ], setsid=True)
        finally:
            os.close(devnull)
