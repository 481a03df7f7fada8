"""Reading an attempt's log file for ReadLogs: once, or tailing it until the attempt ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

CHUNK_BYTES = 64 * 1024
POLL_SECONDS = 0.1


async def read_log(
    path: Path,
    offset: int,
    *,
    follow: bool,
    running: Callable[[], bool],
    poll_seconds: float = POLL_SECONDS,
) -> AsyncIterator[bytes]:
    """Chunks (<= 64 KiB) of `path` from `offset`.

    Without `follow`, stops at the current end of the file. With it, keeps polling for new
    output while `running()` is true, and stops once the attempt ended and everything it wrote
    was yielded. Raises FileNotFoundError if there is no such file.
    """
    source = await asyncio.to_thread(open, path, "rb")
    with source:
        source.seek(offset)
        while True:
            # Sample "ended" before reading: whatever was written before the end is then read.
            ended = not follow or not running()
            data = source.read(CHUNK_BYTES)
            if data:
                yield data
                continue
            if ended:
                return
            await asyncio.sleep(poll_seconds)
