"""Reading an attempt's log for ReadLogs: once, or tailing it until the attempt ends.

An attempt's log is written by its log writer (`agent.runtime.logwriter`: one timestamped
record per line) and rotated: `output.log` is the newest part, `output.log.<offset>` the older
ones still kept. Offsets in ReadLogs count bytes of the attempt's whole output, so a reader that
resumes at an offset continues where it was, across rotations. Output dropped by the size cap
is skipped (the reader continues with the oldest part still kept).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from agent.runtime.logwriter import current_start, rotated_segments

CHUNK_BYTES = 64 * 1024
POLL_SECONDS = 0.1


def segments(path: Path) -> list[tuple[int, Path]]:
    """(start offset, file) of every part of the log, oldest first, the current one last."""
    rotated = sorted(rotated_segments(str(path)))
    parts = [(start, Path(name)) for start, name in rotated]
    parts.append((current_start(str(path)), path))
    return parts


def _open_at(path: Path, offset: int) -> tuple[int, object] | None:
    """Open the part holding `offset` (or the oldest later one); (its start, file)."""
    parts = segments(path)
    chosen = None
    for start, part in parts:
        if start <= offset:
            chosen = (start, part)
    if chosen is None:  # the offset's part was dropped by the size cap
        chosen = parts[0]
    start, part = chosen
    try:
        handle = open(part, "rb")  # noqa: SIM115 - closed by the caller
    except FileNotFoundError:
        if part != path:
            return None  # rotated away between listing and opening: list again
        raise
    handle.seek(max(offset - start, 0))
    return start, handle


async def read_log(
    path: Path,
    offset: int,
    *,
    follow: bool,
    running: Callable[[], bool],
    poll_seconds: float = POLL_SECONDS,
) -> AsyncIterator[bytes]:
    """Chunks (<= 64 KiB) of the attempt's log from byte `offset` of its whole output.

    Without `follow`, stops at the current end. With it, keeps polling for new output while
    `running()` is true, and stops once the attempt ended and everything written was yielded.
    Raises FileNotFoundError if there is no log at all.
    """
    if not await asyncio.to_thread(path.exists) and not rotated_segments(str(path)):
        raise FileNotFoundError(path)
    position = offset
    opened = None
    while opened is None:
        opened = await asyncio.to_thread(_open_at, path, position)
    start, source = opened
    try:
        position = start + source.tell()  # type: ignore[attr-defined]
        while True:
            # Sample "ended" before reading: whatever was written before the end is then read.
            ended = not follow or not running()
            data = source.read(CHUNK_BYTES)  # type: ignore[attr-defined]
            if data:
                position += len(data)
                yield data
                continue
            # At the end of this part: a newer part means it was rotated; continue there.
            size = os.fstat(source.fileno()).st_size  # type: ignore[attr-defined]
            newer = [s for s, _ in segments(path) if s > start]
            if newer and start + size <= position:
                source.close()  # type: ignore[attr-defined]
                opened = None
                while opened is None:
                    opened = await asyncio.to_thread(_open_at, path, position)
                start, source = opened
                position = start + source.tell()  # type: ignore[attr-defined]
                continue
            if ended:
                return
            await asyncio.sleep(poll_seconds)
    finally:
        source.close()  # type: ignore[attr-defined]
