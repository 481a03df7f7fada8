"""The agent's session with the controller: one AgentGateway.Connect stream at a time.

Life of a stream: send Register (capacity plus every attempt held), wait for Registered, then
heartbeat every heartbeat_interval_ms while serving commands (StartAttempt, KillAttempt,
ReadLogs, CancelLogs) and reporting AttemptStarted / AttemptFinished.

Three rules keep a job from running twice or a result from being lost:

- **Self-fencing.** If nothing was heard from any controller for `fence_timeout` seconds, every
  running attempt is killed (SIGTERM, kill grace, SIGKILL) and its result kept as unreported:
  the controller will declare this node lost and run the jobs elsewhere.
- **Results are kept until acknowledged.** gRPC has no per-message ack, but the stream is
  ordered: once the controller acks a heartbeat sent after an AttemptFinished, it has that
  AttemptFinished. Until then the result stays (also on disk) and goes into the next Register.
- **Epochs only grow.** A Registered or StartAttempt from an epoch older than the newest
  Registered.epoch seen comes from a deposed leader and is ignored.

Leader following: a follower ends the call with UNAVAILABLE and the leader's address in the
trailing metadata ("shoal-leader"); the agent goes there at once. If it cannot even connect to
that leader (killed, its lease not yet run out), it goes back to a follower with
"shoal-stale-leader: <that address>", and the follower holds the call until the election ends,
so the agent registers with the new leader the moment there is one. Other UNAVAILABLE-like ends
move on to the next address with a jittered backoff (50 ms doubling to 1 s). Refusals
(NOT_FOUND for an unknown compute environment, INVALID_ARGUMENT) are logged loudly and retried
every `error_retry` seconds, since an operator may fix them.

Outgoing messages go through one writer task per stream with two queues: control messages
(heartbeats, attempt reports) always go before log chunks, and the log queue is bounded, so a
chatty job being followed never delays a heartbeat by more than one chunk.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import random
import time
from collections import deque
from dataclasses import dataclass, field

import grpc
import grpc.aio

from agent.attempts import Attempt, Attempts, Token
from agent.config import AgentConfig
from agent.logs import read_log
from agent.runtime.base import spec_from_container
from agent.runtime.output import announce_handover, forget_lease, renew_lease
from shoal import log
from shoal.errors import STALE_LEADER_METADATA_KEY, leader_hint
from shoal.v1 import agent_pb2, agent_pb2_grpc, types_pb2

_log = log.get("agent.session")

BACKOFF_INITIAL = 0.05
BACKOFF_MAX = 1.0
# Consecutive redirects followed without delay; more means followers disagree: back off.
MAX_FREE_REDIRECTS = 3
# Log chunks (of <= 64 KiB) buffered per stream before log readers wait.
LOG_QUEUE_CHUNKS = 8
# On shutdown: how long to wait for the controller to take our last reports.
SHUTDOWN_FLUSH_SECONDS = 3.0
# Status codes that mean "try another controller now" rather than "you were refused".
_TRANSIENT = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.ABORTED,
    }
)
INTERRUPTED_REASON = "Host interrupted: termination notice"
# The fence's lease (agent/runtime/fence.py) is renewed at most this often, for the fence
# timeout plus this: it never runs out before the agent's own self-fencing would strike.
LEASE_RENEW_SECONDS = 0.25
# TLS credentials of every Connect (CA + this node's certificate), set once by agent.main from
# --tls-ca/--tls-cert/--tls-key; None = plaintext. (A process-wide default because AgentConfig
# carries no credentials yet; a Session may also be given its own.)
CHANNEL_CREDENTIALS: grpc.ChannelCredentials | None = None


def agent_version() -> str:
    try:
        return importlib.metadata.version("shoal")
    except importlib.metadata.PackageNotFoundError:
        return "0"


def token_from_proto(token: types_pb2.AttemptToken) -> Token:
    return Token(job_id=token.job_id, attempt=token.attempt, epoch=token.epoch)


def token_to_proto(token: Token) -> types_pb2.AttemptToken:
    return types_pb2.AttemptToken(job_id=token.job_id, attempt=token.attempt, epoch=token.epoch)


def finished_message(attempt: Attempt) -> agent_pb2.AttemptFinished:
    assert attempt.result is not None
    result = attempt.result
    message = agent_pb2.AttemptFinished(
        token=token_to_proto(attempt.token),
        status_reason=result.status_reason,
        reason=result.reason,
        started_at=result.started_at,
        stopped_at=result.stopped_at,
    )
    if result.exit_code is not None:
        message.exit_code = result.exit_code
    return message


class _Silence(Exception):
    """The controller said nothing for a fence timeout."""


class _Outbox:
    """What the writer sends next: control messages first, then (bounded) log chunks.

    With `batches` (the controller said it takes AgentMessage.batch), the control messages
    queued while the previous write was in flight go out as one batch, in order: a busy
    agent's reports cost one stream write per write, not one per attempt."""

    MAX_BATCH = 256

    def __init__(self, log_chunks: int = LOG_QUEUE_CHUNKS) -> None:
        self.batches = False
        self._control: deque[agent_pb2.AgentMessage] = deque()
        self._logs: deque[agent_pb2.AgentMessage] = deque()
        self._log_slots = asyncio.Semaphore(log_chunks)
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    def put_control(self, message: agent_pb2.AgentMessage) -> None:
        self._control.append(message)
        self._idle.clear()
        self._wakeup.set()

    async def put_log(self, message: agent_pb2.AgentMessage) -> None:
        await self._log_slots.acquire()
        self._logs.append(message)
        self._idle.clear()
        self._wakeup.set()

    async def next(self) -> agent_pb2.AgentMessage:
        """The next message to write; called again only after the previous write completed."""
        while True:
            control = self._control
            if control:
                if not self.batches or len(control) == 1:
                    return control.popleft()
                count = min(len(control), self.MAX_BATCH)
                return agent_pb2.AgentMessage(
                    batch=agent_pb2.AgentBatch(messages=[control.popleft() for _ in range(count)])
                )
            if self._logs:
                self._log_slots.release()
                return self._logs.popleft()
            self._idle.set()
            self._wakeup.clear()
            await self._wakeup.wait()

    async def drained(self) -> None:
        """Until everything queued so far was written."""
        await self._idle.wait()


@dataclass(eq=False)
class _Stream:
    """One registered Connect call."""

    call: grpc.aio.StreamStreamCall
    target: str
    epoch: int
    outbox: _Outbox = field(default_factory=_Outbox)
    log_readers: dict[int, asyncio.Task[None]] = field(default_factory=dict)


class Session:
    """Keeps this node registered with the leader and carries out its commands."""

    def __init__(
        self, config: AgentConfig, attempts: Attempts, *, credentials: grpc.ChannelCredentials | None = None
    ) -> None:
        self.config = config
        self._credentials = credentials or CHANNEL_CREDENTIALS
        self.attempts = attempts
        attempts.events = self
        self._last_heard = time.monotonic()
        self._newest_epoch = 0
        self._seq = 0
        self._stream: _Stream | None = None
        # Finished attempts sent on the current stream -> heartbeat seq whose ack confirms them.
        self._awaiting_ack: dict[Token, int] = {}
        self._acked = asyncio.Event()
        self._fence_task: asyncio.Task[list[Attempt]] | None = None
        self._stopping = False
        self._registrations = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._handover_ack: asyncio.Future[int] | None = None
        self._lease_renewed = float("-inf")
        self._claiming: asyncio.Task[None] | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Begin connecting and watching for silence (returns at once)."""
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._connect_loop(), name="agent-connect"),
            loop.create_task(self._watch_silence(), name="agent-fence-watch"),
        ]

    async def shutdown(self, reason: str = INTERRUPTED_REASON, *, keep_attempts: bool = False) -> None:
        """Graceful stop: tell the controller, stop every attempt, report them, close.

        With `keep_attempts` (an agent restart, e.g. for an upgrade): no Interrupted, nothing
        stopped; results already known are still flushed, running attempts are left to the next
        agent process, which re-attaches to them. First a hand-over is announced: the controller
        grants a window (HandOverAck) and keeps the attempts that long after the stream broke,
        and the host's fence is told the same window; the next agent must register and take
        them over within it, or the fence stops them and the controller requeues them. Without
        a controller's grant the fence keeps its short window.
        """
        self._stopping = True
        if keep_attempts:
            granted = await self._hand_over() if self.attempts.running() else 0.0
            if granted > 0:
                told = announce_handover(granted)
                _log.info("hand-over granted", seconds=granted, fences_told=told)
            left = await self.attempts.detach()
            _log.info("exiting, leaving attempts running for the next agent", count=len(left),
                      attempts=[str(a.token) for a in left], handover_seconds=granted)
        else:
            if self._stream is not None:
                self._stream.outbox.put_control(
                    agent_pb2.AgentMessage(interrupted=agent_pb2.Interrupted(reason=reason))
                )
            stopped = await self.attempts.shutdown()
            _log.info("attempts stopped for shutdown", count=len(stopped))
        await self._flush_reports()
        if self._claiming is not None:
            self._claiming.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._fence_task is not None:
            await asyncio.gather(self._fence_task, return_exceptions=True)
        await self.attempts.close()
        forget_lease()

    async def _hand_over(self) -> float:
        """Ask the controller to keep our attempts for the hand-over window: the seconds granted
        (0 if none: not connected, no answer in time, or nothing granted)."""
        stream = self._stream
        if stream is None:
            return 0.0
        self._handover_ack = asyncio.get_running_loop().create_future()
        window_ms = int(self.config.handover_window * 1000)
        stream.outbox.put_control(agent_pb2.AgentMessage(hand_over=agent_pb2.HandOver(window_ms=window_ms)))
        try:
            async with asyncio.timeout(SHUTDOWN_FLUSH_SECONDS):
                granted_ms = await self._handover_ack
        except TimeoutError:
            _log.warning("the controller did not answer the hand-over; the fence keeps its short window",
                         seconds=self.config.fence_window)
            return 0.0
        return min(granted_ms, window_ms) / 1000

    async def _flush_reports(self) -> None:
        stream = self._stream
        if stream is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SHUTDOWN_FLUSH_SECONDS):
                if self._awaiting_ack:
                    self._send_heartbeat(stream)
                    while self._awaiting_ack and self._stream is stream:
                        self._acked.clear()
                        await self._acked.wait()
                await stream.outbox.drained()
                await stream.call.done_writing()

    # --- connecting --------------------------------------------------------------------------

    async def _connect_loop(self) -> None:
        targets = self.config.controllers
        index = 0
        redirect = ""
        redirects = 0
        backoff = BACKOFF_INITIAL
        failures = 0
        # A leader we were sent to and could not reach (it died; its lease has not run out yet).
        # Followers are told, and hold our call until they know another leader.
        stale_leader = ""
        while not self._stopping:
            followed = bool(redirect)
            target = redirect or targets[index % len(targets)]
            redirect = ""
            delay = 0.0
            registrations = self._registrations
            try:
                await self._converse(target, stale_leader=stale_leader)
                _log.info("controller closed the stream", controller=target)
                index += 1
                delay = backoff
            except grpc.aio.AioRpcError as err:
                code = err.code()
                hint = leader_hint(err)
                if code == grpc.StatusCode.UNAVAILABLE and hint:
                    _log.info("following the leader", controller=target, leader=hint)
                    redirect = hint
                    redirects += 1
                    delay = 0.0 if redirects <= MAX_FREE_REDIRECTS else backoff
                elif code in _TRANSIENT and followed and self._registrations == registrations and len(targets) > 1:
                    # Sent here by a follower and could not even connect: the leader is likely
                    # dead with its lease still running. Go back to a follower and say so.
                    _log.warning("leader unreachable; waiting for a new one", controller=target,
                                 code=code.name, details=err.details())
                    stale_leader = target
                    index += 1
                    if targets[index % len(targets)] == target:
                        index += 1
                elif code in _TRANSIENT:
                    # Loud once per outage, then quiet: a long outage must not flood the log.
                    report = _log.warning if not failures else _log.debug
                    report("controller unavailable", controller=target, code=code.name, details=err.details())
                    failures += 1
                    index += 1
                    delay = backoff
                else:
                    _log.error(
                        "controller refused this agent; retrying later",
                        controller=target,
                        code=code.name,
                        details=err.details(),
                        compute_environment=self.config.compute_environment,
                        retry_seconds=self.config.error_retry,
                    )
                    index += 1
                    delay = self.config.error_retry
            except _Silence:
                _log.warning("controller silent; reconnecting", controller=target,
                             seconds=self.config.fence_timeout)
                index += 1
                delay = backoff
            except Exception:  # noqa: BLE001 - never let the session die; log and retry
                if self._stopping:
                    return  # e.g. writing after our own half-close during shutdown
                _log.exception("session failed", controller=target)
                index += 1
                delay = backoff
            if self._registrations != registrations:  # it worked for a while: start afresh
                stale_leader = ""
                backoff = BACKOFF_INITIAL
                redirects = 0
                failures = 0
                delay = min(delay, BACKOFF_INITIAL)
            elif delay and delay == backoff:
                backoff = min(backoff * 2, BACKOFF_MAX)
            if delay and not self._stopping:
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))

    async def _converse(self, target: str, *, stale_leader: str = "") -> None:
        """One Connect call, from Register to its end; raises how it ended unless cleanly."""
        channel_ = (
            grpc.aio.secure_channel(target, self._credentials)
            if self._credentials is not None
            else grpc.aio.insecure_channel(target)
        )
        async with channel_ as channel:
            metadata = ((STALE_LEADER_METADATA_KEY, stale_leader),) if stale_leader else None
            call = agent_pb2_grpc.AgentGatewayStub(channel).Connect(metadata=metadata)
            stream: _Stream | None = None
            tasks: list[asyncio.Task[None]] = []
            try:
                register, reported = self._register_message()
                await call.write(agent_pb2.AgentMessage(register=register))
                first = await self._read(call)
                if first is None:
                    return
                if first.WhichOneof("body") != "registered":
                    _log.error("controller did not answer Register with Registered", controller=target,
                               got=first.WhichOneof("body"))
                    return
                registered = first.registered
                if registered.epoch < self._newest_epoch:
                    _log.warning("ignoring a deposed leader", controller=target, epoch=registered.epoch,
                                 newest_epoch=self._newest_epoch)
                    return
                stream = _Stream(call=call, target=target, epoch=registered.epoch)
                interval = self._on_registered(stream, registered, reported)
                loop = asyncio.get_running_loop()
                tasks = [
                    loop.create_task(self._write_loop(stream), name="agent-writer"),
                    loop.create_task(self._heartbeat_loop(stream, interval), name="agent-heartbeat"),
                    loop.create_task(self._read_loop(stream), name="agent-reader"),
                ]
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()  # raises how the stream ended
            finally:
                if stream is not None and self._stream is stream:
                    self._stream = None
                pending = tasks + (list(stream.log_readers.values()) if stream else [])
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                call.cancel()

    def _register_message(self) -> tuple[agent_pb2.Register, set[Token]]:
        config = self.config
        register = agent_pb2.Register(
            node_id=config.node_id,
            hostname=config.hostname,
            compute_environment=config.compute_environment,
            vcpus=config.vcpus,
            memory_mib=config.memory_mib,
            gpus=config.gpus,
            gpu_ids=list(config.gpu_ids),
            labels=dict(config.labels),
            # preferred first; a container node also runs image-less jobs as processes
            runtimes=list(getattr(self.attempts.runtime, "names", (config.runtime,))),
            agent_version=agent_version(),
            fence_timeout_ms=int(config.fence_timeout * 1000),
            fence_window_ms=int(config.fence_window * 1000),
            fence_kill_grace_ms=int(config.fence_kill_grace * 1000),
            advertise_address=config.advertise_address,
            batches=True,
        )
        reported: set[Token] = set()
        for attempt in self.attempts.held():
            held = register.attempts.add(token=token_to_proto(attempt.token), started_at=attempt.started_at)
            if attempt.result is not None:
                held.finished.CopyFrom(finished_message(attempt))
                reported.add(attempt.token)
        return register, reported

    def _on_registered(self, stream: _Stream, registered: agent_pb2.Registered, reported: set[Token]) -> float:
        self._newest_epoch = registered.epoch
        self._registrations += 1
        self._stream = stream
        stream.outbox.batches = registered.batches
        self._awaiting_ack.clear()
        stale = {token_from_proto(t) for t in registered.stale}
        for token in stale:
            _log.warning("controller says attempt is stale; killing it", token=str(token))
            self.attempts.discard(token)
        for token in reported - stale:
            self.attempts.forget(token)
        # The controller still wants what we re-attached to: take it over from the host's fence.
        if self._claiming is None or self._claiming.done():
            self._claiming = asyncio.get_running_loop().create_task(self.attempts.claim(), name="agent-claim")
        # Attempts that ended between Register and Registered were not in the Register.
        for attempt in self.attempts.held():
            if attempt.result is not None and attempt.token not in reported:
                self._send_finished(stream, attempt)
        interval = registered.heartbeat_interval_ms / 1000 or 1.0
        # Heartbeat acks are what keeps the fence away: at least three per fence timeout.
        interval = min(interval, self.config.fence_timeout / 3)
        _log.info("registered", controller=stream.target, epoch=registered.epoch,
                  heartbeat_seconds=interval, held=len(self.attempts.held()))
        return interval

    # --- the stream's tasks ------------------------------------------------------------------

    async def _read(self, call: grpc.aio.StreamStreamCall) -> agent_pb2.ControllerMessage | None:
        # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation that races
        # with the read completing, and the session must always stop when cancelled.
        try:
            async with asyncio.timeout(self.config.fence_timeout):
                message = await call.read()
        except TimeoutError:
            self._fence_if_due()
            raise _Silence() from None
        if message is grpc.aio.EOF:
            return None
        self._last_heard = time.monotonic()
        if self._last_heard - self._lease_renewed >= LEASE_RENEW_SECONDS:
            # The host's fence stops our attempts itself if we go quiet as long as our own
            # self-fencing would (e.g. SIGSTOP); a renewal covers the time until the next one.
            self._lease_renewed = self._last_heard
            renew_lease(self.config.fence_timeout + LEASE_RENEW_SECONDS, self.config.kill_grace)
        return message  # type: ignore[no-any-return]

    async def _read_loop(self, stream: _Stream) -> None:
        while True:
            message = await self._read(stream.call)
            if message is None:
                return
            self._dispatch(stream, message)

    async def _write_loop(self, stream: _Stream) -> None:
        while True:
            message = await stream.outbox.next()
            await stream.call.write(message)

    async def _heartbeat_loop(self, stream: _Stream, interval: float) -> None:
        while True:
            self._send_heartbeat(stream)
            await asyncio.sleep(interval)

    def _send_heartbeat(self, stream: _Stream) -> None:
        self._seq += 1
        running = [token_to_proto(a.token) for a in self.attempts.running()]
        stream.outbox.put_control(
            agent_pb2.AgentMessage(heartbeat=agent_pb2.Heartbeat(seq=self._seq, running=running))
        )

    # --- commands ----------------------------------------------------------------------------

    def _dispatch(self, stream: _Stream, message: agent_pb2.ControllerMessage) -> None:
        kind = message.WhichOneof("body")
        if kind == "batch":
            for inner in message.batch.messages:
                if inner.WhichOneof("body") in ("batch", "registered"):
                    _log.warning("unexpected message in a batch; ignored", kind=inner.WhichOneof("body"))
                else:
                    self._dispatch(stream, inner)
        elif kind == "heartbeat_ack":
            self._on_ack(message.heartbeat_ack.seq)
        elif kind == "start_attempt":
            self._on_start(message.start_attempt)
        elif kind == "kill_attempt":
            kill = message.kill_attempt
            token = token_from_proto(kill.token)
            if self.attempts.kill(token, kill.reason, kill.grace_period_ms / 1000):
                _log.info("killing attempt", token=str(token), reason=kill.reason)
            else:
                _log.debug("kill for an attempt not running here; ignored", token=str(token))
        elif kind == "read_logs":
            request = message.read_logs
            reader = asyncio.get_running_loop().create_task(self._serve_logs(stream, request))
            stream.log_readers[request.request_id] = reader
        elif kind == "cancel_logs":
            reader = stream.log_readers.pop(message.cancel_logs.request_id, None)
            if reader is not None:
                reader.cancel()
        elif kind == "hand_over_ack":
            if self._handover_ack is not None and not self._handover_ack.done():
                self._handover_ack.set_result(message.hand_over_ack.window_ms)
        elif kind == "registered":
            _log.warning("unexpected second Registered on a stream; ignored")
        else:
            _log.warning("unknown message from the controller; ignored", kind=kind)

    def _on_ack(self, seq: int) -> None:
        confirmed = [token for token, needed in self._awaiting_ack.items() if seq >= needed]
        for token in confirmed:
            del self._awaiting_ack[token]
            self.attempts.forget(token)
        if confirmed:
            self._acked.set()

    def _on_start(self, start: agent_pb2.StartAttempt) -> None:
        token = token_from_proto(start.token)
        if token.epoch < self._newest_epoch:
            _log.warning("StartAttempt from an older epoch; ignored", token=str(token),
                         newest_epoch=self._newest_epoch)
            return
        if self.attempts.get(token) is not None:
            return
        container = start.container
        offers = getattr(self.attempts.runtime, "offers", lambda name: name == self.attempts.runtime.name)
        if container.runtime and not offers(container.runtime):
            self.attempts.reject(token, f"runtime {container.runtime!r} is not available on this node "
                                        f"(it has {self.attempts.runtime.name!r})")
            return
        spec = spec_from_container(
            token.job_id, token.attempt, container, gpu_ids=tuple(start.gpu_ids), node_has_gpus=bool(self.config.gpus)
        )
        timeout = float(start.timeout.attempt_duration_seconds)
        asyncio.get_running_loop().create_task(
            self.attempts.start(token, spec, timeout_seconds=timeout), name=f"start-{token}"
        )

    async def _serve_logs(self, stream: _Stream, request: agent_pb2.ReadLogs) -> None:
        request_id = request.request_id
        try:
            attempt = self.attempts.find(request.job_id, request.attempt)
            path = attempt.log_path if attempt else self.attempts.log_path(request.job_id, request.attempt)

            def running() -> bool:
                return attempt is not None and attempt.running

            try:
                async for chunk in read_log(path, request.offset, follow=request.follow, running=running):
                    await stream.outbox.put_log(
                        agent_pb2.AgentMessage(log_data=agent_pb2.LogData(request_id=request_id, data=chunk))
                    )
            except FileNotFoundError:
                error = f"no logs for job {request.job_id} attempt {request.attempt} on this node"
            except OSError as err:
                error = f"cannot read logs for job {request.job_id} attempt {request.attempt}: {err}"
            else:
                error = ""
            await stream.outbox.put_log(
                agent_pb2.AgentMessage(
                    log_data=agent_pb2.LogData(request_id=request_id, eof=True, error=error)
                )
            )
        finally:
            if stream.log_readers.get(request_id) is asyncio.current_task():
                del stream.log_readers[request_id]

    # --- attempt events (from Attempts) ------------------------------------------------------

    def attempt_started(self, attempt: Attempt) -> None:
        if self._stream is not None:
            self._stream.outbox.put_control(
                agent_pb2.AgentMessage(
                    attempt_started=agent_pb2.AttemptStarted(
                        token=token_to_proto(attempt.token), started_at=attempt.started_at
                    )
                )
            )

    def attempt_finished(self, attempt: Attempt) -> None:
        if self._stream is not None:
            self._send_finished(self._stream, attempt)

    def _send_finished(self, stream: _Stream, attempt: Attempt) -> None:
        # Ordered stream: the ack of the next heartbeat proves this message arrived.
        self._awaiting_ack[attempt.token] = self._seq + 1
        stream.outbox.put_control(agent_pb2.AgentMessage(attempt_finished=finished_message(attempt)))

    # --- self-fencing ------------------------------------------------------------------------

    async def _watch_silence(self) -> None:
        timeout = self.config.fence_timeout
        while True:
            silent_for = time.monotonic() - self._last_heard
            if silent_for >= timeout:
                self._fence_if_due()
                await asyncio.sleep(max(timeout / 10, 0.01))
            else:
                await asyncio.sleep(timeout - silent_for)

    def _fence_if_due(self) -> None:
        if self._stopping or time.monotonic() - self._last_heard < self.config.fence_timeout:
            return
        if self._fence_task is not None and not self._fence_task.done():
            return
        running = self.attempts.running()
        if not running:
            return
        _log.warning(
            "no controller heard from: fencing, stopping every attempt",
            seconds=self.config.fence_timeout,
            attempts=[str(a.token) for a in running],
        )
        self._fence_task = asyncio.get_running_loop().create_task(self.attempts.fence(), name="agent-fence")
