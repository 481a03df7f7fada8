"""The agent's log writer (agent/runtime/logwriter.py, agent/runtime/output.py): one process serves
every attempt of an agent, keeps writing while the agent is dead, and exits once nobody needs it.

Real processes throughout; every wait polls an observable condition against a deadline.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import psutil
import pytest

from agent.attempts import attempt_dir
from agent.runtime import logwriter
from agent.runtime.base import AttemptHandle, AttemptSpec
from agent.runtime.output import LogLimits, disconnect_log_writers, open_output, writer_dir
from agent.runtime.process import ProcessRuntime
from agent.runtime.reattach import wait_writer
from tests.support.waiting import alive, eventually

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

REPO = Path(__file__).resolve().parents[3]

# Plays an agent process: starts one attempt with the process runtime, prints its handle, and
# waits to be killed.
AGENT_SCRIPT = """
import asyncio, json, sys
from pathlib import Path
from agent.runtime.base import AttemptSpec
from agent.runtime.process import ProcessRuntime

async def main():
    runtime = ProcessRuntime(cgroups=False)
    spec = AttemptSpec(job_id="job-k", attempt=1, command=("sh", "-c", sys.argv[1]), work_dir=Path(sys.argv[3]))
    handle = await runtime.start(spec, Path(sys.argv[2]))
    print(json.dumps(handle.to_dict()), flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


@pytest.fixture(autouse=True)
async def disconnected() -> AsyncIterator[None]:
    """Each test leaves no connection of this process to a writer (its writers then exit)."""
    yield
    await disconnect_log_writers()




def writers_of(directory: Path) -> list[int]:
    """Pids of the log writers serving `directory`."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if "--serve" in cmdline and cmdline[-1] == str(directory) and alive(proc.pid):
            found.append(proc.pid)
    return found


def log_of(state: Path, job_id: str, attempt: int = 1) -> Path:
    """An attempt's log path in the agent's layout (the writer serves the whole state dir)."""
    directory = attempt_dir(state, job_id, attempt)
    directory.mkdir(parents=True, exist_ok=True)
    return directory / "output.log"


def records(log_path: Path) -> list[tuple[str, str, str]]:
    """(stream, tag, text) of every record of the log."""
    out = []
    for line in log_path.read_text().splitlines():
        _, stream, tag, text = line.split(" ", 3) if line.count(" ") >= 3 else (*line.split(" "), "")
        out.append((stream, tag, text))
    return out


def texts(log_path: Path, stream: str = "stdout") -> list[str]:
    return [text for name, _, text in records(log_path) if name == stream]


def written(handle: AttemptHandle) -> bool:
    """Whether the writer created the attempt's marker (its output is completely in the log)."""
    return os.path.exists(handle.writer_done_file)


def log_has(log_path: Path, text: str) -> Callable[[], bool]:
    return lambda: log_path.exists() and text in log_path.read_text()


async def test_attempts_of_an_agent_share_one_writer_outside_the_agents_session(tmp_path: Path) -> None:
    runtime = ProcessRuntime(cgroups=False)
    state, release = tmp_path / "state", tmp_path / "release"
    logs = {job: log_of(state, job) for job in ("job-a", "job-b")}
    handles = {}
    for job, log_path in logs.items():
        script = f"echo {job}; while [ ! -e {release} ]; do sleep 0.02; done; echo {job} bye >&2"
        spec = AttemptSpec(job_id=job, attempt=1, command=("sh", "-c", script), work_dir=tmp_path)
        handles[job] = await runtime.start(spec, log_path)

    pids = {h.writer_pid for h in handles.values()}
    assert len(pids) == 1 and pids != {0}
    (pid,) = pids
    assert writers_of(state) == [pid]
    writer = psutil.Process(pid)
    assert writer.ppid() != os.getpid()  # not a child of the agent: a job-group sweep never takes it
    assert os.getsid(pid) != os.getsid(0) and os.getpgid(pid) != os.getpgid(0)
    for job, handle in handles.items():
        assert handle.writer_done_file == str(logs[job].with_name("output.written"))
        await eventually(log_has(logs[job], job), what=f"{job}'s first line")

    release.touch()
    for job, handle in handles.items():
        assert (await runtime.wait(handle)).exit_code == 0
        await runtime.cleanup(handle)
        assert texts(logs[job]) == [job]
        assert texts(logs[job], "stderr") == [f"{job} bye"]
        assert written(handle)
    assert alive(pid)  # an idle writer stays while its agent is connected

    await disconnect_log_writers()
    await eventually(lambda: not alive(pid), what="the writer to exit: no agent connected, no attempt open")


async def test_output_is_written_while_the_agent_is_dead_and_the_writer_exits_after(tmp_path: Path) -> None:
    state, go = tmp_path / "state", tmp_path / "go"
    log_path = log_of(state, "job-k")
    script = f"echo before; while [ ! -e {go} ]; do sleep 0.02; done; echo after; echo late >&2"
    agent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", AGENT_SCRIPT, script, str(log_path), str(tmp_path),
        cwd=REPO, stdout=asyncio.subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        line = await asyncio.wait_for(agent.stdout.readline(), 30)  # type: ignore[union-attr]
        handle = AttemptHandle.from_dict(json.loads(line))
        await eventually(log_has(log_path, "before"), what="the job's first line")
    finally:
        os.killpg(agent.pid, signal.SIGKILL)  # the agent's whole process group, as a crash
        await agent.wait()
    writer = handle.writer_pid
    assert alive(writer)

    # A restarted agent (this process) connects to the same writer while it still has the
    # attempt open, and hands it a new attempt.
    output = await open_output(log_of(state, "job-new"), LogLimits())
    assert output.writer_pid == writer
    os.write(output.stdout, b"new\n")
    output.close_job_ends()
    await asyncio.wait_for(output.wait_writer(), 15)

    go.touch()  # the job prints while no agent of its own runs
    await asyncio.wait_for(wait_writer(handle), 15)  # how a re-attached agent waits for the log
    assert texts(log_path) == ["before", "after"]
    assert texts(log_path, "stderr") == ["late"]
    assert written(handle)
    assert texts(log_of(state, "job-new")) == ["new"]

    await disconnect_log_writers()
    await eventually(lambda: not alive(writer), what="the writer to exit once idle and disconnected")
    assert not (state / logwriter.SOCKET_NAME).exists()


async def test_a_writer_with_its_agent_gone_exits_once_its_attempts_ended(tmp_path: Path) -> None:
    state, go = tmp_path / "state", tmp_path / "go"
    log_path = log_of(state, "job-k")
    agent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", AGENT_SCRIPT, f"while [ ! -e {go} ]; do sleep 0.02; done; echo bye",
        str(log_path), str(tmp_path), cwd=REPO, stdout=asyncio.subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        handle = AttemptHandle.from_dict(json.loads(await asyncio.wait_for(agent.stdout.readline(), 30)))  # type: ignore[union-attr]
    finally:
        os.killpg(agent.pid, signal.SIGKILL)
        await agent.wait()
    assert alive(handle.writer_pid)  # the attempt is open: the writer stays without any agent

    go.touch()
    await eventually(lambda: not alive(handle.writer_pid), what="the writer to exit after the attempt")
    assert texts(log_path) == ["bye"]
    assert written(handle)


async def test_waits_end_when_the_writer_died_and_the_next_attempt_starts_a_new_one(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = await open_output(log_of(state, "job-1"), LogLimits())
    os.kill(first.writer_pid, signal.SIGKILL)
    await asyncio.wait_for(first.wait_writer(), 15)  # the writer is gone: nothing more will come
    first.close_job_ends()

    second = await open_output(log_of(state, "job-2"), LogLimits())
    assert second.writer_pid != first.writer_pid
    os.write(second.stdout, b"hello\n")
    second.close_job_ends()
    await asyncio.wait_for(second.wait_writer(), 15)
    assert texts(log_of(state, "job-2")) == ["hello"]


async def test_pending_partial_lines_are_flushed_and_long_lines_cut(tmp_path: Path) -> None:
    log_path = log_of(tmp_path / "state", "job-p")
    output = await open_output(log_path, LogLimits())
    os.write(output.stdout, b"50%")
    await eventually(lambda: ("stdout", "P", "50%") in records(log_path), what="the partial line, flushed")
    os.write(output.stdout, b" done\n" + b"x" * (logwriter.MAX_PIECE + 10))
    piece = ("stdout", "P", "x" * logwriter.MAX_PIECE)
    await eventually(lambda: piece in records(log_path), what="the first piece of a long line")
    os.write(output.stdout, b"\n")
    os.write(output.stderr, b"no newline at the end")
    output.close_job_ends()
    await asyncio.wait_for(output.wait_writer(), 15)
    assert records(log_path) == [
        ("stdout", "P", "50%"),
        ("stdout", "F", " done"),
        ("stdout", "P", "x" * logwriter.MAX_PIECE),
        ("stdout", "F", "x" * 10),
        ("stderr", "F", "no newline at the end"),
    ]


async def test_concurrent_first_attempts_start_one_writer(tmp_path: Path) -> None:
    state = tmp_path / "state"
    outputs = await asyncio.gather(*(open_output(log_of(state, f"job-{i}"), LogLimits()) for i in range(8)))
    assert len({o.writer_pid for o in outputs}) == 1
    for i, output in enumerate(outputs):
        os.write(output.stderr, f"{i}\n".encode())
        output.close_job_ends()
    for output in outputs:
        await asyncio.wait_for(output.wait_writer(), 15)
    assert [texts(log_of(state, f"job-{i}"), "stderr") for i in range(8)] == [[str(i)] for i in range(8)]
    assert writers_of(state) == [outputs[0].writer_pid]


async def test_a_second_writer_for_a_directory_steps_aside(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()

    async def serve() -> int:
        started = await asyncio.create_subprocess_exec(
            sys.executable, "-I", "-S", logwriter.__file__, "--serve", str(state), stderr=subprocess.DEVNULL
        )
        return await asyncio.wait_for(started.wait(), 30)

    assert await serve() == logwriter.EXIT_SERVING
    assert await serve() == logwriter.EXIT_ALREADY_SERVED
    (pid,) = writers_of(state)

    output = await open_output(log_of(state, "job-1"), LogLimits())  # reaches the first one
    assert output.writer_pid == pid
    output.close_job_ends()
    await asyncio.wait_for(output.wait_writer(), 15)
    await disconnect_log_writers()
    await eventually(lambda: not alive(pid), what="the writer to exit")


async def test_a_state_dir_too_long_for_a_socket_address_works(tmp_path: Path) -> None:
    state = tmp_path / ("d" * 60) / ("e" * 60) / "state"
    assert len(str(state / logwriter.SOCKET_NAME)) > logwriter.MAX_SOCKET_PATH
    log_path = log_of(state, "job-long")
    assert writer_dir(log_path) == state
    output = await open_output(log_path, LogLimits())
    os.write(output.stdout, b"fits\n")
    output.close_job_ends()
    await asyncio.wait_for(output.wait_writer(), 15)
    assert texts(log_path) == ["fits"]


async def test_a_log_that_cannot_be_opened_is_an_error_and_the_writer_serves_on(tmp_path: Path) -> None:
    state = tmp_path / "state"
    good = await open_output(log_of(state, "job-ok"), LogLimits())
    bad = log_of(state, "job-bad")
    bad.mkdir()  # a directory where the log should be: neither agent nor writer can open it
    with pytest.raises(OSError):
        await open_output(bad, LogLimits())
    os.write(good.stdout, b"still here\n")
    good.close_job_ends()
    await asyncio.wait_for(good.wait_writer(), 15)
    assert texts(log_of(state, "job-ok")) == ["still here"]


async def test_handles_of_older_agents_wait_for_the_attempts_own_writer(tmp_path: Path) -> None:
    """A handle written before the shared writer names a writer of its own, without a marker."""
    old_writer = await asyncio.create_subprocess_exec("sleep", "1000", start_new_session=True)
    try:
        handle = AttemptHandle.from_dict({
            "runtime": "process", "pid": 1, "pgid": 1, "start_time": 0.0, "writer_pid": old_writer.pid,
            "writer_start_time": psutil.Process(old_writer.pid).create_time(),
        })  # fmt: skip
        assert handle.writer_done_file == ""
        waiting = asyncio.create_task(wait_writer(handle))
        for _ in range(5):
            await asyncio.sleep(0)
        assert not waiting.done()  # the old writer still runs
        old_writer.kill()
        await old_writer.wait()
        await asyncio.wait_for(waiting, 15)
    finally:
        if old_writer.returncode is None:
            old_writer.kill()
        await old_writer.wait()


async def test_a_request_the_writer_cannot_serve_is_refused_and_it_serves_on(tmp_path: Path) -> None:
    state = tmp_path / "state"
    good = await open_output(log_of(state, "job-ok"), LogLimits())
    out_r, out_w = os.pipe()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        sock.connect(str(state / logwriter.SOCKET_NAME))
        sock.settimeout(15)
        socket.send_fds(
            sock, [b"\0".join((b"open", b"k1", os.fsencode(state), b"100", b"1"))], [out_r, out_r]
        )
        assert sock.recv(4096).startswith(b"err\0k1\0cannot open")  # a directory, not a log file
        socket.send_fds(sock, [b"open\0k2\0only-one-pipe"], [out_r])
        assert sock.recv(4096) == b"err\0k2\0bad request"
    finally:
        sock.close()
        os.close(out_r)
        os.close(out_w)
    os.write(good.stdout, b"still here\n")
    good.close_job_ends()
    await asyncio.wait_for(good.wait_writer(), 15)
    assert texts(log_of(state, "job-ok")) == ["still here"]
