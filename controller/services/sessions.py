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


AgentEvent = Registered | Started | Finished | Interrupted | Disconnected
