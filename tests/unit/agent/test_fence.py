"""The host's local fence (agent/runtime/fence.py): its pure decisions (`Book`, table-driven, the
clock an argument), then the real thing: a writer process that stops a dead agent's attempt.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest

from agent.runtime import fence
from agent.runtime.base import AttemptHandle
from agent.runtime.fence import Book, Target
from agent.runtime.output import Fenced, claim, disconnect_log_writers
from agent.runtime.reattach import fence_target
from tests.support.waiting import alive, eventually

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

REPO = Path(__file__).resolve().parents[3]
AGENT, NEXT_AGENT = 1, 2
W, G = 0.5, 0.25
JOB = Target(kind=fence.PROCESS, pid=100, pid_start=1.0, pgid=100)


def book_with(*paths: str, window: float = W, grace: float = G) -> Book:
    """A book where AGENT owns `paths` (opened and watched)."""
    book = Book()
    book.hello(AGENT, window, grace)
    for path in paths:
        assert book.opened(AGENT, path) == ""
        assert book.watch(AGENT, path, JOB)
    return book


def kinds(book: Book, now: float) -> list[tuple[str, str]]:
    return [(a.kind, a.path) for a in book.due(now)]


# ---- the pure decisions -------------------------------------------------------------------------


def test_nothing_happens_while_the_owner_is_connected() -> None:
    book = book_with("a")
    assert kinds(book, 1e9) == [] and book.next_deadline() is None and not book.busy()


def test_a_dead_owners_attempt_is_terminated_after_the_window_then_killed_after_the_grace() -> None:
    book = book_with("a")
    book.gone(AGENT, now=10.0)
    assert book.busy() and book.next_deadline() == 10.0 + W
    assert kinds(book, 10.0 + W - 0.01) == []
    assert kinds(book, 10.0 + W) == [("terminate", "a")]
    book.terminated("a", now=10.6)
    assert book.next_deadline() == pytest.approx(10.6 + G)
    assert kinds(book, 10.6 + G - 0.01) == []
    (kill,) = book.due(10.6 + G)
    assert (kill.kind, kill.target) == ("kill", JOB)
    book.stopped("a")
    assert kinds(book, 1e9) == [] and not book.busy()


def test_every_attempt_of_the_dead_owner_is_stopped_together() -> None:
    paths = [f"job-{i}" for i in range(200)]
    book = book_with(*paths)
    book.gone(AGENT, now=0.0)
    assert sorted(p for _, p in kinds(book, W)) == sorted(paths)


def test_a_handover_replaces_the_window() -> None:
    book = book_with("a")
    book.handover(AGENT, 5.0)
    book.gone(AGENT, now=0.0)
    assert kinds(book, W) == []
    assert kinds(book, 5.0) == [("terminate", "a")]


def test_a_claim_within_the_window_saves_the_attempt_and_the_claimer_becomes_its_owner() -> None:
    book = book_with("a")
    book.gone(AGENT, now=0.0)
    book.hello(NEXT_AGENT, 2.0, 0.0)
    assert book.watch(NEXT_AGENT, "a", Target(kind=fence.PROCESS, pid=100, pid_start=1.0, pgid=100))
    assert kinds(book, 1e9) == [] and not book.busy()
    book.gone(NEXT_AGENT, now=100.0)  # the claimer's own window and grace apply from now on
    assert kinds(book, 101.9) == [] and kinds(book, 102.0) == [("terminate", "a")]
    book.terminated("a", now=102.0)
    assert kinds(book, 102.0) == [("kill", "a")]


@pytest.mark.parametrize("state", ["terminating", "stopped"])
def test_a_claim_after_the_fence_started_stopping_is_refused(state: str) -> None:
    book = book_with("a")
    book.gone(AGENT, now=0.0)
    book.terminated("a", now=W)
    if state == "stopped":
        book.stopped("a")
    assert not book.watch(NEXT_AGENT, "a", JOB)
    assert book.watched["a"].owner is None


def test_a_claim_of_an_attempt_it_never_saw_is_taken_unless_a_fence_stopped_it_before() -> None:
    # A new writer (the old one died) adopts what the agent claims; a marker on disk of an
    # earlier writer's stop is as good as its memory.
    book = Book()
    assert book.watch(NEXT_AGENT, "new", JOB)
    book.gone(NEXT_AGENT, now=0.0)
    assert kinds(book, W) == [("terminate", "new")]
    assert not Book().watch(NEXT_AGENT, "old", JOB, fenced_before=True)


def test_a_new_run_of_an_attempt_waits_until_the_old_run_was_stopped() -> None:
    book = book_with("a")
    book.gone(AGENT, now=0.0)
    assert book.opened(NEXT_AGENT, "a")  # orphaned: refused
    book.terminated("a", now=W)
    assert book.opened(NEXT_AGENT, "a")  # being stopped: refused
    book.stopped("a")
    assert book.opened(NEXT_AGENT, "a") == ""
    assert book.watched["a"].owner == NEXT_AGENT


def test_a_released_attempt_is_forgotten_and_never_stopped() -> None:
    book = book_with("a", "b")
    book.release("a")
    book.gone(AGENT, now=0.0)
    assert kinds(book, W) == [("terminate", "b")]


def test_an_attempt_whose_target_is_not_known_yet_is_still_orphaned() -> None:
    # The agent died between handing over the pipes and telling what runs: the shell then finds
    # nothing alive (the gate never got its go) and stops nothing.
    book = Book()
    assert book.opened(AGENT, "a") == ""
    book.gone(AGENT, now=0.0)
    (action,) = book.due(W)
    assert action.target == Target() and not fence.target_alive(action.target)


def test_a_later_watch_keeps_what_an_earlier_one_said() -> None:
    started = Target(kind=fence.CONTAINER, pgid=7, binary="podman", container_id="c1")
    running = Target(kind=fence.CONTAINER, pid=42, pid_start=3.0)
    assert started.merged(running) == Target(kind=fence.CONTAINER, pid=42, pid_start=3.0, pgid=7,
                                             binary="podman", container_id="c1")
    claimed = Target(kind=fence.CONTAINER, pgid=7, binary="podman", container_id="c1")
    assert started.merged(running).merged(claimed).pid == 42


def test_negative_settings_are_taken_as_zero() -> None:
    book = Book()
    book.hello(AGENT, -1.0, -1.0)
    assert (book.owners[AGENT].window, book.owners[AGENT].grace) == (0.0, 0.0)


def test_fence_targets_of_reattached_handles() -> None:
    process = AttemptHandle(runtime="process", pid=5, pgid=5, start_time=2.5)
    assert fence_target(process) == Target(kind=fence.PROCESS, pid=5, pid_start=2.5, pgid=5)
    container = AttemptHandle(runtime="podman", pid=9, pgid=9, start_time=1.0, container_id="abc")
    target = fence_target(container)
    assert target is not None and (target.kind, target.container_id, target.pid) == (fence.CONTAINER, "abc", 0)
    assert fence_target(AttemptHandle(runtime="fake", pid=1, pgid=1, start_time=0.0)) is None


def test_a_process_is_known_by_its_pid_and_creation_time() -> None:
    start = fence.proc_start_time(os.getpid())
    assert start is not None
    assert fence.same_process(os.getpid(), start)
    assert not fence.same_process(os.getpid(), start - 100)  # a recycled pid is not ours
    assert fence.group_alive(os.getpgid(0), start - 1000)


# ---- the real fence -----------------------------------------------------------------------------

# Plays an agent: starts one attempt (fence window and grace from argv), prints its handle, waits
# to be killed.
AGENT_SCRIPT = """
import asyncio, json, sys
from pathlib import Path
from agent.runtime.base import AttemptSpec
from agent.runtime.output import FenceSettings, configure_fence, renew_lease
from agent.runtime.process import ProcessRuntime

async def main():
    configure_fence(FenceSettings(window=float(sys.argv[4]), grace=0.2))
    runtime = ProcessRuntime(cgroups=False)
    spec = AttemptSpec(job_id="job-f", attempt=1, command=("sh", "-c", sys.argv[1]), work_dir=Path(sys.argv[3]))
    handle = await runtime.start(spec, Path(sys.argv[2]))
    lease = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
    if lease:  # armed before the test hears of the attempt
        renew_lease(lease, 0.2)
    print(json.dumps(handle.to_dict()), flush=True)
    while True:  # renewed as if heard from a controller every 0.1 s
        if lease:
            renew_lease(lease, 0.2)
        await asyncio.sleep(0.1)

asyncio.run(main())
"""


@pytest.fixture(autouse=True)
async def disconnected() -> AsyncIterator[None]:
    yield
    await disconnect_log_writers()


async def start_agent_with_attempt(
    tmp_path: Path, window: float, lease: float = 0.0
) -> tuple[subprocess.Popen[str], AttemptHandle, Path]:
    attempt = tmp_path / "state" / "attempts" / "job-f" / "1"
    (attempt / "work").mkdir(parents=True)
    log = attempt / "output.log"
    agent = subprocess.Popen(  # noqa: ASYNC220 - a quick fork+exec
        [sys.executable, "-c", AGENT_SCRIPT, "trap '' TERM; while true; do sleep 0.05; done", str(log),
         str(attempt / "work"), str(window), str(lease)],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert agent.stdout is not None
    line = await asyncio.to_thread(agent.stdout.readline)
    return agent, AttemptHandle.from_dict(json.loads(line)), log


async def test_the_fence_stops_a_killed_agents_attempt_and_records_it(tmp_path: Path) -> None:
    agent, handle, log = await start_agent_with_attempt(tmp_path, window=0.3)
    try:
        agent.send_signal(signal.SIGKILL)
        agent.wait()
        # The job ignores SIGTERM: only the SIGKILL after the fence's grace ends it.
        await eventually(lambda: not alive(handle.pid), what="the fence stopping the attempt")
        assert fence.read_fenced(str(log)) == fence.REASON_AGENT_GONE
        with pytest.raises(Fenced):  # a new agent is too late now
            await claim(log, fence_target(handle))  # type: ignore[arg-type]
    finally:
        agent.kill()
        if alive(handle.pid):
            os.killpg(handle.pgid, signal.SIGKILL)


async def test_a_claim_within_the_window_takes_the_attempt_over(tmp_path: Path) -> None:
    agent, handle, log = await start_agent_with_attempt(tmp_path, window=30)
    try:
        agent.send_signal(signal.SIGKILL)
        agent.wait()
        await claim(log, fence_target(handle))  # type: ignore[arg-type]  # no Fenced: in time
        assert alive(handle.pid) and not fence.read_fenced(str(log))
        # Now this process owns it: when it lets go, the fence stops it after this process's
        # window (the default 0.5 s).
        await disconnect_log_writers()
        await eventually(lambda: not alive(handle.pid), what="the fence stopping the released attempt")
        assert fence.read_fenced(str(log)) == fence.REASON_AGENT_GONE
    finally:
        agent.kill()
        if alive(handle.pid):
            os.killpg(handle.pgid, signal.SIGKILL)


async def test_when_the_writer_dies_a_new_one_fences_the_running_attempts(tmp_path: Path) -> None:
    from agent.runtime.base import AttemptSpec
    from agent.runtime.output import refenced
    from agent.runtime.process import ProcessRuntime

    attempt = tmp_path / "state" / "attempts" / "job-w" / "1"
    (attempt / "work").mkdir(parents=True)
    log = attempt / "output.log"
    runtime = ProcessRuntime(cgroups=False)
    spec = AttemptSpec(job_id="job-w", attempt=1, command=("sh", "-c", "while true; do sleep 0.05; done"),
                       work_dir=attempt / "work")
    handle = await runtime.start(spec, log)
    state = str(tmp_path / "state")

    def new_writer() -> bool:
        for proc in psutil.process_iter(["cmdline"]):
            cmdline = proc.info["cmdline"] or []
            if proc.pid != handle.writer_pid and cmdline[-2:] == ["--serve", state]:
                return True
        return False

    try:
        os.kill(handle.writer_pid, signal.SIGKILL)  # the attempt loses its pipes and its fence
        await eventually(new_writer, what="a new writer")
        await refenced()  # it was told what the dead one watched
        assert alive(handle.pid)
        # This process "dies" (lets go of its writer): the new writer stops the attempt.
        await disconnect_log_writers()
        await eventually(lambda: not alive(handle.pid), what="the new writer stopping the attempt")
        assert fence.read_fenced(str(log)) == fence.REASON_AGENT_GONE
    finally:
        if alive(handle.pid):
            os.killpg(handle.pgid, signal.SIGKILL)


# ---- the lease: an agent alive but stuck -----------------------------------------------------


def test_an_agent_that_stops_renewing_its_lease_has_its_attempts_stopped_at_once() -> None:
    book = book_with("a")
    assert book.next_wake() is None  # no lease before the first renewal
    book.renew(AGENT, now=0.0, seconds=6.0, grace=2.0)
    assert book.next_wake() == 6.0
    book.renew(AGENT, now=5.0, seconds=6.0, grace=2.0)  # heard from a controller again
    assert kinds(book, 10.9) == []
    (stop,) = book.due(11.0)  # silent for the whole lease: stuck (SIGSTOP, hung)
    assert (stop.kind, stop.reason, stop.grace) == ("terminate", fence.REASON_AGENT_STUCK, 2.0)
    book.terminated("a", now=11.0)
    assert kinds(book, 13.0) == [("kill", "a")]
    book.renew(AGENT, now=14.0, seconds=6.0, grace=2.0)  # waking up saves nothing already stopping
    assert not book.watch(NEXT_AGENT, "a", JOB)


def test_a_lease_wakes_the_fence_only_while_its_agent_owns_attempts() -> None:
    book = book_with("a")
    book.renew(AGENT, now=0.0, seconds=6.0, grace=2.0)
    book.release("a")
    assert book.next_wake() is None and kinds(book, 100.0) == []


async def test_a_stuck_agent_whose_lease_ran_out_has_its_attempt_stopped(tmp_path: Path) -> None:
    agent, handle, log = await start_agent_with_attempt(tmp_path, window=30, lease=1.0)
    try:
        agent.send_signal(signal.SIGSTOP)  # alive, connected, silent
        await eventually(lambda: not alive(handle.pid), what="the fence stopping the stuck agent's attempt")
        assert fence.read_fenced(str(log)) == fence.REASON_AGENT_STUCK
    finally:
        agent.kill()
        agent.wait()
        if alive(handle.pid):
            os.killpg(handle.pgid, signal.SIGKILL)
