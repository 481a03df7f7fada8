"""Where the agent keeps its state, and the node id it keeps there."""

from __future__ import annotations

import fcntl
import os
import secrets
from pathlib import Path
from typing import IO

from shoal.errors import FailedPrecondition

NODE_ID_FILE = "node-id"
LOCK_FILE = "agent.lock"


def default_state_dir() -> Path:
    """/var/lib/shoal/agent for root, else $XDG_STATE_HOME/shoal/agent (~/.local/state/...)."""
    if os.geteuid() == 0:
        return Path("/var/lib/shoal/agent")
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "state"
    return base / "shoal" / "agent"


def load_or_create_node_id(state_dir: Path, hostname: str) -> str:
    """The node id persisted in `<state_dir>/node-id`, created once as `<hostname>-<6 hex>`."""
    path = state_dir / NODE_ID_FILE
    try:
        existing = path.read_text().strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing
    node_id = f"{hostname}-{secrets.token_hex(3)}"
    tmp = path.with_name(f".{NODE_ID_FILE}.tmp")
    tmp.write_text(node_id + "\n")
    os.replace(tmp, path)
    return node_id


def lock_state_dir(state_dir: Path) -> IO[str]:
    """Hold an exclusive lock on the state directory for this process's lifetime.

    Two agents sharing one state directory would kill each other's attempts on start.
    Keep the returned file open; closing it releases the lock.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    handle = open(state_dir / LOCK_FILE, "a+")  # noqa: SIM115 - held open on purpose
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise FailedPrecondition(f"another agent is using the state directory {state_dir}") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle
