"""A tiny multi-node job for the tests: the nodes meet at the main node over TCP.

    python rendezvous.py PORT DIR [--hold]

Every node records `DIR/a<attempt>-n<index>.pid` ("pid create_time") and checks the
AWS_BATCH_* twins of the SHOAL_* node variables. The main node listens on
SHOAL_MAIN_NODE_ADDR:PORT; the others connect and send their index; the main node exits 0
once all N-1 arrived (writing `DIR/a<attempt>-arrived`). With --hold, every node then waits
for `DIR/release-<attempt>` before exiting 0, so a test can act while all nodes run, and
takes half a second to exit on SIGTERM (as a job that checkpoints would), so a retry that
started before the old nodes had really stopped would overlap them.

A node of attempt K > 1 first looks for live processes of earlier attempts (from their pid
files) and, if it finds any, writes them to `DIR/a<K>-n<index>.overlap` and exits 3: two
attempts of one job must never run at the same time.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

import psutil

TIMEOUT = 60.0


def live_earlier_attempts(directory: Path, attempt: int) -> list[str]:
    alive = []
    for path in directory.glob("a*-n*.pid"):
        if int(path.name[1:].split("-", 1)[0]) >= attempt:
            continue
        pid_text, created = path.read_text().split()
        try:
            proc = psutil.Process(int(pid_text))
            if abs(proc.create_time() - float(created)) < 0.01 and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(path.name)
        except psutil.Error:
            continue
    return alive


def _checkpoint_and_exit(signum: int, frame: object) -> None:
    time.sleep(0.5)
    sys.exit(143)


def main() -> int:
    port, directory = int(sys.argv[1]), Path(sys.argv[2])
    hold = "--hold" in sys.argv[3:]
    if hold:
        signal.signal(signal.SIGTERM, _checkpoint_and_exit)
    env = os.environ
    index, count = int(env["SHOAL_NODE_INDEX"]), int(env["SHOAL_NUM_NODES"])
    main_index, address = int(env["SHOAL_MAIN_NODE_INDEX"]), env["SHOAL_MAIN_NODE_ADDR"]
    attempt = int(env["SHOAL_JOB_ATTEMPT"])
    twins = {
        "AWS_BATCH_JOB_NODE_INDEX": str(index),
        "AWS_BATCH_JOB_NUM_NODES": str(count),
        "AWS_BATCH_JOB_MAIN_NODE_INDEX": str(main_index),
        "AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS": address,
    }
    for name, value in twins.items():
        if env.get(name) != value:
            print(f"node {index}: {name}={env.get(name)!r}, expected {value!r}", flush=True)
            return 4
    me = psutil.Process()
    pid_file = directory / f"a{attempt}-n{index}.pid"
    pid_file.write_text(f"{me.pid} {me.create_time()}")
    overlap = live_earlier_attempts(directory, attempt)
    if overlap:
        (directory / f"a{attempt}-n{index}.overlap").write_text("\n".join(overlap))
        print(f"node {index}: processes of an earlier attempt still run: {overlap}", flush=True)
        return 3
    deadline = time.monotonic() + TIMEOUT
    if index == main_index:
        with socket.create_server((address, port)) as server:
            server.settimeout(TIMEOUT)
            arrived: set[int] = set()
            while len(arrived) < count - 1:
                conn, _ = server.accept()
                with conn:
                    arrived.add(int(conn.recv(16).decode()))
        (directory / f"a{attempt}-arrived").write_text(" ".join(map(str, sorted(arrived))))
        print(f"main node {index}: nodes {sorted(arrived)} arrived at {address}:{port}", flush=True)
    else:
        while True:
            try:
                with socket.create_connection((address, port), timeout=2) as conn:
                    conn.sendall(str(index).encode())
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)  # the main node is running but may not listen yet
        print(f"node {index}: reached the main node at {address}:{port}", flush=True)
    release = directory / f"release-{attempt}"
    while hold and not release.exists():
        if time.monotonic() > deadline:
            return 5
        time.sleep(0.05)
    return 0


if __name__ == "__main__":
    sys.exit(main())
