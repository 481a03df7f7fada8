"""The real agent session against a fake controller on loopback (real gRPC, real processes)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import psutil
import pytest

from agent.attempts import STATE_FILE
from agent.session import _Outbox
from shoal.cli.render import LogRenderer
from shoal.errors import STALE_LEADER_METADATA_KEY
from shoal.v1 import agent_pb2
from tests.support.waiting import alive, eventually
from tests.unit.agent.fake_controller import (
    FakeController,
    Refusal,
    finished,
    is_heartbeat,
    is_register,
    kill_attempt,
    log_data,
    log_eof,
    read_logs,
    register_reporting,
    serve,
    start_attempt,
    started,
    token,
)

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]




def pid_in(path: Path) -> int | None:
    try:
        return int(path.read_text())
    except (FileNotFoundError, ValueError):
        return None  # not written yet, or half written


async def read_pid(path: Path) -> int:
    await eventually(lambda: pid_in(path) is not None, what=f"a pid in {path}")
    pid = pid_in(path)
    assert pid is not None
    return pid


async def collect_logs(controller: FakeController, request_id: int) -> bytes:
    await controller.wait_for(log_eof(request_id), what=f"eof of log request {request_id}")
    chunks = controller.matching(log_data(request_id))
    assert all(len(m.log_data.data) <= 64 * 1024 for m in chunks)
    assert [m.log_data.eof for m in chunks].count(True) == 1 and chunks[-1].log_data.eof
    return b"".join(m.log_data.data for m in chunks)


async def test_registers_with_its_capacity_then_heartbeats(controller, make_config, start_agent) -> None:
    await start_agent(make_config((controller.address,)))

    message = await controller.wait_for(is_register, what="Register")
    register = message.register
    assert register.node_id == "node-a"
    assert register.hostname == "host-a"
    assert register.compute_environment == "ce-test"
    assert (register.vcpus, register.memory_mib) == (2.0, 1024)
    assert dict(register.labels) == {"zone": "z1"}
    assert list(register.runtimes) == ["process"]
    assert register.fence_timeout_ms == 3000
    assert register.agent_version
    assert list(register.attempts) == []
    assert controller.received[0] is message

    heartbeats = await controller.wait_count(is_heartbeat, 3)
    assert [h.heartbeat.seq for h in heartbeats[:3]] == [1, 2, 3]


async def test_start_attempt_reports_started_then_finished_with_the_exit_code(
    controller, make_config, start_agent
) -> None:
    await start_agent(make_config((controller.address,)))
    tok = token("job-exit3")
    await controller.send(start_attempt(tok, ["sh", "-c", 'test "$SHOAL_JOB_ID" = job-exit3 && exit 3'],
                                        env={"SHOAL_JOB_ID": "job-exit3"}))

    begun = await controller.wait_for(started("job-exit3"), what="AttemptStarted")
    ended = await controller.wait_for(finished("job-exit3"), what="AttemptFinished")

    assert begun.attempt_started.token == tok
    assert begun.attempt_started.started_at > 0
    report = ended.attempt_finished
    assert report.token == tok
    assert report.HasField("exit_code") and report.exit_code == 3
    assert report.status_reason == "Essential container in task exited"
    assert report.started_at == begun.attempt_started.started_at
    assert report.stopped_at >= report.started_at
    assert controller.received.index(begun) < controller.received.index(ended)


async def test_start_attempt_is_idempotent(controller, make_config, start_agent, tmp_path: Path) -> None:
    await start_agent(make_config((controller.address,)))
    tok = token("job-twice")
    command = ["sh", "-c", f"echo run >> {tmp_path / 'runs'}"]
    await controller.send(start_attempt(tok, command))
    await controller.send(start_attempt(tok, command))
    await controller.send(start_attempt(token("job-after"), ["true"]))

    await controller.wait_for(finished("job-after"))
    await controller.wait_for(finished("job-twice"))
    assert len(controller.matching(started("job-twice"))) == 1
    assert (tmp_path / "runs").read_text() == "run\n"


async def test_kill_attempt_kills_the_group_and_reports_the_given_reason(
    controller, make_config, start_agent, tmp_path: Path
) -> None:
    await start_agent(make_config((controller.address,)))
    tok = token("job-kill")
    pid_file = tmp_path / "child.pid"
    await controller.send(start_attempt(tok, ["sh", "-c", f"sleep 1000 & echo $! > {pid_file}; wait"]))
    await controller.wait_for(started("job-kill"))
    grandchild = await read_pid(pid_file)

    await controller.send(kill_attempt(tok, "Terminated by user: enough", grace_ms=200))

    report = (await controller.wait_for(finished("job-kill"))).attempt_finished
    assert report.status_reason == "Terminated by user: enough"
    assert report.exit_code == 128 + signal.SIGTERM
    assert not alive(grandchild)


async def test_attempt_timeout_is_reported(controller, make_config, start_agent) -> None:
    await start_agent(make_config((controller.address,)))
    await controller.send(start_attempt(token("job-slow"), ["sleep", "1000"], timeout_seconds=1))

    report = (await controller.wait_for(finished("job-slow"))).attempt_finished
    assert (report.reason, report.status_reason) == ("Timeout", "Job attempt duration exceeded timeout")


async def test_cannot_start_is_reported_and_written_to_the_log(controller, make_config, start_agent) -> None:
    await start_agent(make_config((controller.address,)))
    await controller.send(start_attempt(token("job-typo"), ["no-such-command-xyz", "--flag"]))

    report = (await controller.wait_for(finished("job-typo"))).attempt_finished
    assert not report.HasField("exit_code")
    assert report.reason == "CannotStart"
    assert report.status_reason.startswith("CannotStartContainerError: ")
    assert "no-such-command-xyz" in report.status_reason
    assert controller.matching(started("job-typo")) == []

    await controller.send(read_logs(1, "job-typo"))
    assert report.status_reason.encode() in await collect_logs(controller, 1)


def text(records: bytes) -> str:
    """What `shoal logs` prints for the stored records."""
    renderer = LogRenderer()
    return (renderer.feed(records) + renderer.flush()).decode()


async def test_read_logs_sends_the_file_from_the_offset(controller, make_config, start_agent) -> None:
    await start_agent(make_config((controller.address,)))
    await controller.send(start_attempt(token("job:logs"), ["sh", "-c", "echo out; echo err >&2"]))
    await controller.wait_for(finished("job:logs"))

    await controller.send(read_logs(1, "job:logs"))
    whole = await collect_logs(controller, 1)
    assert sorted(text(whole).splitlines()) == ["err", "out"]
    second = whole.index(b"\n") + 1
    await controller.send(read_logs(2, "job:logs", offset=second))

    assert await collect_logs(controller, 2) == whole[second:]


async def test_read_logs_splits_big_output_into_chunks(controller, make_config, start_agent) -> None:
    await start_agent(make_config((controller.address,)))
    lines = 100_000  # ~3.5 MiB of records
    await controller.send(start_attempt(token("job-big"), ["seq", str(lines)]))
    await controller.wait_for(finished("job-big"))

    await controller.send(read_logs(5, "job-big"))

    data = await collect_logs(controller, 5)
    size = len(data)
    assert text(data).splitlines() == [str(i) for i in range(1, lines + 1)]
    assert len(controller.matching(log_data(5))) >= size // (64 * 1024)


async def test_read_logs_of_an_unknown_attempt_is_an_error(controller, make_config, start_agent) -> None:
    await start_agent(make_config((controller.address,)))

    await controller.send(read_logs(9, "job-nope", attempt=2))

    reply = (await controller.wait_for(log_eof(9))).log_data
    assert reply.error == "no logs for job job-nope attempt 2 on this node"
    assert reply.data == b""


async def test_read_logs_follow_tails_until_the_attempt_ends(
    controller, make_config, start_agent, tmp_path: Path
) -> None:
    await start_agent(make_config((controller.address,)))
    go = tmp_path / "go"
    script = f"echo one; while [ ! -e {go} ]; do sleep 0.02; done; echo two"
    await controller.send(start_attempt(token("job-follow"), ["sh", "-c", script]))
    await controller.wait_for(started("job-follow"))

    await controller.send(read_logs(3, "job-follow", follow=True))
    first = await controller.wait_for(lambda m: log_data(3)(m) and b"one" in m.log_data.data)
    assert not first.log_data.eof
    assert controller.matching(finished("job-follow")) == []
    go.touch()

    assert text(await collect_logs(controller, 3)) == "one\ntwo\n"
    assert controller.matching(finished("job-follow"))


async def test_cancel_logs_stops_a_follow(controller, make_config, start_agent, tmp_path: Path) -> None:
    await start_agent(make_config((controller.address,)))
    tok = token("job-cancel")
    await controller.send(start_attempt(tok, ["sh", "-c", "echo hello; exec sleep 1000"]))
    await controller.wait_for(started("job-cancel"))
    await controller.send(read_logs(4, "job-cancel", follow=True))
    await controller.wait_for(log_data(4))

    await controller.send(agent_pb2.ControllerMessage(cancel_logs=agent_pb2.CancelLogs(request_id=4)))
    await controller.send(kill_attempt(tok, "done"))
    await controller.wait_for(finished("job-cancel"))
    # Without the cancel, eof would follow within one poll (100 ms); give it ten heartbeats.
    seq = max(m.heartbeat.seq for m in controller.matching(is_heartbeat))
    await controller.wait_for(lambda m: is_heartbeat(m) and m.heartbeat.seq >= seq + 10)
    assert controller.matching(log_eof(4)) == []


async def test_follows_the_leader_named_by_a_follower(controller, make_config, start_agent) -> None:
    follower = FakeController()
    follower.refusal = Refusal(grpc.StatusCode.UNAVAILABLE, "not the leader", leader=controller.address)
    follower_server = await serve(follower)
    try:
        await start_agent(make_config((follower.address,)))

        await controller.wait_for(is_register, what="Register at the leader")
        await controller.wait_for(is_heartbeat)
        assert follower.connections >= 1
    finally:
        await follower_server.stop(grace=None)


async def test_tells_the_follower_when_the_leader_it_named_is_unreachable(controller, make_config, start_agent) -> None:
    """The leader died and its lease still runs: the follower names it, the agent cannot connect,
    and comes back saying so (the follower then holds the call until the election ends)."""
    dead = FakeController()
    dead_server = await serve(dead)
    await dead_server.stop(grace=None)
    controller.refusal = Refusal(grpc.StatusCode.UNAVAILABLE, "not the leader", leader=dead.address, times=1)
    await start_agent(make_config((controller.address, dead.address)))

    await controller.wait_for(is_heartbeat)
    assert controller.connections == 2
    assert STALE_LEADER_METADATA_KEY not in controller.metadata[0]
    assert controller.metadata[1][STALE_LEADER_METADATA_KEY] == dead.address


async def test_tries_the_next_address_when_one_is_down(controller, make_config, start_agent) -> None:
    dead = FakeController()
    dead_server = await serve(dead)
    await dead_server.stop(grace=None)

    await start_agent(make_config((dead.address, controller.address)))

    await controller.wait_for(is_heartbeat)


async def test_a_refused_registration_is_retried(controller, make_config, start_agent) -> None:
    controller.refusal = Refusal(grpc.StatusCode.NOT_FOUND, "compute environment ce-test not found", times=2)
    await start_agent(make_config((controller.address,)))

    await controller.wait_for(is_heartbeat)
    assert controller.connections == 3


async def test_results_are_kept_until_acknowledged(controller, make_config, start_agent) -> None:
    await start_agent(make_config((controller.address,)))
    await controller.wait_for(is_heartbeat)
    controller.hang_up_on = finished("job-lost-report")

    await controller.send(start_attempt(token("job-lost-report"), ["sh", "-c", "exit 7"]))

    reregister = await controller.wait_for(
        lambda m: is_register(m) and any(a.HasField("finished") for a in m.register.attempts),
        what="a Register carrying the unacknowledged result",
    )
    (held,) = reregister.register.attempts
    assert held.token.job_id == "job-lost-report"
    assert held.finished.exit_code == 7

    # Once registered with it, the result is dropped: the next Register no longer carries it.
    registers = len(controller.matching(is_register))
    await controller.wait_for(is_heartbeat)  # on the new stream
    await controller.hang_up()
    (*_, latest) = await controller.wait_count(is_register, registers + 1)
    assert list(latest.register.attempts) == []


async def test_self_fences_when_the_controller_goes_silent(
    controller, make_config, start_agent, tmp_path: Path
) -> None:
    await start_agent(make_config((controller.address,), fence_timeout=0.8, kill_grace=0.2))
    pid_file = tmp_path / "job.pid"
    await controller.send(start_attempt(token("job-fenced"), ["sh", "-c", f"echo $$ > {pid_file}; exec sleep 1000"]))
    await controller.wait_for(started("job-fenced"))
    pid = await read_pid(pid_file)

    controller.silent = True
    await eventually(lambda: not alive(pid), what="the fenced attempt to be killed")
    state_file = make_config(()).state_dir / STATE_FILE
    await eventually(lambda: '"Agent fenced' in state_file.read_text(), what="the fenced result to be kept")
    controller.silent = False

    register = await controller.wait_for(
        register_reporting("job-fenced", "Agent fenced: lost contact with controller"),
        what="a Register reporting the fenced attempt",
    )
    (held,) = register.register.attempts
    assert held.started_at > 0
    assert held.finished.stopped_at >= held.started_at
    assert controller.matching(finished("job-fenced")) == []


async def test_a_stale_attempt_is_killed_and_forgotten(controller, make_config, start_agent, tmp_path: Path) -> None:
    await start_agent(make_config((controller.address,)))
    tok = token("job-stale")
    pid_file = tmp_path / "job.pid"
    await controller.send(start_attempt(tok, ["sh", "-c", f"echo $$ > {pid_file}; exec sleep 1000"]))
    await controller.wait_for(started("job-stale"))
    pid = await read_pid(pid_file)

    controller.stale_on_next_register = [tok]
    await controller.hang_up()

    register = await controller.wait_for(
        lambda m: is_register(m) and any(a.token == tok and not a.HasField("finished") for a in m.register.attempts)
    )
    assert register.register.attempts[0].started_at > 0
    await eventually(lambda: not alive(pid), what="the stale attempt to be killed")
    seq = max(m.heartbeat.seq for m in controller.matching(is_heartbeat))
    beat = await controller.wait_for(lambda m: is_heartbeat(m) and m.heartbeat.seq > seq + 2)
    assert list(beat.heartbeat.running) == []
    assert controller.matching(finished("job-stale")) == []


async def test_start_from_an_older_epoch_is_ignored(make_config, start_agent) -> None:
    controller = FakeController(epoch=5)
    server = await serve(controller)
    try:
        await start_agent(make_config((controller.address,)))
        await controller.send(start_attempt(token("job-old", epoch=4), ["true"]))
        await controller.send(start_attempt(token("job-new", epoch=5), ["true"]))

        await controller.wait_for(finished("job-new"))
        assert controller.matching(started("job-old")) == []
        assert controller.matching(finished("job-old")) == []
    finally:
        await server.stop(grace=None)


async def test_shutdown_interrupts_kills_and_reports(controller, make_config, start_agent, tmp_path: Path) -> None:
    agent = await start_agent(make_config((controller.address,)))
    pid_file = tmp_path / "job.pid"
    await controller.send(
        start_attempt(token("job-long"), ["sh", "-c", f"sleep 1000 & echo $! > {pid_file}; wait"])
    )
    await controller.wait_for(started("job-long"))
    grandchild = await read_pid(pid_file)

    await agent.stop()

    interrupted = await controller.wait_for(lambda m: m.HasField("interrupted"))
    assert interrupted.interrupted.reason == "Host interrupted: termination notice"
    report = (await controller.wait_for(finished("job-long"))).attempt_finished
    assert report.status_reason == "Host interrupted: termination notice"
    assert controller.received.index(interrupted) < controller.received.index(
        controller.matching(finished("job-long"))[0]
    )
    assert not alive(grandchild)


# --- agent restarts: re-attaching to what the previous agent process left -------------------------


def held_in(message: agent_pb2.AgentMessage, job_id: str) -> agent_pb2.HeldAttempt | None:
    for held in message.register.attempts if message.HasField("register") else ():
        if held.token.job_id == job_id:
            return held
    return None


async def test_a_restarted_agent_reattaches_to_a_running_attempt_and_reports_its_exit(
    controller, make_config, start_agent, tmp_path: Path
) -> None:
    config = make_config((controller.address,))
    first = await start_agent(config)
    pid_file, release = tmp_path / "job.pid", tmp_path / "release"
    script = f"echo $$ > {pid_file}; echo before; while [ ! -e {release} ]; do sleep 0.05; done; echo after; exit 7"
    await controller.send(start_attempt(token("job-kept"), ["sh", "-c", script]))
    started_at = (await controller.wait_for(started("job-kept"))).attempt_started.started_at
    pid = await read_pid(pid_file)

    await first.stop(keep_jobs=True)
    assert alive(pid)
    assert controller.matching(lambda m: m.HasField("interrupted")) == []
    registers = len(controller.matching(is_register))

    await start_agent(config)
    (*_, register) = await controller.wait_count(is_register, registers + 1)
    held = held_in(register, "job-kept")
    assert held is not None and not held.HasField("finished")
    assert held.started_at == started_at
    beat = await controller.wait_for(lambda m: is_heartbeat(m) and len(m.heartbeat.running) == 1)
    assert beat.heartbeat.running[0].job_id == "job-kept"

    release.touch()
    report = (await controller.wait_for(finished("job-kept"))).attempt_finished
    assert (report.exit_code, report.status_reason) == (7, "Essential container in task exited")
    assert report.started_at == started_at
    controller.received.clear()
    request = read_logs(1, "job-kept")
    await controller.send(request)
    text = (await collect_logs(controller, 1)).decode()
    assert "stdout F before" in text and "stdout F after" in text


async def test_an_attempt_that_ended_while_no_agent_ran_is_reported_with_its_exit_code(
    controller, make_config, start_agent, tmp_path: Path
) -> None:
    config = make_config((controller.address,))
    first = await start_agent(config)
    release = tmp_path / "release"
    await controller.send(start_attempt(token("job-ended"), ["sh", "-c", f"while [ ! -e {release} ]; do sleep 0.05; done; exit 3"]))
    await controller.wait_for(started("job-ended"))
    await first.stop(keep_jobs=True)

    release.touch()
    exit_file = config.state_dir / "attempts" / "job-ended" / "1" / "output.exit"
    await eventually(lambda: exit_file.exists() and exit_file.read_text() == "3\n", what="the gate to record the exit status")

    await start_agent(config)
    register = await controller.wait_for(register_reporting("job-ended", "Essential container in task exited"))
    held = held_in(register, "job-ended")
    assert held is not None and held.finished.exit_code == 3


async def test_the_timeout_counts_from_the_original_start_after_a_restart(
    controller, make_config, start_agent, tmp_path: Path
) -> None:
    config = make_config((controller.address,))
    first = await start_agent(config)
    await controller.send(start_attempt(token("job-slow"), ["sleep", "1000"], timeout_seconds=2))
    started_at = (await controller.wait_for(started("job-slow"))).attempt_started.started_at
    await first.stop(keep_jobs=True)
    await asyncio.sleep(1.0)

    await start_agent(config)
    report = (await controller.wait_for(finished("job-slow"), within=10)).attempt_finished
    assert report.status_reason == "Job attempt duration exceeded timeout"
    assert report.exit_code == 128 + signal.SIGTERM
    assert 2000 <= report.stopped_at - started_at < 3500


async def test_a_crashed_agent_leaves_its_attempts_running(controller, make_config, start_agent, tmp_path: Path) -> None:
    """run_agent ending any other way than through its stop event (here: cancelled) keeps them."""
    config = make_config((controller.address,))
    first = await start_agent(config)
    pid_file = tmp_path / "job.pid"
    await controller.send(start_attempt(token("job-crash"), ["sh", "-c", f"echo $$ > {pid_file}; exec sleep 1000"]))
    await controller.wait_for(started("job-crash"))
    pid = await read_pid(pid_file)

    first.task.cancel()
    await asyncio.gather(first.task, return_exceptions=True)
    assert alive(pid)

    await start_agent(config)  # stopped (and the job with it) at the end of the test
    await controller.wait_for(lambda m: (h := held_in(m, "job-crash")) is not None and not h.HasField("finished"))


@pytest.fixture
def leftover_process() -> Iterator[subprocess.Popen[bytes]]:
    """A process group as a crashed agent would have left it."""
    process = subprocess.Popen(["sleep", "1000"], start_new_session=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def orphan_record(tmp_path: Path, process: subprocess.Popen[bytes], **handle: object) -> dict[str, object]:
    return {
        "job_id": "job-orphan",
        "attempt": 2,
        "epoch": 1,
        "log_path": str(tmp_path / "orphan.log"),
        "started_at": 1234,
        "handle": {"runtime": "process", "pid": process.pid, "pgid": process.pid,
                   "start_time": psutil.Process(process.pid).create_time(), **handle},
        "result": None,
    }


async def test_an_attempt_gone_without_an_exit_status_is_lost(
    controller, make_config, start_agent, tmp_path: Path, leftover_process: subprocess.Popen[bytes]
) -> None:
    config = make_config((controller.address,))
    config.state_dir.mkdir(parents=True)
    record = orphan_record(tmp_path, leftover_process, exit_file=str(tmp_path / "orphan.exit"))
    os.killpg(leftover_process.pid, signal.SIGKILL)  # died with its gate: no exit status anywhere
    leftover_process.wait()
    (config.state_dir / STATE_FILE).write_text(json.dumps({"version": 1, "attempts": [record]}))

    await start_agent(config)

    register = await controller.wait_for(register_reporting("job-orphan", "Host lost: agent restarted"))
    (held,) = register.register.attempts
    assert (held.token.attempt, held.started_at) == (2, 1234)
    assert not held.finished.HasField("exit_code")


async def test_a_reattached_attempt_the_controller_calls_stale_is_killed(
    controller, make_config, start_agent, tmp_path: Path, leftover_process: subprocess.Popen[bytes]
) -> None:
    config = make_config((controller.address,))
    config.state_dir.mkdir(parents=True)
    (config.state_dir / STATE_FILE).write_text(
        json.dumps({"version": 1, "attempts": [orphan_record(tmp_path, leftover_process)]})
    )
    controller.stale_on_next_register = [token("job-orphan", attempt=2)]

    await start_agent(config)

    await eventually(lambda: leftover_process.poll() is not None, what="the stale leftover to be killed")
    assert controller.matching(finished("job-orphan")) == []


async def test_with_batches_a_batch_of_starts_runs_each_and_reports_come_in_order(
    controller, make_config, start_agent
) -> None:
    controller.batches = True
    await start_agent(make_config((controller.address,)))
    register = await controller.wait_for(lambda m: m.WhichOneof("body") == "register", what="Register")
    assert register.register.batches
    names = [f"job-batch{i}" for i in range(6)]
    await controller.send(agent_pb2.ControllerMessage(
        batch=agent_pb2.ControllerBatch(messages=[start_attempt(token(n), ["true"]) for n in names])
    ))  # fmt: skip
    for name in names:
        begun = await controller.wait_for(started(name), what=f"AttemptStarted of {name}")
        ended = await controller.wait_for(finished(name), what=f"AttemptFinished of {name}")
        assert ended.attempt_finished.exit_code == 0
        assert controller.received.index(begun) < controller.received.index(ended)


def test_the_outbox_batches_queued_control_messages_in_order_only_when_allowed() -> None:
    async def drain(batches: bool) -> list[agent_pb2.AgentMessage]:
        outbox = _Outbox()
        outbox.batches = batches
        for seq in (1, 2, 3):
            outbox.put_control(agent_pb2.AgentMessage(heartbeat=agent_pb2.Heartbeat(seq=seq)))
        return [await outbox.next() for _ in range(1 if batches else 3)]

    (one,) = asyncio.run(drain(True))
    assert [m.heartbeat.seq for m in one.batch.messages] == [1, 2, 3]
    singles = asyncio.run(drain(False))
    assert [m.WhichOneof("body") for m in singles] == ["heartbeat"] * 3
    assert [m.heartbeat.seq for m in singles] == [1, 2, 3]
