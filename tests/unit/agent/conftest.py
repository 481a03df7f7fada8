"""Fixtures for the agent's tests: a fake controller on loopback and a real agent against it."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from agent.config import AgentConfig
from agent.daemon import run_agent
from tests.unit.agent.fake_controller import FakeController, serve


@pytest.fixture
async def controller() -> AsyncIterator[FakeController]:
    fake = FakeController()
    server = await serve(fake)
    try:
        yield fake
    finally:
        await server.stop(grace=None)


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., AgentConfig]:
    def make(controllers: tuple[str, ...], **overrides: Any) -> AgentConfig:
        config = AgentConfig(
            controllers=controllers,
            node_id="node-a",
            hostname="host-a",
            state_dir=tmp_path / "state",
            vcpus=2.0,
            memory_mib=1024,
            compute_environment="ce-test",
            labels={"zone": "z1"},
            fence_timeout=3.0,
            kill_grace=0.3,
            error_retry=0.1,
        )
        return dataclasses.replace(config, **overrides)

    return make


class RunningAgent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.stop_event = asyncio.Event()
        self.keep_jobs = False
        self.task = asyncio.create_task(run_agent(config, self.stop_event, keep_jobs=lambda: self.keep_jobs))

    async def stop(self, within: float = 15.0, *, keep_jobs: bool = False) -> None:
        """Stop the agent: its attempts are stopped, or with `keep_jobs` left running (SIGUSR2)."""
        self.keep_jobs = keep_jobs
        self.stop_event.set()
        done, _ = await asyncio.wait({self.task}, timeout=within)
        if not done:
            for task in asyncio.all_tasks():
                chain = []
                coro = task.get_coro()
                while coro is not None:
                    frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None)
                    if frame is not None:
                        chain.append(f"{frame.f_code.co_filename.split('/')[-1]}:{frame.f_lineno} {frame.f_code.co_name}")
                    else:
                        chain.append(repr(coro))
                    coro = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None)
                print("TASK", task.get_name(), chain)
            raise AssertionError("agent did not stop")
        self.task.result()


@pytest.fixture
async def start_agent() -> AsyncIterator[Callable[[AgentConfig], Awaitable[RunningAgent]]]:
    agents: list[RunningAgent] = []

    async def start(config: AgentConfig) -> RunningAgent:
        agent = RunningAgent(config)
        agents.append(agent)
        return agent

    try:
        yield start
    finally:
        for agent in agents:
            if not agent.task.done():
                await agent.stop()
            elif not agent.task.cancelled():  # cancelled: a test playing an agent crash
                agent.task.result()  # surface a crash
