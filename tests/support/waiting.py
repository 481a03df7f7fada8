"""Waiting helpers shared by the agent's unit, contract and integration tests.

`eventually` polls a condition on the event loop until a deadline (never a bare sleep standing
in for synchronisation); `alive` tells whether a pid runs (zombies count as gone).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import psutil


async def eventually(condition: Callable[[], bool], within: float = 15.0, what: str = "condition") -> None:
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
