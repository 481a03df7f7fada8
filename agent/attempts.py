"""The attempts this node holds: starting, timing out, killing, and remembering them.

`Attempts` owns every attempt from StartAttempt until the controller has its result. It knows
nothing about gRPC: the session tells it what to do and listens to `AttemptEvents`. Each change
is written to `<state_dir>/attempts.json` (temp file + rename), so an agent that restarts knows
which attempts were its own and which results it still owes the controller. Those writes are
coalesced (one per SAVE_DELAY at most); what must be on disk at once — a new attempt's handle,
before anything else can happen to it — is appended as one line to `<state_dir>/started.jsonl`
(one small write to a file kept open, no rewrite of every record), which is emptied again once
attempts.json includes its lines. `recover` reads both (and the `started/` directory of one
file per attempt that agents before 0.4 kept).

Agent restarts keep attempts: nothing of an attempt depends on the agent process (job, log
writer and container CLI run in sessions of their own), so an agent killed with SIGKILL, one
that crashed, or one told to exit leaving its attempts running (`detach`, SIGUSR2) leaves them
running. The next agent process re-attaches to every attempt of the state file (`recover`):
still running -> supervised again (its timeout counted from its original start); ended while
no agent ran -> its real exit status (the process runtime's exit file, a container's inspect);
gone without a trace -> "Host lost: agent restarted". A clean stop (SIGTERM) still stops them.
The host's fence (agent/runtime/fence.py, in the log writer) stops what a dead agent left unless
the next agent claims it in time (`claim`, once the controller accepted it): such an attempt ends
while re-attached and is reported with the fence's reason ("Host lost: agent exited and its jobs
were stopped"), never with a result.

On disk, per attempt:  <state_dir>/attempts/<job id>/<attempt>/output.log   (stdout + stderr,
                       timestamped records, rotated to output.log.<offset>: agent/runtime/logwriter.py)
                       <state_dir>/attempts/<job id>/<attempt>/output.exit  (process runtime:
                       the exit status its gate wrote, for an agent restarted meanwhile)
                       <state_dir>/attempts/<job id>/<attempt>/output.written (the log writer
                       wrote everything: a restarted agent waits for it)
                       <state_dir>/attempts/<job id>/<attempt>/output.fenced  (the host's fence
                       stopped it while no agent held it: the status reason to report)
                       <state_dir>/attempts/<job id>/<attempt>/work/        (its cwd)
Per agent:             <state_dir>/attempts.json, <state_dir>/started/*.json (see above),
                       <state_dir>/logwriter.v2.sock and .lock (the agent's log writer and fence)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from agent.runtime.base import AttemptHandle, AttemptSpec, CannotStart, ExitStatus, Runtime
from agent.runtime.fence import read_fenced
from agent.runtime.output import Fenced, claim, note, release
from agent.runtime.reattach import fence_target
from shoal import log

_log = log.get("agent.attempts")

STATE_FILE = "attempts.json"
STARTED_LOG = "started.jsonl"  # handles of attempts not yet in STATE_FILE, one line each
STARTED_DIR = "started"  # the same, one file each (agents before 0.4): read by `recover` only
_STATE_VERSION = 1

# status_reason / reason pairs the agent reports. status_reason is for people, reason for rules.
EXITED_NONZERO = "Essential container in task exited"
TIMEOUT = ("Job attempt duration exceeded timeout", "Timeout")
FENCED = ("Agent fenced: lost contact with controller", "AgentFenced")
INTERRUPTED = ("Host interrupted: termination notice", "HostInterrupted")
RESTARTED = ("Host lost: agent restarted", "AgentRestarted")
HOST_FENCED_REASON = "HostFenced"
"""`reason` of an attempt the host's fence stopped (its status reason is in the fence's marker)."""
OOM = ("OutOfMemoryError: container killed due to memory usage", "OutOfMemoryError")
KILLED_REASON = "Killed"
CANNOT_START_REASON = "CannotStart"


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, order=True)
class Token:
    """An attempt token: (job id, attempt number, epoch of the leader that started it)."""

    job_id: str
    attempt: int
    epoch: int

    def __str__(self) -> str:
        return f"{self.job_id}#{self.attempt}@{self.epoch}"


@dataclass(frozen=True)
class AttemptResult:
    """How an attempt ended, as reported in AttemptFinished."""

    exit_code: int | None
    status_reason: str
    reason: str
    started_at: int
    stopped_at: int


@dataclass(frozen=True)
class _StopRequest:
    """Why the agent is stopping an attempt; decides the reported reasons."""

    status_reason: str
    reason: str
    keep_exit_code: bool
    """Report the process's own exit code (kill, timeout) or none (host-level interruption)."""


@dataclass(eq=False)
class Attempt:
    """One attempt held by this node."""

    token: Token
    log_path: Path
    started_at: int = 0
    """Wall-clock ms when the process was spawned; 0 if it never was."""
    timeout_seconds: float = 0.0
    """The attempt's duration limit (0 = none), counted from `started_at`, also after a
    re-attach."""
    handle: AttemptHandle | None = None
    result: AttemptResult | None = None
    """Set once it ended; kept until the controller has it."""
    discarded: bool = False
    """The controller called it stale: kill it and never report it."""
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    _stop: _StopRequest | None = None
    _kill_deadline: float = float("inf")
    _kill_tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self.result is None


class AttemptEvents(Protocol):
    """What the session hears from `Attempts`. Called synchronously on the event loop."""

    def attempt_started(self, attempt: Attempt) -> None: ...

    def attempt_finished(self, attempt: Attempt) -> None: ...


class _NoEvents:
    def attempt_started(self, attempt: Attempt) -> None:
        pass

    def attempt_finished(self, attempt: Attempt) -> None:
        pass


def attempt_dir(state_dir: Path, job_id: str, attempt: int) -> Path:
    """`<state_dir>/attempts/<job id>/<attempt>`; the job id is escaped only where it must be."""
    return state_dir / "attempts" / _file_name(job_id) / str(attempt)


def _file_name(job_id: str) -> str:
    """`job_id` as one safe file name component."""
    name = urllib.parse.quote(job_id, safe=":@+=,-_.~")
    if name in ("", ".", ".."):
        name = "%" + name.encode().hex()
    return name


class Attempts:
    """Every attempt this node holds, keyed by token."""

    def __init__(self, runtime: Runtime, state_dir: Path, *, kill_grace: float) -> None:
        self.runtime = runtime
        self.state_dir = state_dir
        self.kill_grace = kill_grace
        self.events: AttemptEvents = _NoEvents()
        self._held: dict[Token, Attempt] = {}
        self._memory_of: dict[Token, int] = {}
        self._closing = False
        self._save_pending: asyncio.TimerHandle | None = None
        # STARTED_LOG, open for appending (None until the first attempt starts); whether it
        # holds lines not yet in STATE_FILE.
        self._journal_fd: int | None = None
        self._journaled = False
        # Token -> ((has handle, has result), its record as JSON) for the state file.
        self._encoded: dict[Token, tuple[tuple[bool, bool], str]] = {}
        # Running attempts the host's fence knows this process owns (started here, or claimed).
        self._claimed: set[Token] = set()

    # --- queries -----------------------------------------------------------------------------

    def get(self, token: Token) -> Attempt | None:
        return self._held.get(token)

    def held(self) -> list[Attempt]:
        """Every attempt held and not discarded, running or with an unreported result."""
        return [a for a in self._held.values() if not a.discarded]

    def running(self) -> list[Attempt]:
        return [a for a in self._held.values() if a.running and not a.discarded]

    def find(self, job_id: str, attempt: int) -> Attempt | None:
        """The held attempt for (job, attempt), preferring a running one."""
        matches = [a for a in self._held.values() if a.token.job_id == job_id and a.token.attempt == attempt]
        matches.sort(key=lambda a: (a.running, a.token.epoch))
        return matches[-1] if matches else None

    def log_path(self, job_id: str, attempt: int) -> Path:
        return attempt_dir(self.state_dir, job_id, attempt) / "output.log"

    # --- commands ----------------------------------------------------------------------------

    async def start(self, token: Token, spec: AttemptSpec, *, timeout_seconds: float = 0.0) -> Attempt | None:
        """Start an attempt; None if the token is already held (StartAttempt is idempotent)."""
        if token in self._held:
            return None
        if self._closing:
            _log.info("not starting attempt: agent is shutting down", token=str(token))
            return None
        directory = attempt_dir(self.state_dir, token.job_id, token.attempt)
        work_dir = directory / "work"
        attempt = Attempt(token=token, log_path=directory / "output.log", timeout_seconds=timeout_seconds)
        self._held[token] = attempt
        self._memory_of[token] = spec.memory_mib
        try:
            os.makedirs(work_dir, exist_ok=True)
            handle = await self.runtime.start(replace(spec, work_dir=work_dir), attempt.log_path)
        except CannotStart as err:
            self._cannot_start(attempt, err.message)
            return attempt
        except Exception as err:  # noqa: BLE001 - any failure to spawn is the attempt's, not the agent's
            _log.exception("runtime failed to start attempt", token=str(token))
            self._cannot_start(attempt, f"{type(err).__name__}: {err}")
            return attempt
        attempt.handle = handle
        attempt.started_at = now_ms()
        self._claimed.add(token)  # the runtime told the fence before the job ran
        self._journal_start(attempt)  # the handle must be on disk before anything else can happen
        self._save()
        _log.info("attempt started", token=str(token), pid=handle.pid, runtime=handle.runtime)
        self.events.attempt_started(attempt)
        attempt._task = asyncio.get_running_loop().create_task(self._supervise(attempt), name=f"attempt-{token}")
        if attempt._stop is not None:  # stopped while it was starting
            self._begin_kill(attempt, self.kill_grace)
        return attempt

    def reject(self, token: Token, why: str) -> None:
        """Record an attempt this node cannot run at all (reported as CannotStart)."""
        if token in self._held:
            return
        attempt = Attempt(token=token, log_path=self.log_path(token.job_id, token.attempt))
        self._held[token] = attempt
        self._cannot_start(attempt, why)

    def kill(self, token: Token, status_reason: str, grace: float) -> bool:
        """Stop an attempt on the controller's request; False if not held or already ended."""
        attempt = self._held.get(token)
        if attempt is None or not attempt.running:
            return False
        self._request_stop(
            attempt,
            _StopRequest(status_reason or "Killed by the controller", KILLED_REASON, keep_exit_code=True),
            grace,
        )
        return True

    def discard(self, token: Token) -> None:
        """The controller no longer wants this attempt: kill it if it runs, never report it."""
        attempt = self._held.get(token)
        if attempt is None:
            return
        attempt.discarded = True
        if attempt.running:
            self._request_stop(attempt, _StopRequest("Stale attempt", KILLED_REASON, True), self.kill_grace)
        else:
            self.forget(token)

    def forget(self, token: Token) -> None:
        """Drop an ended attempt whose result the controller has (its log file stays)."""
        attempt = self._held.get(token)
        if attempt is None or attempt.running:
            return
        del self._held[token]
        self._save()

    async def claim(self) -> None:
        """Once the controller accepted this agent (Registered; stale attempts discarded): take
        the attempts re-attached from a previous agent over from the host's fence, which stops
        them unless claimed within its window. Too late: the fence is stopping the attempt, which
        ends and is reported as lost. Unreachable: retried after the next registration."""
        for attempt in list(self._held.values()):
            token = attempt.token
            if not attempt.running or attempt.discarded or attempt.handle is None or token in self._claimed:
                continue
            target = fence_target(attempt.handle)
            if target is None:
                self._claimed.add(token)
                continue
            try:
                await claim(attempt.log_path, target)
            except Fenced:
                _log.warning("attempt re-attached too late: the host's fence is stopping it", token=str(token))
            except OSError as err:
                _log.warning("cannot hand the attempt to the host's fence", token=str(token), error=str(err))
                continue
            self._claimed.add(token)

    async def fence(self) -> list[Attempt]:
        """Self-fencing: stop every running attempt; their results stay until reported."""
        return await self._stop_all(_StopRequest(*FENCED, keep_exit_code=False), self.kill_grace)

    async def shutdown(self) -> list[Attempt]:
        """Graceful stop of the agent: no new attempts, stop every running one."""
        self._closing = True
        return await self._stop_all(_StopRequest(*INTERRUPTED, keep_exit_code=False), self.kill_grace)

    async def recover(self) -> None:
        """On agent start: load the state file and re-attach to what a previous agent left.

        Results that were never reported are kept as they were. Attempts that were running are
        supervised again through their handle (see the module docstring); those of a runtime
        this agent does not have any more are reported as lost.
        """
        for record in _load_state(
            self.state_dir / STATE_FILE, self.state_dir / STARTED_DIR, self.state_dir / STARTED_LOG
        ):
            token = Token(record["job_id"], int(record["attempt"]), int(record["epoch"]))
            if token in self._held:
                continue
            attempt = Attempt(
                token=token,
                log_path=Path(record["log_path"]),
                started_at=int(record.get("started_at", 0)),
                timeout_seconds=float(record.get("timeout_seconds", 0.0)),
                handle=AttemptHandle.from_dict(record["handle"]) if record.get("handle") else None,
            )
            self._held[token] = attempt
            if record.get("result"):
                attempt.result = AttemptResult(**record["result"])
                attempt.ended.set()
                continue
            if attempt.handle is not None and _offers(self.runtime, attempt.handle.runtime):
                self._memory_of[token] = int(record.get("memory_mib", 0))
                running = self.runtime.is_alive(attempt.handle)
                _log.info("re-attaching to attempt left by a previous agent", token=str(token),
                          runtime=attempt.handle.runtime, pid=attempt.handle.pid, running=running)
                if running:
                    attempt._task = asyncio.get_running_loop().create_task(
                        self._supervise(attempt), name=f"attempt-{token}"
                    )
                else:  # ended while no agent ran: its result goes into the first Register
                    await self._supervise(attempt)
                continue
            if attempt.handle is not None:
                _log.warning("attempt of another runtime left behind", token=str(token),
                             runtime=attempt.handle.runtime)
            attempt.result = AttemptResult(
                exit_code=None,
                status_reason=RESTARTED[0],
                reason=RESTARTED[1],
                started_at=attempt.started_at,
                stopped_at=now_ms(),
            )
            attempt.ended.set()
        self._save(now=True)
        # Everything recovered is in the state file now: the started-attempt records are done.
        with contextlib.suppress(OSError):
            os.truncate(self.state_dir / STARTED_LOG, 0)
        with contextlib.suppress(OSError):
            for name in os.listdir(self.state_dir / STARTED_DIR):
                with contextlib.suppress(OSError):
                    os.unlink(self.state_dir / STARTED_DIR / name)

    async def detach(self) -> list[Attempt]:
        """Stop supervising without stopping anything: the agent exits, its attempts run on
        and the next agent process re-attaches to them (state file). Returns those left."""
        self._closing = True
        left = self.running()
        tasks = [a._task for a in self._held.values() if a._task is not None and not a._task.done()]
        for attempt in left:
            for kill in attempt._kill_tasks:
                kill.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._save(now=True)
        return left

    async def close(self) -> None:
        """Wait for supervisor tasks (after `shutdown`), so nothing outlives the agent."""
        tasks = [a._task for a in self._held.values() if a._task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._save_pending is not None:
            self._flush_state()
        if self._journal_fd is not None:
            os.close(self._journal_fd)
            self._journal_fd = None

    # --- internals ---------------------------------------------------------------------------

    async def _stop_all(self, stop: _StopRequest, grace: float) -> list[Attempt]:
        stopping = [a for a in self._held.values() if a.running]
        for attempt in stopping:
            self._request_stop(attempt, stop, grace)
        for attempt in stopping:
            await attempt.ended.wait()
        return stopping

    def _request_stop(self, attempt: Attempt, stop: _StopRequest, grace: float) -> None:
        if attempt._stop is None:
            attempt._stop = stop
        if attempt.handle is not None:
            self._begin_kill(attempt, grace)

    def _begin_kill(self, attempt: Attempt, grace: float) -> None:
        assert attempt.handle is not None
        deadline = time.monotonic() + grace
        if deadline >= attempt._kill_deadline:
            return  # a kill that forces it sooner is already under way
        attempt._kill_deadline = deadline
        attempt._kill_tasks.append(
            asyncio.get_running_loop().create_task(self.runtime.kill(attempt.handle, grace))
        )

    async def _supervise(self, attempt: Attempt) -> None:
        assert attempt.handle is not None
        handle = attempt.handle
        timeout_seconds = attempt.timeout_seconds
        waiting = asyncio.get_running_loop().create_task(self.runtime.wait(handle))
        try:
            if timeout_seconds > 0:
                # From the attempt's start, which may precede this agent process (re-attached).
                remaining = timeout_seconds - max(now_ms() - attempt.started_at, 0) / 1000
                done, _ = await asyncio.wait({waiting}, timeout=max(remaining, 0.001))
                if not done:
                    _log.info("attempt timed out", token=str(attempt.token), seconds=timeout_seconds)
                    with contextlib.suppress(OSError):
                        note(attempt.log_path, f"{TIMEOUT[0]} ({timeout_seconds:g}s): stopping it "
                                               f"(SIGTERM, {self.kill_grace:g}s grace, SIGKILL)")
                    self._request_stop(attempt, _StopRequest(*TIMEOUT, keep_exit_code=True), self.kill_grace)
            status = await waiting
            # Let a kill in progress finish, so the group's other processes get their grace.
            while attempt._kill_tasks:
                await asyncio.gather(*attempt._kill_tasks, return_exceptions=True)
                attempt._kill_tasks = [t for t in attempt._kill_tasks if not t.done()]
        except asyncio.CancelledError:
            # The agent exits leaving the attempt running (detach): no cleanup, nothing killed.
            waiting.cancel()
            raise
        except Exception:  # noqa: BLE001 - the runtime failed us; the attempt still has to end
            _log.exception("waiting for attempt failed", token=str(attempt.token))
            status = ExitStatus(exit_code=None)
        with contextlib.suppress(Exception):
            await self.runtime.cleanup(handle)
        release(attempt.log_path)  # nothing of it runs: the fence may forget it
        self._claimed.discard(attempt.token)
        result = self._result(attempt, status)
        if result.reason == OOM[1]:
            with contextlib.suppress(OSError):
                note(attempt.log_path, f"{OOM[0]} (limit {self._memory_of.get(attempt.token, 0)} MiB)")
        elif result.reason == CANNOT_START_REASON:
            with contextlib.suppress(OSError):
                note(attempt.log_path, result.status_reason)
        self._memory_of.pop(attempt.token, None)
        self._finish(attempt, result)

    def _result(self, attempt: Attempt, status: ExitStatus) -> AttemptResult:
        stop = attempt._stop
        exit_code = status.exit_code
        fenced = read_fenced(str(attempt.log_path)) if stop is None else ""
        if stop is not None:
            status_reason, reason = stop.status_reason, stop.reason
            if not stop.keep_exit_code:
                exit_code = None
        elif fenced:
            # Stopped by the host's fence while no agent held it: lost with its host, no result.
            status_reason, reason, exit_code = fenced, HOST_FENCED_REASON, None
        elif status.cannot_start:
            status_reason, reason = f"CannotStartContainerError: {status.cannot_start}", CANNOT_START_REASON
            exit_code = None
        elif status.oom_killed:
            status_reason, reason = OOM
        elif exit_code == 0:
            status_reason, reason = "", ""
        elif exit_code is None:
            status_reason, reason = RESTARTED
        else:
            status_reason, reason = EXITED_NONZERO, ""
        return AttemptResult(
            exit_code=exit_code,
            status_reason=status_reason,
            reason=reason,
            started_at=attempt.started_at,
            stopped_at=now_ms(),
        )

    def _cannot_start(self, attempt: Attempt, why: str) -> None:
        status_reason = f"CannotStartContainerError: {why}"
        _log.warning("attempt cannot start", token=str(attempt.token), why=why)
        try:
            note(attempt.log_path, status_reason)
        except OSError:
            _log.exception("cannot write the attempt's log file", path=str(attempt.log_path))
        self._finish(
            attempt,
            AttemptResult(exit_code=None, status_reason=status_reason, reason=CANNOT_START_REASON,
                          started_at=0, stopped_at=now_ms()),
        )

    def _finish(self, attempt: Attempt, result: AttemptResult) -> None:
        attempt.result = result
        attempt.ended.set()
        _log.info("attempt finished", token=str(attempt.token), exit_code=result.exit_code,
                  status_reason=result.status_reason)
        if attempt.discarded:
            self._held.pop(attempt.token, None)
            self._save()
            return
        self._save()
        self.events.attempt_finished(attempt)

    # Saves that can wait are coalesced: a burst of attempt transitions costs one write.
    SAVE_DELAY = 0.25

    def _save(self, *, now: bool = False) -> None:
        """Record the held attempts in the state file (what a restarted agent re-attaches from).

        A new attempt's handle is written at once; results and forgotten attempts may lag by
        SAVE_DELAY, which is safe: a result is also in the attempt's exit file (or the
        container's inspect data), and re-reporting a forgotten attempt is ignored upstream.
        """
        if not now:
            if self._save_pending is None:
                try:
                    loop = asyncio.get_running_loop()
                except RuntimeError:
                    now = True
                else:
                    self._save_pending = loop.call_later(self.SAVE_DELAY, self._flush_state)
            if not now:
                return
        self._flush_state()

    def _flush_state(self) -> None:
        if self._save_pending is not None:
            self._save_pending.cancel()
            self._save_pending = None
        encoded = self._encoded
        records = []
        for attempt in self._held.values():
            if attempt.discarded and not attempt.running:
                continue
            # A record changes only when the attempt gets its handle or its result: encode
            # each version once, not on every write of the file.
            version = (attempt.handle is not None, attempt.result is not None)
            cached = encoded.get(attempt.token)
            if cached is None or cached[0] != version:
                cached = encoded[attempt.token] = (version, _encode(_record(attempt, self._memory_of.get(attempt.token, 0))))
            records.append(cached[1])
        if len(encoded) > len(records):
            for token in [t for t in encoded if t not in self._held]:
                del encoded[token]
        _write_state(self.state_dir / STATE_FILE, records)
        if self._journaled and self._journal_fd is not None:
            # Every line is in the state file now. (A crash between the two leaves lines that
            # are also in the state file: `recover` takes each token once, the state file's.)
            with contextlib.suppress(OSError):
                os.ftruncate(self._journal_fd, 0)
            self._journaled = False

    def _journal_start(self, attempt: Attempt) -> None:
        """Put a new attempt's record on disk at once, as one appended line (see the module
        docstring): cheaper than rewriting every record, and just as durable."""
        if self._journal_fd is None:
            path = self.state_dir / STARTED_LOG
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
            try:
                self._journal_fd = os.open(path, flags, 0o600)
            except FileNotFoundError:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._journal_fd = os.open(path, flags, 0o600)
        data = _encode(_record(attempt, self._memory_of.get(attempt.token, 0))).encode()
        # One write of a newline-terminated line (O_APPEND): a torn last line is recognisable.
        os.write(self._journal_fd, data + b"\n")
        self._journaled = True


def _offers(runtime: Runtime, name: str) -> bool:
    offers = getattr(runtime, "offers", None)
    return bool(offers(name)) if offers is not None else runtime.name == name


def _record(attempt: Attempt, memory_mib: int = 0) -> dict[str, Any]:
    return {
        "job_id": attempt.token.job_id,
        "attempt": attempt.token.attempt,
        "epoch": attempt.token.epoch,
        "log_path": str(attempt.log_path),
        "started_at": attempt.started_at,
        "timeout_seconds": attempt.timeout_seconds,
        "memory_mib": memory_mib,
        "handle": attempt.handle.to_dict() if attempt.handle else None,
        "result": attempt.result.__dict__.copy() if attempt.result else None,
    }


def _encode(record: dict[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":"))


def _write_state(path: Path, records: list[str]) -> None:
    """Atomic (write + rename), deliberately without fsync: the file only has to outlive the
    agent process (a crash, an upgrade), and the page cache does; a host crash takes the jobs
    with it anyway. An fsync per attempt transition was the agent's largest cost per job.
    `records` are already JSON (see `Attempts._flush_state`)."""
    tmp = path.with_name(f".{path.name}.tmp")
    data = f'{{"version":{_STATE_VERSION},"attempts":[{",".join(records)}]}}'.encode()
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _load_state(
    path: Path, started_dir: Path | None = None, started_log: Path | None = None
) -> list[Mapping[str, Any]]:
    """The records of the state file, then those of `started_log` and `started_dir` (see
    `_journal_start`); a token may come more than once: the first record counts."""
    records = _load_state_file(path)
    if started_log is not None:
        records.extend(_load_started_log(started_log))
    if started_dir is None:
        return records
    try:
        names = sorted(os.listdir(started_dir))
    except OSError:
        return records
    for name in names:
        try:
            text = (started_dir / name).read_bytes()
            if not text.endswith(b"\n"):
                continue  # torn: the agent died while writing it, before the attempt was reported
            record = json.loads(text)
        except (OSError, ValueError):
            _log.warning("unreadable started-attempt file; ignoring it", path=str(started_dir / name))
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _load_started_log(path: Path) -> list[Mapping[str, Any]]:
    try:
        text = path.read_bytes()
    except OSError:
        return []
    records = []
    for line in text.split(b"\n")[:-1]:  # the part after the last newline is torn (or empty)
        try:
            record = json.loads(line)
        except ValueError:
            _log.warning("unreadable line in the started-attempts log; ignoring it", path=str(path))
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _load_state_file(path: Path) -> list[Mapping[str, Any]]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError):
        _log.exception("unreadable attempts file; ignoring it", path=str(path))
        return []
    if not isinstance(data, dict) or data.get("version") != _STATE_VERSION:
        _log.error("attempts file has an unknown format; ignoring it", path=str(path))
        return []
    return list(data.get("attempts", []))
