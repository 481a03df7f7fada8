"""The runtime contract (agent/runtime/base.py), run against every runtime this host can run.

Only "process" exists today; podman and docker join by adding a name to RUNTIMES below and a
branch to `make_runtime_under_test` (skipping when their CLI is missing), and by giving
`spec()` an image for them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from agent.attempts import AttemptResult, Attempts, Token
from agent.runtime import make_runtime
from agent.runtime.base import AttemptHandle, AttemptSpec, CannotStart, Runtime

pytestmark = [pytest.mark.contract, pytest.mark.timeout(30)]

RUNTIMES = ["process"]


def make_runtime_under_test(name: str) -> Runtime:
    return make_runtime(name)


@pytest.fixture(params=RUNTIMES)
def runtime(request: pytest.FixtureRequest) -> Runtime:
    return make_runtime_under_test(request.param)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def spec(*command: str, env: dict[str, str] | None = None, work_dir: Path | None = None) -> AttemptSpec:
    return AttemptSpec(job_id="job-1:a", attempt=1, command=tuple(command), environment=env or {},
                       work_dir=work_dir)


def python(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


async def eventually(condition: Callable[[], bool], within: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def group_pids(pgid: int) -> list[int]:
    pids = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and alive(proc.pid):
                pids.append(proc.pid)
        except OSError:
            continue
    return pids


async def run_to_end(runtime: Runtime, attempt_spec: AttemptSpec, log_path: Path) -> int | None:
    handle = await runtime.start(attempt_spec, log_path)
    status = await runtime.wait(handle)
    await runtime.cleanup(handle)
    return status.exit_code


@pytest.mark.parametrize("code", [0, 3, 255])
async def test_exit_code_is_reported_exactly(runtime: Runtime, work: Path, tmp_path: Path, code: int) -> None:
    exit_code = await run_to_end(runtime, spec("sh", "-c", f"exit {code}", work_dir=work), tmp_path / "out.log")
    assert exit_code == code


async def test_environment_is_the_attempts_plus_path_home_lang(
    runtime: Runtime, work: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOAL_TEST_AGENT_ONLY", "leak")
    log_path = tmp_path / "out.log"
    command = 'echo "job=$SHOAL_JOB_ID"; echo "path=${PATH:+set}"; echo "leak=${SHOAL_TEST_AGENT_ONLY:-none}"'
    exit_code = await run_to_end(runtime, spec("sh", "-c", command, env={"SHOAL_JOB_ID": "job-1:a"},
                                               work_dir=work), log_path)
    assert exit_code == 0
    assert log_path.read_text().splitlines() == ["job=job-1:a", "path=set", "leak=none"]


async def test_job_environment_wins_over_the_agents(runtime: Runtime, work: Path, tmp_path: Path) -> None:
    log_path = tmp_path / "out.log"
    await run_to_end(runtime, spec("/bin/sh", "-c", 'echo "home=$HOME"', env={"HOME": "/nowhere"},
                                   work_dir=work), log_path)
    assert log_path.read_text() == "home=/nowhere\n"


async def test_stdout_and_stderr_are_appended_to_the_log(runtime: Runtime, work: Path, tmp_path: Path) -> None:
    log_path = tmp_path / "out.log"
    log_path.write_text("earlier\n")
    exit_code = await run_to_end(runtime, spec("sh", "-c", "echo out; echo err >&2; echo out2", work_dir=work),
                                 log_path)
    assert exit_code == 0
    assert log_path.read_text() == "earlier\nout\nerr\nout2\n"


async def test_runs_in_its_work_dir_with_stdin_closed(runtime: Runtime, work: Path, tmp_path: Path) -> None:
    log_path = tmp_path / "out.log"
    exit_code = await run_to_end(runtime, spec("sh", "-c", "pwd; cat; echo done", work_dir=work), log_path)
    assert exit_code == 0
    assert log_path.read_text() == f"{work}\ndone\n"


async def test_core_dumps_are_disabled(runtime: Runtime, work: Path, tmp_path: Path) -> None:
    log_path = tmp_path / "out.log"
    await run_to_end(runtime, spec("sh", "-c", "ulimit -c", work_dir=work), log_path)
    assert log_path.read_text().strip() == "0"


async def test_death_by_signal_is_128_plus_n(runtime: Runtime, work: Path, tmp_path: Path) -> None:
    exit_code = await run_to_end(
        runtime, spec(*python("import os, signal; os.kill(os.getpid(), signal.SIGUSR1)"), work_dir=work),
        tmp_path / "out.log",
    )
    assert exit_code == 128 + signal.SIGUSR1


async def test_kill_stops_the_whole_process_group(runtime: Runtime, work: Path, tmp_path: Path) -> None:
    handle = await runtime.start(spec("sh", "-c", "sleep 1000 & sleep 1000; wait", work_dir=work),
                                 tmp_path / "out.log")
    await eventually(lambda: len(group_pids(handle.pgid)) >= 3, what="sh and both sleeps")
    members = group_pids(handle.pgid)

    await runtime.kill(handle, grace=1.0)

    assert [pid for pid in members if alive(pid)] == []
    assert not runtime.is_alive(handle)
    assert (await runtime.wait(handle)).exit_code == 128 + signal.SIGTERM
    await runtime.cleanup(handle)


async def test_kill_escalates_to_sigkill_after_the_grace(runtime: Runtime, work: Path, tmp_path: Path) -> None:
    log_path = tmp_path / "out.log"
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(1000)"
    handle = await runtime.start(spec(*python(code), work_dir=work), log_path)
    await eventually(lambda: "ready" in log_path.read_text(), what="the SIGTERM handler")

    await runtime.kill(handle, grace=0.3)

    status = await runtime.wait(handle)
    assert status.exit_code == 128 + signal.SIGKILL
    assert status.signal == signal.SIGKILL
    await runtime.cleanup(handle)


async def test_kill_gives_a_clean_exit_its_grace(runtime: Runtime, work: Path, tmp_path: Path) -> None:
    log_path = tmp_path / "out.log"
    code = ("import signal, sys, time\n"
            "def bye(*_):\n    print('checkpoint', flush=True); sys.exit(0)\n"
            "signal.signal(signal.SIGTERM, bye); print('ready', flush=True); time.sleep(1000)")
    handle = await runtime.start(spec(*python(code), work_dir=work), log_path)
    await eventually(lambda: "ready" in log_path.read_text(), what="the SIGTERM handler")

    await runtime.kill(handle, grace=10.0)

    assert (await runtime.wait(handle)).exit_code == 0
    assert "checkpoint" in log_path.read_text()
    await runtime.cleanup(handle)


async def test_cleanup_removes_orphans_left_in_the_group(runtime: Runtime, work: Path, tmp_path: Path) -> None:
    pid_file = tmp_path / "orphan.pid"
    handle = await runtime.start(spec("sh", "-c", f"sleep 1000 & echo $! > {pid_file}", work_dir=work),
                                 tmp_path / "out.log")
    assert (await runtime.wait(handle)).exit_code == 0
    orphan = int(pid_file.read_text())
    assert alive(orphan)

    await runtime.cleanup(handle)

    assert not alive(orphan)


async def test_a_later_runtime_instance_finds_and_kills_an_attempt_from_its_handle(
    runtime: Runtime, work: Path, tmp_path: Path
) -> None:
    handle = await runtime.start(spec("sleep", "1000", work_dir=work), tmp_path / "out.log")
    restored = AttemptHandle.from_dict(handle.to_dict())
    later = make_runtime_under_test(runtime.name)
    assert later.is_alive(restored)

    await later.kill(restored, grace=0.0)

    assert not later.is_alive(restored)
    assert (await runtime.wait(handle)).exit_code == 128 + signal.SIGKILL
    await runtime.cleanup(handle)


async def test_a_recycled_pid_is_not_mistaken_for_the_attempt(runtime: Runtime) -> None:
    me = psutil.Process()
    handle = AttemptHandle(runtime=runtime.name, pid=me.pid, pgid=os.getpgid(me.pid),
                           start_time=me.create_time() + 3600)
    assert not runtime.is_alive(handle)


async def test_command_not_found_cannot_start(runtime: Runtime, work: Path, tmp_path: Path) -> None:
    with pytest.raises(CannotStart, match="no-such-command-xyz.*not found"):
        await runtime.start(spec("no-such-command-xyz", work_dir=work), tmp_path / "out.log")


async def test_permission_denied_cannot_start(runtime: Runtime, work: Path, tmp_path: Path) -> None:
    script = tmp_path / "not-executable.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(stat.S_IRUSR | stat.S_IWUSR)
    with pytest.raises(CannotStart, match="permission denied"):
        await runtime.start(spec(str(script), work_dir=work), tmp_path / "out.log")


async def test_empty_command_cannot_start(runtime: Runtime, work: Path, tmp_path: Path) -> None:
    with pytest.raises(CannotStart):
        await runtime.start(spec(work_dir=work), tmp_path / "out.log")


# --- the same runtimes under the agent's attempt supervisor (timeouts, reasons) ------------------


@pytest.fixture
def attempts(runtime: Runtime, tmp_path: Path) -> Attempts:
    return Attempts(runtime, tmp_path / "state", kill_grace=0.5)


async def supervise(attempts: Attempts, *command: str, attempt_timeout: float = 0.0) -> AttemptResult:
    token = Token("job-1:a", 1, 1)
    attempt = await attempts.start(token, spec(*command), timeout_seconds=attempt_timeout)
    assert attempt is not None
    await asyncio.wait_for(attempt.ended.wait(), 20)
    assert attempt.result is not None
    return attempt.result


async def test_timeout_kills_the_attempt(attempts: Attempts) -> None:
    result = await supervise(attempts, "sleep", "1000", attempt_timeout=0.3)
    assert result.reason == "Timeout"
    assert result.status_reason == "Job attempt duration exceeded timeout"
    assert result.exit_code == 128 + signal.SIGTERM
    assert result.started_at > 0 and result.stopped_at >= result.started_at


async def test_nonzero_exit_is_an_essential_container_exit(attempts: Attempts) -> None:
    result = await supervise(attempts, "sh", "-c", "exit 3")
    assert (result.exit_code, result.status_reason, result.reason) == (3, "Essential container in task exited", "")


async def test_success_has_no_reason(attempts: Attempts) -> None:
    result = await supervise(attempts, "true")
    assert (result.exit_code, result.status_reason, result.reason) == (0, "", "")


async def test_command_not_found_is_a_clean_cannot_start(attempts: Attempts) -> None:
    result = await supervise(attempts, "no-such-command-xyz")
    assert result.exit_code is None
    assert result.reason == "CannotStart"
    assert result.status_reason.startswith("CannotStartContainerError: ")
    assert "no-such-command-xyz" in result.status_reason
    log_text = attempts.log_path("job-1:a", 1).read_text()
    assert result.status_reason in log_text
