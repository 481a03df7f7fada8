"""shoal.v1.AgentGateway servicer: one bidirectional stream per agent.

Reads what the agent sends and hands it to its session (heartbeats answered here, job events
forwarded to the leader loop); writes what the session's outbound queue holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import grpc

from controller.api import auth
from controller.api.errors import abort
from controller.domain import validation as V
from controller.services import sessions as S
from controller.services.replica import Replica
from shoal import errors, log
from shoal.v1 import agent_pb2, agent_pb2_grpc

logger = log.get("controller.agents")

# A ControllerMessage.batch holds at most this many messages and (beyond its first message)
# this many bytes, well under a receiver's default 4 MiB message limit.
MAX_BATCH = 256
MAX_BATCH_BYTES = 1024 * 1024


class AgentGatewayServicer(agent_pb2_grpc.AgentGatewayServicer):
    def __init__(self, replica: Replica, *, require_cert: bool = False, agent_address: str = "") -> None:
        """`require_cert`: the port does mutual TLS, and Register.node_id must be the node id
        of the agent's certificate. `agent_address`: agents must use that (mutual TLS) address
        instead of this one, so every Connect here is redirected there."""
        self.r = replica
        self.require_cert = require_cert
        self.agent_address = agent_address

    async def Connect(
        self, request_iterator: AsyncIterator[agent_pb2.AgentMessage], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[agent_pb2.ControllerMessage]:
        try:
            if self.agent_address:
                raise errors.NotLeader(
                    f"agents connect to {self.agent_address} (mutual TLS), not to the API port", self.agent_address
                )
            if self.r.stopping:
                raise errors.Unavailable(f"controller {self.r.config.advertised} is shutting down")
            if self.r.leader is None:
                await self._hold_during_failover(context)
            leader = self.r.require_leader()
            first = await anext(aiter(request_iterator), None)
            if first is None:
                return
            if first.WhichOneof("body") != "register":
                raise errors.InvalidArgument("the first message on the stream must be register")
            V.validate_register(first.register)
            if self.require_cert:
                certified = auth.agent_node_id(context)
                if certified != first.register.node_id:
                    logger.warning("agent.refused", peer=context.peer(), node_id=first.register.node_id,
                                   certificate_node_id=certified)
                    raise errors.PermissionDenied(
                        f"register.node_id: '{first.register.node_id}' is not the node id of this agent's "
                        f"certificate ('{certified or 'none'}')"
                    )
            env = first.register.compute_environment
            if env not in self.r.view.data.envs:
                await self.r.view.sync()
                if env not in self.r.view.data.envs:
                    raise errors.NotFound(f"register.compute_environment: compute environment '{env}' does not exist")
        except errors.ShoalError as err:
            await abort(context, err)
            return

        session = S.AgentSession(register=first.register, peer=context.peer())
        leader.submit_event(S.Registered(session))
        reader = asyncio.create_task(self._read(request_iterator, session, leader))
        batches = first.register.batches
        outbound = session.outbound
        try:
            while True:
                msg = await outbound.get()
                if msg is None:
                    break
                if not batches or outbound.empty():
                    yield msg
                    continue
                # What queued up meanwhile (a pass's StartAttempts, acks) goes in one write.
                pending = [msg]
                size = msg.ByteSize()
                carry: agent_pb2.ControllerMessage | None = None
                closing = False
                while not outbound.empty() and len(pending) < MAX_BATCH:
                    more = outbound.get_nowait()
                    if more is None:
                        closing = True
                        break
                    size += more.ByteSize()
                    if size > MAX_BATCH_BYTES:
                        carry = more
                        break
                    pending.append(more)
                yield pending[0] if len(pending) == 1 else agent_pb2.ControllerMessage(
                    batch=agent_pb2.ControllerBatch(messages=pending)
                )
                if carry is not None:
                    yield carry
                if closing:
                    break
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            session.close()
            leader.submit_event(S.Disconnected(session))

    async def _hold_during_failover(self, context: grpc.aio.ServicerContext) -> None:
        """A follower that knows no leader, or only the one the agent says it cannot reach,
        holds the call until a leader is known (bounded by about a lease TTL), so the agent
        is served or redirected the instant the election ends rather than after its backoff."""
        stale = ""
        for key, value in context.invocation_metadata() or ():
            if key == errors.STALE_LEADER_METADATA_KEY:
                stale = value if isinstance(value, str) else value.decode()
        if self.r.leader_address and self.r.leader_address not in (stale, self.r.config.advertised):
            return  # a leader the agent has not tried: redirect at once
        await self.r.wait_for_leader(stale, timeout=self.r.config.lease_ttl + 2.0)
        if self.r.stopping:
            raise errors.Unavailable(f"controller {self.r.config.advertised} is shutting down")

    async def _read(
        self, request_iterator: AsyncIterator[agent_pb2.AgentMessage], session: S.AgentSession, leader
    ) -> None:  # noqa: ANN001
        try:
            async for msg in request_iterator:
                session.last_seen = time.monotonic()
                if msg.WhichOneof("body") == "batch":
                    for inner in msg.batch.messages:
                        self._handle(inner, session, leader)
                else:
                    self._handle(msg, session, leader)
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            pass
        except Exception:  # noqa: BLE001
            logger.exception("agent.stream_failed", node_id=session.node_id)
        finally:
            session.close()

    @staticmethod
    def _handle(msg: agent_pb2.AgentMessage, session: S.AgentSession, leader) -> None:  # noqa: ANN001
        kind = msg.WhichOneof("body")
        if kind == "heartbeat":
            session.send(agent_pb2.ControllerMessage(heartbeat_ack=agent_pb2.HeartbeatAck(seq=msg.heartbeat.seq)))
        elif kind == "attempt_started":
            leader.submit_event(S.Started(session, msg.attempt_started))
        elif kind == "attempt_finished":
            leader.submit_event(S.Finished(session, msg.attempt_finished))
        elif kind == "log_data":
            inbox = session.log_requests.get(msg.log_data.request_id)
            if inbox is not None:
                inbox.put_nowait(msg.log_data)
        elif kind == "interrupted":
            leader.submit_event(S.Interrupted(session, msg.interrupted.reason))
        elif kind == "hand_over":
            # Queued before this stream's Disconnected, and acknowledged at once.
            granted = S.granted_handover(
                msg.hand_over.window_ms / 1000, session.register,
                agent_lost_timeout=leader.config.agent_lost_timeout,
                fence_margin=leader.config.fence_margin,
            )
            leader.submit_event(S.HandedOver(session, granted))
            session.send(agent_pb2.ControllerMessage(
                hand_over_ack=agent_pb2.HandOverAck(window_ms=int(granted * 1000))))
        elif kind in ("register", "batch"):
            logger.warning("agent.unexpected_message", node_id=session.node_id, kind=kind)
