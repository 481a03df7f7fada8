"""deploy/ansible run for real against this machine, then a job through the cluster it deployed.

Every inventory host is this machine (`ansible_connection: local`) with its own prefix under
tmp_path: a 3-member etcd cluster, a controller and two agents, on loopback ports, plaintext,
supervised by the roles' `shoal-service` (this host has no systemd; the test forces the
supervisor even where systemd runs, so it never installs units into /etc).

Install: the roles install shoal with pip into `shoal_venv`. To stay fast and offline, the test
creates that virtualenv itself (`--without-pip`), adds the test virtualenv's site-packages to it
with a .pth file (the dependencies and pip come from there) and makes the role run
`pip install --no-deps --no-build-isolation -e <this repo>`; the role's own "create the
virtualenv" step then finds it already there. Everything else is what production runs.
"""

from __future__ import annotations

import json
import os
import signal
import site
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from shoal import Client
from shoal.devcluster import find_etcd, free_port
from shoal.v1 import types_pb2
from tests.deploy.conftest import REPO, ansible_env, run, tool

pytestmark = [pytest.mark.integration, pytest.mark.deploy, pytest.mark.timeout(420)]

AGENTS = ("agent1", "agent2")


def make_venv(path: Path) -> None:
    import subprocess

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=60)
    purelib = next(Path(path, "lib").glob("python3*/site-packages"))
    (purelib / "zz_shoal_test_deps.pth").write_text(site.getsitepackages()[0] + "\n")
    pip = path / "bin" / "pip"
    pip.write_text('#!/bin/sh\nexec "$(dirname "$0")/python" -m pip "$@"\n')
    pip.chmod(0o755)


def inventory(tmp_path: Path) -> tuple[Path, dict]:
    hosts = tmp_path / "hosts"
    common = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "shoal_venv": str(tmp_path / "venv"),
        "shoal_install_source": str(REPO),
        "shoal_install_editable": True,
        "shoal_pip_extra_args": "--no-deps --no-build-isolation",
        "shoal_manage_packages": False,
        "shoal_create_user": False,
        "shoal_user": "root",
        "shoal_group": "root",
        "shoal_service_manager": "supervisor",
        "shoal_tls_enabled": False,
        "etcd_binary": find_etcd(),
    }
    etcd = {
        f"etcd{i}": {
            "shoal_prefix": str(hosts / f"etcd{i}"),
            "etcd_host": "127.0.0.1",
            "etcd_client_port": free_port(),
            "etcd_peer_port": free_port(),
        }
        for i in (1, 2, 3)
    }
    port, metrics = free_port(), free_port()
    controllers = {
        "ctl1": {
            "shoal_prefix": str(hosts / "ctl1"),
            "controller_host": "127.0.0.1",
            "controller_port": port,
            "controller_listen": f"127.0.0.1:{port}",
            "controller_metrics_port": metrics,
            "controller_metrics_listen": f"127.0.0.1:{metrics}",
        }
    }
    agents = {}
    for name in AGENTS:
        mport = free_port()
        agents[name] = {
            "shoal_prefix": str(hosts / name),
            "agent_vcpus": 2,
            "agent_memory_mib": 2048,
            "agent_reserve_memory_mib": 0,
            "agent_metrics_host": "127.0.0.1",
            "agent_metrics_port": mport,
            "agent_metrics_listen": f"127.0.0.1:{mport}",
        }
    data = {
        "all": {
            "vars": common,
            "children": {
                "etcd": {"hosts": etcd},
                "controllers": {"hosts": controllers},
                "agents": {"hosts": agents},
            },
        }
    }
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps(data, indent=2))
    return path, data


def our_processes(tmp_path: Path) -> list[tuple[int, str]]:
    """Processes whose command line mentions tmp_path (every daemon the playbooks started does)."""
    found = []
    marker = str(tmp_path)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline and "ansible" not in cmdline:
            found.append((int(entry.name), cmdline.strip()))
    return found


def playbook(tmp_path: Path, inv: Path, name: str, *extra: str, timeout: float = 240) -> None:
    result = run([tool("ansible-playbook"), "-i", str(inv), name, *extra], env=ansible_env(tmp_path), timeout=timeout)
    if result.returncode != 0:
        pytest.fail(f"ansible-playbook {name} failed ({result.returncode}):\n{result.stdout[-8000:]}\n{result.stderr[-3000:]}")


def http_get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.status, resp.read().decode()


def test_site_deploys_a_cluster_that_runs_jobs(tmp_path: Path) -> None:
    make_venv(tmp_path / "venv")
    inv, data = inventory(tmp_path)
    controllers = data["all"]["children"]["controllers"]["hosts"]
    agents = data["all"]["children"]["agents"]["hosts"]
    address = ",".join(f"127.0.0.1:{h['controller_port']}" for h in controllers.values())
    try:
        started = time.monotonic()
        playbook(tmp_path, inv, "site.yml")
        print(f"site.yml: {time.monotonic() - started:.1f}s")
        # The CLI the roles installed is the native front, handing over to the venv's Python.
        from shoal import native

        assert native.is_current(tmp_path / "venv" / "bin" / "shoal", str(tmp_path / "venv" / "bin" / "python"))

        with Client(address, timeout=30) as client:
            job = client.submit_job("deployed", command=["sh", "-c", "echo hello from ansible"], vcpus=0.5, memory_mib=64)
            final = client.wait([job.job_id], timeout=60)[job.job_id]
            assert final.status == types_pb2.JOB_STATUS_SUCCEEDED, final.status_reason
            assert b"hello from ansible" in b"".join(client.get_job_logs(job.job_id))
            nodes = {n.node_id: n for n in client.list_nodes()}
            assert set(AGENTS) <= set(nodes)

            ctl = next(iter(controllers.values()))
            assert http_get(f"http://127.0.0.1:{ctl['controller_metrics_port']}/healthz") == (200, "ok\n")
            _, text = http_get(f"http://127.0.0.1:{ctl['controller_metrics_port']}/metrics")
            assert 'shoal_jobs{queue="default",status="SUCCEEDED"} 1.0' in text

            # Rolling restart with work in flight: the drain lets the running job finish on its
            # node before that agent restarts, so it succeeds in its first attempt.
            slow = client.submit_job("slow", command=["sleep", "3"], vcpus=0.5, memory_mib=64)
            started = time.monotonic()
            playbook(tmp_path, inv, "playbooks/rolling-restart-agents.yml")
            print(f"rolling-restart-agents.yml: {time.monotonic() - started:.1f}s")
            final = client.wait([slow.job_id], timeout=60)[slow.job_id]
            assert final.status == types_pb2.JOB_STATUS_SUCCEEDED, final.status_reason
            assert len(final.attempts) == 1
            nodes = {n.node_id: n for n in client.list_nodes()}
            assert all(nodes[a].status == types_pb2.NODE_STATUS_READY for a in AGENTS)
            after = client.submit_job("after", command=["true"], vcpus=0.5, memory_mib=64)
            assert client.wait([after.job_id], timeout=60)[after.job_id].status == types_pb2.JOB_STATUS_SUCCEEDED
            for agent in agents.values():
                assert http_get(f"http://127.0.0.1:{agent['agent_metrics_port']}/healthz")[0] == 200

        started = time.monotonic()
        playbook(tmp_path, inv, "playbooks/teardown.yml")
        print(f"teardown.yml: {time.monotonic() - started:.1f}s")
        deadline = time.monotonic() + 15
        while our_processes(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert our_processes(tmp_path) == [], "\n".join(f"{pid}: {cmd}" for pid, cmd in our_processes(tmp_path))
        assert not list((tmp_path / "hosts").glob("*/run/*.pid"))
    finally:
        leftovers = our_processes(tmp_path)
        if leftovers:
            # Only what this test started: the supervisors' process groups, from their pid files.
            for pidfile in (tmp_path / "hosts").glob("*/run/*.pid"):
                try:
                    os.killpg(int(pidfile.read_text()), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
        for log in sorted((tmp_path / "hosts").glob("*/log/*.log")):
            print(f"----- {log.relative_to(tmp_path)} -----\n{log.read_text(errors='replace')[-3000:]}")
