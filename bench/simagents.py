"""Many simulated node agents in one asyncio process, speaking shoal.v1.AgentGateway for real.

    .venv/bin/python -m bench.simagents --controller HOST:PORT[,...] --count 1000 [--vcpus 4]
        [--memory-mib 16384] [--job-seconds 0] [--channels 16] [--compute-env default]

Each simulated agent holds its own Connect stream (the streams share a few HTTP/2 connections):
it registers with a fixed capacity, heartbeats at the interval the controller asks for (with the
tokens it is running, like the real agent), answers StartAttempt with AttemptStarted and, after
`--job-seconds`, AttemptFinished(exit 0); KillAttempt ends the attempt with exit 137; ReadLogs is
answered with an empty eof. A follower's redirect ("shoal-leader" trailing metadata) is followed,
any other end of the stream reconnects with a short backoff, re-registering with what it holds.

This exercises the real controller (gateway, sessions, leader loop, etcd writes) without
spawning processes. Progress goes to stdout as one JSON object per `--report-every` seconds:
{"t": ..., "registered": N, "started": N, "finished": N, "reconnects": N}.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import time
from dataclasses import dataclass, field

import grpc
import grpc.aio

from shoal.v1 import agent_pb2, agent_pb2_grpc, types_pb2

EXIT_KILLED = 137


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Counters:
    registered: int = 0
    started: int = 0
    finished: int = 0
    killed: int = 0
    reconnects: int = 0
    errors: dict[str, int] = field(default_factory=dict)


@dataclass
class Held:
    token: types_pb2.AttemptToken
    started_at: int
    timer: asyncio.Task[None] | None = None


class SimAgent:
    """One simulated agent: a Connect stream with a fake runtime behind it."""

    def __init__(
        self,
        node_id: str,
        args: argparse.Namespace,
        channels: dict[str, list[grpc.aio.Channel]],
        index: int,
        counters: Counters,
    ) -> None:
        self.node_id = node_id
        self.args = args
        self.channels = channels
        self.index = index
        self.counters = counters
        self.held: dict[tuple[str, int], Held] = {}
        self.registered = False
        self.outbox: asyncio.Queue[agent_pb2.AgentMessage | None] = asyncio.Queue()
        self.seq = 0
        # As the real agent: what queued up while a write was in flight goes as one
        # AgentMessage.batch, once the controller's Registered said it takes them.
        self.batches = False

    def _channel(self, address: str) -> grpc.aio.Channel:
        pool = self.channels[address]
        return pool[self.index % len(pool)]

    async def run(self, addresses: list[str]) -> None:
        target = addresses[self.index % len(addresses)]
        backoff = 0.05
        while True:
            redirect = await self._session(target)
            if self.registered:
                self.registered = False
                self.counters.registered -= 1
            self.counters.reconnects += 1
            if redirect:
                target = redirect
                continue
            target = random.choice(addresses)
            await asyncio.sleep(backoff * (1 + random.random()))
            backoff = min(backoff * 2, 1.0)

    async def _requests(self):  # noqa: ANN202 - async generator of AgentMessage
        outbox = self.outbox
        while True:
            msg = await outbox.get()
            if msg is None:
                return
            if not self.batches or outbox.empty():
                yield msg
                continue
            pending = [msg]
            closing = False
            while not outbox.empty() and len(pending) < 256:
                more = outbox.get_nowait()
                if more is None:
                    closing = True
                    break
                pending.append(more)
            yield pending[0] if len(pending) == 1 else agent_pb2.AgentMessage(batch=agent_pb2.AgentBatch(messages=pending))
            if closing:
                return

    def send(self, **body: object) -> None:
        self.outbox.put_nowait(agent_pb2.AgentMessage(**body))  # type: ignore[arg-type]

    async def _session(self, target: str) -> str:
        """One stream; returns the leader's address when redirected, else ''."""
        if target not in self.channels:
            self.channels[target] = [
                grpc.aio.insecure_channel(target, options=[("bench.channel", i)])
                for i in range(self.args.channels)
            ]
        self.outbox = asyncio.Queue()
        self.batches = False
        reg = agent_pb2.Register(
            node_id=self.node_id,
            hostname=self.node_id,
            compute_environment=self.args.compute_env,
            vcpus=self.args.vcpus,
            memory_mib=self.args.memory_mib,
            runtimes=["process"],
            agent_version="sim",
            attempts=[
                agent_pb2.HeldAttempt(token=h.token, started_at=h.started_at) for h in self.held.values()
            ],
            fence_timeout_ms=int(self.args.fence_timeout * 1000),
            batches=not self.args.no_batches,
        )
        self.send(register=reg)
        stub = agent_pb2_grpc.AgentGatewayStub(self._channel(target))
        call = stub.Connect(self._requests())
        heartbeat: asyncio.Task[None] | None = None
        try:
            async for outer in call:
                inner = outer.batch.messages if outer.WhichOneof("body") == "batch" else (outer,)
                for msg in inner:
                    heartbeat = self._dispatch(msg, heartbeat)
            return ""
        except grpc.aio.AioRpcError as err:
            code = err.code().name
            self.counters.errors[code] = self.counters.errors.get(code, 0) + 1
            for key, value in err.trailing_metadata() or ():
                if key == "shoal-leader" and value:
                    return str(value)
            return ""
        finally:
            if heartbeat is not None:
                heartbeat.cancel()
            self.outbox.put_nowait(None)
            call.cancel()

    def _dispatch(self, msg: agent_pb2.ControllerMessage, heartbeat: asyncio.Task[None] | None) -> asyncio.Task[None] | None:
        kind = msg.WhichOneof("body")
        if kind == "registered":
            if not self.registered:
                self.registered = True
                self.counters.registered += 1
            self.batches = msg.registered.batches and not self.args.no_batches
            for token in msg.registered.stale:
                self._forget(token)
            interval = (msg.registered.heartbeat_interval_ms or 1000) / 1000
            if heartbeat is None:
                heartbeat = asyncio.create_task(self._heartbeat(interval))
        elif kind == "start_attempt":
            self._start(msg.start_attempt)
        elif kind == "kill_attempt":
            self._kill(msg.kill_attempt.token)
        elif kind == "read_logs":
            self.send(log_data=agent_pb2.LogData(request_id=msg.read_logs.request_id, eof=True))
        return heartbeat

    async def _heartbeat(self, interval: float) -> None:
        await asyncio.sleep(random.random() * interval)  # spread 1000 agents over the interval
        while True:
            self.seq += 1
            running = [h.token for h in self.held.values()]
            self.send(heartbeat=agent_pb2.Heartbeat(seq=self.seq, running=running))
            await asyncio.sleep(interval)

    def _start(self, start: agent_pb2.StartAttempt) -> None:
        key = (start.token.job_id, start.token.attempt)
        if key in self.held:
            return  # a re-sent start of an attempt already running
        held = Held(token=start.token, started_at=_now_ms())
        self.held[key] = held
        self.counters.started += 1
        self.send(attempt_started=agent_pb2.AttemptStarted(token=start.token, started_at=held.started_at))
        held.timer = asyncio.get_running_loop().create_task(self._finish_later(key, self.args.job_seconds, 0))

    async def _finish_later(self, key: tuple[str, int], delay: float, exit_code: int) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
        held = self.held.pop(key, None)
        if held is None:
            return
        finished = agent_pb2.AttemptFinished(
            token=held.token,
            exit_code=exit_code,
            status_reason="" if exit_code == 0 else "Job killed",
            started_at=held.started_at,
            stopped_at=_now_ms(),
        )
        self.counters.finished += 1
        self.send(attempt_finished=finished)

    def _kill(self, token: types_pb2.AttemptToken) -> None:
        key = (token.job_id, token.attempt)
        held = self.held.get(key)
        if held is None:
            return
        if held.timer is not None:
            held.timer.cancel()
        self.counters.killed += 1
        asyncio.get_running_loop().create_task(self._finish_later(key, 0, EXIT_KILLED))

    def _forget(self, token: types_pb2.AttemptToken) -> None:
        held = self.held.pop((token.job_id, token.attempt), None)
        if held is not None and held.timer is not None:
            held.timer.cancel()


async def run(args: argparse.Namespace) -> None:
    addresses = [a.strip() for a in args.controller.split(",") if a.strip()]
    counters = Counters()
    channels: dict[str, list[grpc.aio.Channel]] = {}
    agents = [SimAgent(f"{args.prefix}{i:05d}", args, channels, i, counters) for i in range(args.count)]
    tasks = []
    for i, agent in enumerate(agents):
        tasks.append(asyncio.create_task(agent.run(addresses)))
        if i % 50 == 49:
            await asyncio.sleep(0.05)  # do not open 1000 streams in one burst
    start = time.monotonic()
    try:
        while True:
            line = {
                "t": round(time.monotonic() - start, 3),
                "registered": counters.registered,
                "started": counters.started,
                "finished": counters.finished,
                "killed": counters.killed,
                "reconnects": counters.reconnects,
                "errors": counters.errors,
            }
            print(json.dumps(line), flush=True)
            await asyncio.sleep(args.report_every)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for pool in channels.values():
            for channel in pool:
                await channel.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.simagents", description=__doc__.splitlines()[0])
    p.add_argument("--controller", required=True, metavar="HOST:PORT[,...]")
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--vcpus", type=float, default=4.0)
    p.add_argument("--memory-mib", type=int, default=16384)
    p.add_argument("--job-seconds", type=float, default=0.0, help="how long each fake attempt runs")
    p.add_argument("--channels", type=int, default=16, help="HTTP/2 connections per controller")
    p.add_argument("--compute-env", default="default")
    p.add_argument("--prefix", default="sim-", help="node id prefix")
    p.add_argument("--fence-timeout", type=float, default=6.0)
    p.add_argument("--report-every", type=float, default=0.5)
    p.add_argument("--no-batches", action="store_true", help="one message per write (agents before batching)")
    args = p.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(args))
    sys.exit(0)


if __name__ == "__main__":
    main()
