"""Agent sessions: one per connected agent, owned by the leader.

The gRPC servicer (controller/api/agent_gateway.py) creates a session per stream and feeds it;
the leader loop is the only place that changes job state, so everything an agent reports that
affects jobs becomes an event on the loop's queue. Heartbeats are answered right here: they
must not wait behind a scheduling pass.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field

from shoal.v1 import agent_pb2


@dataclass(eq=False)
class AgentSession:
    register: agent_pb2.Register
    peer: str = ""
    last_seen: float = field(default_factory=time.monotonic)
    # Set by the leader loop once it has reconciled this agent and sent Registered.
    registered: bool = False
    # No new placements (termination notice received, or the stream is closing).
    accepting: bool = True
    outbound: asyncio.Queue[agent_pb2.ControllerMessage | None] = field(default_factory=asyncio.Queue)
    log_requests: dict[int, asyncio.Queue[agent_pb2.LogData]] = field(default_factory=dict)
    closed: bool = False

    @property
    def node_id(self) -> str:
        return self.register.node_id

    def send(self, msg: agent_pb2.ControllerMessage) -> None:
        if not self.closed:
            self.outbound.put_nowait(msg)

    def close(self) -> None:
        """End the stream (the agent reconnects, possibly to a new leader)."""
        if not self.closed:
            self.closed = True
            self.outbound.put_nowait(None)
            for queue in self.log_requests.values():
                queue.put_nowait(agent_pb2.LogData(eof=True, error="agent session closed"))


_request_ids = itertools.count(1)


def next_request_id() -> int:
    return next(_request_ids)


# Events the sessions hand to the leader loop.
@dataclass(frozen=True)
class Registered:
    session: AgentSession


@dataclass(frozen=True)
class Started:
    session: AgentSession
    msg: agent_pb2.AttemptStarted


@dataclass(frozen=True)
class Finished:
    session: AgentSession
    msg: agent_pb2.AttemptFinished


@dataclass(frozen=True)
class Interrupted:
    session: AgentSession
    reason: str


@dataclass(frozen=True)
class Disconnected:
    session: AgentSession


@dataclass(frozen=True)
class HandedOver:
    """The agent exits on purpose and leaves its attempts to its successor for `seconds` (the
    window already granted in HandOverAck)."""

    session: AgentSession
    seconds: float


AgentEvent = Registered | Started | Finished | Interrupted | Disconnected | HandedOver


# ---- the fence rule (pure) ------------------------------------------------------------------
#
# An agent's log writer is the host's fence: when the agent process dies it waits the agent's
# window W (or a granted hand-over window), then stops the attempts (SIGTERM, kill grace G,
# SIGKILL). A broken stream is requeued only once that is certainly over, so attempt 1 is dead
# before attempt 2 can start anywhere.


def requeue_delay(register: agent_pb2.Register, *, handover: float, reconnect_grace: float,
                  fence_margin: float) -> float:
    """Seconds after a broken stream before the agent's attempts are failed over: never before
    its fence has stopped them (window + kill grace + margin), never before the reconnect grace.
    An agent without a fence (window 0, an older version) gets the reconnect grace alone."""
    window = handover or register.fence_window_ms / 1000
    if not window and not register.fence_kill_grace_ms:
        return reconnect_grace
    return max(reconnect_grace, window + register.fence_kill_grace_ms / 1000 + fence_margin)


def granted_handover(requested: float, register: agent_pb2.Register, *, agent_lost_timeout: float,
                     fence_margin: float) -> float:
    """The hand-over window granted for `requested` seconds: at most what a new leader after a
    failover also waits for (it gives every agent the agent-lost timeout before declaring it
    lost), so that the fence has stopped the attempts before any leader requeues them."""
    cap = agent_lost_timeout - register.fence_kill_grace_ms / 1000 - fence_margin
    return max(min(requested, cap), 0.0)
