"""`python -m agent` as a real process: it registers, runs a job, and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.support.waiting import alive
from tests.unit.agent.fake_controller import (
    FakeController,
    finished,
    is_heartbeat,
    start_attempt,
    started,
    token,
)

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

REPO = Path(__file__).resolve().parents[3]



async def test_sigterm_interrupts_kills_reports_and_exits_0(controller: FakeController, tmp_path: Path) -> None:
    agent = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent",
        "--controller", controller.address,
        "--state-dir", str(tmp_path / "state"),
        "--compute-env", "ce-test",
        "--kill-grace", "0.5",
        "--label", "zone=z1",
        cwd=REPO,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        register = (await controller.wait_for(lambda m: m.HasField("register"), within=20)).register
        assert register.node_id.startswith(register.hostname + "-")
        assert dict(register.labels) == {"zone": "z1"}
        await controller.wait_for(is_heartbeat)

        pid_file = tmp_path / "job.pid"
        await controller.send(start_attempt(token("job-term"), ["sh", "-c", f"echo $$ > {pid_file}; exec sleep 1000"]))
        await controller.wait_for(started("job-term"))
        deadline = time.monotonic() + 10
        while not (pid_file.exists() and pid_file.read_text().strip()):
            assert time.monotonic() < deadline, "the job never wrote its pid"
            await asyncio.sleep(0.02)
        job_pid = int(pid_file.read_text())

        agent.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(agent.communicate(), 20)

        assert agent.returncode == 0, stderr.decode()
        interrupted = await controller.wait_for(lambda m: m.HasField("interrupted"))
        assert interrupted.interrupted.reason == "Host interrupted: termination notice"
        report = (await controller.wait_for(finished("job-term"))).attempt_finished
        assert report.status_reason == "Host interrupted: termination notice"
        assert not alive(job_pid)
    finally:
        if agent.returncode is None:
            agent.kill()
            await agent.wait()
