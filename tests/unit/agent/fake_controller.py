"""A fake AgentGateway: a real grpc.aio server on loopback that records what an agent sends.

It stands in for the controller (written in parallel) in the agent's session tests. It speaks
the protocol's happy path (Registered, HeartbeatAck) and lets a test push commands, refuse or
redirect connections, hang up, or go silent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import grpc
import grpc.aio

from shoal.errors import LEADER_METADATA_KEY
from shoal.v1 import agent_pb2, agent_pb2_grpc, types_pb2

Predicate = Callable[[agent_pb2.AgentMessage], bool]


@dataclass
class Refusal:
    code: grpc.StatusCode
    details: str
    leader: str = ""
    times: int = 1_000_000
    """How many connections to refuse before accepting again."""


class FakeController(agent_pb2_grpc.AgentGatewayServicer):
    def __init__(self, *, epoch: int = 1, heartbeat_interval_ms: int = 50) -> None:
        self.epoch = epoch
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.received: list[agent_pb2.AgentMessage] = []
        self.connections = 0
        # The invocation metadata of every Connect, in order.
        self.metadata: list[dict[str, str]] = []
        self.refusal: Refusal | None = None
        self.silent = False
        """New connections get no Registered, and heartbeats are no longer acked."""
        self.stale_on_next_register: list[types_pb2.AttemptToken] = []
        self.hang_up_on: Predicate | None = None
        """Abort the stream (UNAVAILABLE) right after receiving a matching message."""
        self.address = ""
        self.batches = False
        """Say in Registered that batched AgentMessages are taken (as the real controller does)."""
        self.batches_received = 0
        self._changed = asyncio.Condition()
        self._outbox: asyncio.Queue[agent_pb2.ControllerMessage | grpc.StatusCode] | None = None
        self._connected = asyncio.Event()

    # --- test side ---------------------------------------------------------------------------

    async def wait_for(self, predicate: Predicate, within: float = 10.0, what: str = "") -> agent_pb2.AgentMessage:
        """The first received message matching `predicate` (waiting for it if needed)."""
        async def find() -> agent_pb2.AgentMessage:
            async with self._changed:
                while True:
                    for message in self.received:
                        if predicate(message):
                            return message
                    await self._changed.wait()

        try:
            return await asyncio.wait_for(find(), within)
        except TimeoutError:
            kinds = [m.WhichOneof("body") for m in self.received]
            raise AssertionError(f"agent never sent {what or 'the expected message'}; got {kinds}") from None

    async def wait_count(self, predicate: Predicate, count: int, within: float = 10.0) -> list[agent_pb2.AgentMessage]:
        async def find() -> list[agent_pb2.AgentMessage]:
            async with self._changed:
                while True:
                    found = [m for m in self.received if predicate(m)]
                    if len(found) >= count:
                        return found
                    await self._changed.wait()

        return await asyncio.wait_for(find(), within)

    def matching(self, predicate: Predicate) -> list[agent_pb2.AgentMessage]:
        return [m for m in self.received if predicate(m)]

    async def send(self, message: agent_pb2.ControllerMessage) -> None:
        """Send on the current registered stream."""
        await asyncio.wait_for(self._connected.wait(), 10)
        assert self._outbox is not None
        await self._outbox.put(message)

    async def hang_up(self) -> None:
        """End the current stream with UNAVAILABLE (no leader hint)."""
        await asyncio.wait_for(self._connected.wait(), 10)
        assert self._outbox is not None
        await self._outbox.put(grpc.StatusCode.UNAVAILABLE)

    # --- server side -------------------------------------------------------------------------

    async def _record(self, message: agent_pb2.AgentMessage) -> None:
        async with self._changed:
            if message.WhichOneof("body") == "batch":  # recorded as the messages it carries
                self.batches_received += 1
                self.received.extend(message.batch.messages)
            else:
                self.received.append(message)
            self._changed.notify_all()

    async def Connect(self, request_iterator, context: grpc.aio.ServicerContext):  # type: ignore[override]  # noqa: N802
        self.connections += 1
        self.metadata.append({k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)})
        # A connection that began while silent stays silent, even if the test ends the silence
        # while its Register is on the way.
        silent = self.silent
        first = await context.read()
        if first is grpc.aio.EOF:
            return
        await self._record(first)
        refusal = self.refusal
        if refusal is not None and refusal.times > 0:
            refusal.times -= 1
            trailing = ((LEADER_METADATA_KEY, refusal.leader),) if refusal.leader else ()
            await context.abort(refusal.code, refusal.details, trailing_metadata=trailing)
        if silent or self.silent:
            while (message := await context.read()) is not grpc.aio.EOF:
                await self._record(message)
            return
        outbox: asyncio.Queue[agent_pb2.ControllerMessage | grpc.StatusCode] = asyncio.Queue()
        stale, self.stale_on_next_register = self.stale_on_next_register, []
        await context.write(
            agent_pb2.ControllerMessage(
                registered=agent_pb2.Registered(
                    node_id=first.register.node_id,
                    epoch=self.epoch,
                    heartbeat_interval_ms=self.heartbeat_interval_ms,
                    stale=stale,
                    batches=self.batches,
                )
            )
        )
        self._outbox = outbox
        self._connected.set()
        reader = asyncio.create_task(self._read_loop(context, outbox))
        try:
            while True:
                getter = asyncio.create_task(outbox.get())
                done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    return
                item = getter.result()
                if isinstance(item, grpc.StatusCode):
                    await context.abort(item, "fake controller hung up")
                await context.write(item)
        finally:
            reader.cancel()
            if self._outbox is outbox:
                self._connected.clear()
                self._outbox = None

    async def _read_loop(self, context: grpc.aio.ServicerContext, outbox: asyncio.Queue) -> None:
        while (message := await context.read()) is not grpc.aio.EOF:
            await self._record(message)
            if self.hang_up_on is not None and self.hang_up_on(message):
                self.hang_up_on = None
                await outbox.put(grpc.StatusCode.UNAVAILABLE)
            elif message.HasField("heartbeat") and not self.silent:
                await outbox.put(
                    agent_pb2.ControllerMessage(heartbeat_ack=agent_pb2.HeartbeatAck(seq=message.heartbeat.seq))
                )


async def serve(controller: FakeController) -> grpc.aio.Server:
    server = grpc.aio.server()
    agent_pb2_grpc.add_AgentGatewayServicer_to_server(controller, server)
    port = server.add_insecure_port("127.0.0.1:0")
    controller.address = f"127.0.0.1:{port}"
    await server.start()
    return server


def token(job_id: str, attempt: int = 1, epoch: int = 1) -> types_pb2.AttemptToken:
    return types_pb2.AttemptToken(job_id=job_id, attempt=attempt, epoch=epoch)


def start_attempt(
    tok: types_pb2.AttemptToken,
    command: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    timeout_seconds: int = 0,
) -> agent_pb2.ControllerMessage:
    return agent_pb2.ControllerMessage(
        start_attempt=agent_pb2.StartAttempt(
            token=tok,
            container=types_pb2.ContainerProperties(
                command=list(command),
                environment=[types_pb2.KeyValue(name=k, value=v) for k, v in (env or {}).items()],
                resources=types_pb2.ResourceRequirements(vcpus=1, memory_mib=64),
            ),
            timeout=types_pb2.JobTimeout(attempt_duration_seconds=timeout_seconds),
        )
    )


def kill_attempt(tok: types_pb2.AttemptToken, reason: str, grace_ms: int = 200) -> agent_pb2.ControllerMessage:
    return agent_pb2.ControllerMessage(
        kill_attempt=agent_pb2.KillAttempt(token=tok, reason=reason, grace_period_ms=grace_ms)
    )


def read_logs(request_id: int, job_id: str, attempt: int = 1, *, offset: int = 0,
              follow: bool = False) -> agent_pb2.ControllerMessage:
    return agent_pb2.ControllerMessage(
        read_logs=agent_pb2.ReadLogs(request_id=request_id, job_id=job_id, attempt=attempt, offset=offset,
                                     follow=follow)
    )


# Predicates --------------------------------------------------------------------------------------


def is_register(message: agent_pb2.AgentMessage) -> bool:
    return message.HasField("register")


def is_heartbeat(message: agent_pb2.AgentMessage) -> bool:
    return message.HasField("heartbeat")


def started(job_id: str) -> Predicate:
    return lambda m: m.HasField("attempt_started") and m.attempt_started.token.job_id == job_id


def finished(job_id: str) -> Predicate:
    return lambda m: m.HasField("attempt_finished") and m.attempt_finished.token.job_id == job_id


def log_data(request_id: int) -> Predicate:
    return lambda m: m.HasField("log_data") and m.log_data.request_id == request_id


def log_eof(request_id: int) -> Predicate:
    return lambda m: m.HasField("log_data") and m.log_data.request_id == request_id and m.log_data.eof


def register_reporting(job_id: str, status_reason: str) -> Predicate:
    def match(message: agent_pb2.AgentMessage) -> bool:
        return message.HasField("register") and any(
            a.token.job_id == job_id and a.HasField("finished") and a.finished.status_reason == status_reason
            for a in message.register.attempts
        )

    return match
