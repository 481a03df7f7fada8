"""Where an attempt's stdout and stderr go: pipes into its own log writer process.

The writer runs in a session of its own, so it outlives the agent (killed, crashed, restarted):
the job's output is still written while no agent runs, and a re-attaching agent waits for the
writer through the pid recorded in the attempt's handle.

See `agent.runtime.logwriter` for the format and the rotation. Runtimes call `open_output`
before spawning the job, hand the job the write ends, and close them in the agent right after.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil

from agent.runtime import logwriter

WRITER_SCRIPT = Path(logwriter.__file__).resolve()
# Defaults: 64 MiB per file, 3 rotated files kept: at most 256 MiB of logs per attempt.
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_KEEP = 3


@dataclass(frozen=True)
class LogLimits:
    """Size cap of one attempt's log: `max_bytes` per file, `keep` rotated files."""

    max_bytes: int = DEFAULT_MAX_BYTES
    keep: int = DEFAULT_KEEP


@dataclass
class Output:
    """A running log writer and the pipe ends the job writes to."""

    writer: subprocess.Popen[bytes]
    stdout: int
    stderr: int
    writer_start_time: float = 0.0
    """Creation time of the writer process (recorded in the attempt's handle)."""

    @property
    def handle_fields(self) -> dict[str, float | int]:
        """`AttemptHandle` fields that let a later agent wait for this writer."""
        return {"writer_pid": self.writer.pid, "writer_start_time": self.writer_start_time}

    def close_job_ends(self) -> None:
        for fd in (self.stdout, self.stderr):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.stdout = self.stderr = -1

    async def wait_writer(self) -> None:
        """Until the writer wrote everything (every holder of the pipes' write ends is gone)."""
        while self.writer.poll() is None:  # noqa: ASYNC110 - short-lived after the job ended
            await asyncio.sleep(0.02)


def open_output(log_path: Path, limits: LogLimits) -> Output:
    """Start a log writer for `log_path`; the caller owns the returned write ends.

    The log file exists when this returns (readers may open it at once).
    """
    os.close(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644))
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    try:
        # The writer finds its read ends through SHOAL_LOG_FDS (pass_fds keeps their numbers).
        writer = subprocess.Popen(
            [sys.executable, "-I", "-S", str(WRITER_SCRIPT), str(log_path), str(limits.max_bytes),
             str(limits.keep)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(out_r, err_r),
            env={"SHOAL_LOG_FDS": f"{out_r},{err_r}"},
            start_new_session=True,
        )
    except OSError:
        for fd in (out_r, out_w, err_r, err_w):
            os.close(fd)
        raise
    os.close(out_r)
    os.close(err_r)
    try:
        start_time = psutil.Process(writer.pid).create_time()
    except psutil.Error:
        start_time = 0.0
    return Output(writer=writer, stdout=out_w, stderr=err_w, writer_start_time=start_time)


def note(log_path: Path, text: str) -> None:
    """Append the agent's own line(s) to an attempt's log (stream "shoal")."""
    data = b"".join(logwriter.record(b"shoal", b"F", line.encode()) for line in text.splitlines() or [""])
    log_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
