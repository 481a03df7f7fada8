"""MANAGED compute environments: the scaling loop and the provisioners it drives.

The leader runs one `ScalingLoop` per term next to its `LeaderLoop`. About once a second (and
when the view changes) it works out, for every MANAGED environment, how many nodes the waiting
and running work needs (`controller.domain.scaling.desired_nodes`, pure), records the result in
the environment's `desired_vcpus` (only when it changes), and asks the environment's
provisioner for that many nodes. Scale-in is two-step and never touches a busy node: an idle
node (idle for at least `--scale-in-idle` seconds) is drained through the leader, and only once
it is DRAINED is it handed to the provisioner for removal; when its agent is gone the node's
record is deleted.

Provisioners (the seam): `scale(env, desired, remove)` must bring the environment to `desired`
nodes, removing exactly the nodes in `remove` (already drained and idle) and never any other
node; it may be called again with the same arguments and must then do nothing new.

- `LocalProvisioner` starts and stops agent processes on this host (`shoal up`, tests). They are
  recorded in a state file under the controller's data dir, so a replica that becomes leader
  later (on the same host, same data dir) adopts the agents an earlier leader started. They are
  stopped when the controller process exits, and on Linux they also get SIGTERM if it dies.
- `CommandProvisioner` runs an operator's command (an Ansible playbook, a cloud CLI) with
  SHOAL_CE_NAME, SHOAL_DESIRED_NODES, SHOAL_NODES_TO_REMOVE (comma-separated node ids) and
  SHOAL_CONTROLLER set; it is re-run when the request changes, and after a failure with backoff.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import fcntl
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import psutil

from controller.config import ControllerConfig
from controller.domain import jobs as J
from controller.domain import multinode
from controller.domain import scaling as S
from controller.scheduler import QueueView, Resources
from controller.services.view import ClusterView
from controller.store.etcd import Compare, Op
from shoal import errors, log
from shoal.v1 import types_pb2

if TYPE_CHECKING:
    from controller.services.leader import LeaderLoop

logger = log.get("controller.scaling")

SCALE_IN_REASON = "Scale-in: idle node of a managed environment"
"""status_reason of nodes the scaling loop drained (only those are ever undrained by it)."""

_TICK_SECONDS = 1.0
_MIN_TICK_SECONDS = 0.3
# A node handed to the provisioner whose agent is still there after this long is reconsidered.
_REMOVAL_TIMEOUT_SECONDS = 300.0


class Provisioner(Protocol):
    async def scale(self, env: types_pb2.ComputeEnvironment, desired: int, remove: list[str]) -> None:
        """Bring `env` to `desired` nodes, removing exactly the (drained, idle) nodes in `remove`."""
        ...


# ---------------------------------------------------------------------------------------------
# The local provisioner: agent processes on this host.

# Runs `argv[2:]` with a parent-death signal, so an agent never outlives a controller that was
# killed with SIGKILL (PR_SET_PDEATHSIG survives execve; 1 = PR_SET_PDEATHSIG).
_WITH_PARENT_DEATH_SIGNAL = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)\n"
    "if os.getppid() != int(sys.argv[1]): os._exit(0)\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


@dataclass
class _Agent:
    env: str
    node_id: str
    pid: int
    create_time: float
    owner: int
    """pid of the controller process that manages it (started or adopted it)."""
    stopping_since: float = 0.0
    """Wall time SIGTERM was sent (0 = running)."""
    started_at: float = 0.0


class LocalProvisioner:
    """Starts `python -m agent` processes, each in its own process group, and stops them.

    One per controller process and data dir (`LocalProvisioner.shared`), because the processes
    outlive leadership terms: a replica that loses and regains leadership keeps its agents.
    """

    _instances: dict[Path, LocalProvisioner] = {}

    def __init__(
        self, data_dir: Path, *, controller: str = "", python: str = sys.executable, stop_grace: float = 10.0
    ) -> None:
        self.data_dir = data_dir / "local-provisioner"
        self.controller = controller
        """Address new agents are given (the leader's advertised address)."""
        self.state_file = self.data_dir / "agents.json"
        self.lock_file = self.data_dir / "agents.lock"
        self.python = python
        self.stop_grace = stop_grace
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        # env -> monotonic time before which no agent is started (crash-loop backoff).
        self._backoff_until: dict[str, float] = {}
        self._backoff: dict[str, float] = {}
        self._too_big: set[str] = set()

    @classmethod
    def shared(cls, data_dir: str | Path, *, controller: str) -> LocalProvisioner:
        """This process's provisioner for `data_dir`; its agents are stopped at process exit."""
        path = Path(data_dir).expanduser().absolute()
        instance = cls._instances.get(path)
        if instance is None:
            instance = cls._instances[path] = cls(path)
            if len(cls._instances) == 1:
                atexit.register(cls.stop_all_instances)
        instance.controller = controller
        return instance

    @classmethod
    def stop_all_instances(cls) -> None:
        for instance in list(cls._instances.values()):
            with contextlib.suppress(Exception):
                instance.stop_all()

    # ---- the state file -------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict]:
        """The state file, read and written under an exclusive lock (replicas may share it)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.lock_file, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                before = self.state_file.read_text() if self.state_file.exists() else ""
                state = json.loads(before) if before else {}
            except (OSError, ValueError):
                before, state = "", {}
            state.setdefault("agents", [])
            state.setdefault("next", {})
            yield state
            after = json.dumps(state, indent=1, sort_keys=True)
            if after != before:  # called every tick: write only what changed
                tmp = self.state_file.with_suffix(".tmp")
                tmp.write_text(after)
                tmp.replace(self.state_file)

    def _alive(self, agent: _Agent) -> bool:
        child = self._children.get(agent.pid)
        if child is not None:
            if child.poll() is not None:
                del self._children[agent.pid]
                return False
            return True
        try:
            proc = psutil.Process(agent.pid)
            return abs(proc.create_time() - agent.create_time) < 0.5 and proc.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    def _load(self, state: dict) -> list[_Agent]:
        agents = [_Agent(**a) for a in state["agents"]]
        return [a for a in agents if self._alive(a)]

    @staticmethod
    def _store(state: dict, agents: list[_Agent]) -> None:
        state["agents"] = [a.__dict__ for a in agents]

    # ---- scaling --------------------------------------------------------------------------

    def running(self, env_name: str) -> list[str]:
        """Node ids of the agents of `env_name` that are running (not being stopped)."""
        with self._locked() as state:
            agents = self._load(state)
            self._store(state, agents)
        return sorted(a.node_id for a in agents if a.env == env_name and not a.stopping_since)

    async def scale(self, env: types_pb2.ComputeEnvironment, desired: int, remove: list[str]) -> None:
        self.reconcile(env, desired, remove)

    def reconcile(self, env: types_pb2.ComputeEnvironment, desired: int, remove: list[str]) -> None:
        """`scale`, synchronously (it only signals and spawns processes, it never waits)."""
        name = env.compute_environment_name
        host_cpus = os.cpu_count() or 1
        if env.provisioner.node_vcpus > host_cpus:
            if name not in self._too_big:
                self._too_big.add(name)
                logger.error(
                    "local_provisioner.node_too_big",
                    env=name,
                    error=f"node_vcpus {env.provisioner.node_vcpus:g} is more than this host has ({host_cpus} CPUs)",
                )
            desired = 0
        now = time.time()
        me = os.getpid()
        with self._locked() as state:
            before = [_Agent(**a) for a in state["agents"]]
            agents = self._load(state)
            alive_pids = {a.pid for a in agents}
            for gone in before:
                if gone.pid not in alive_pids and not gone.stopping_since:
                    self._crashed(gone, now)
            for agent in agents:
                if agent.owner != me:
                    agent.owner = me  # adopted from an earlier leader on this host
                if agent.env != name:
                    continue
                if agent.node_id in remove and not agent.stopping_since:
                    logger.info("local_provisioner.stop", env=name, node_id=agent.node_id, pid=agent.pid)
                    _killpg(agent.pid, signal.SIGTERM)
                    agent.stopping_since = now
                elif agent.stopping_since and now - agent.stopping_since > self.stop_grace:
                    _killpg(agent.pid, signal.SIGKILL)
            running = sum(1 for a in agents if a.env == name and not a.stopping_since)
            if running < desired and time.monotonic() >= self._backoff_until.get(name, 0.0):
                for _ in range(desired - running):
                    n = int(state["next"].get(name, 0)) + 1
                    state["next"][name] = n
                    agents.append(self._start(env, f"{name}-auto-{n}"))
            self._store(state, agents)

    def _crashed(self, agent: _Agent, now: float) -> None:
        """An agent we did not stop exited: log it, and back off if it died young."""
        log_path = self.data_dir / f"{agent.node_id}.log"
        tail = ""
        with contextlib.suppress(OSError):
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-5:])
        logger.warning(
            "local_provisioner.agent_exited",
            env=agent.env,
            node_id=agent.node_id,
            log=str(log_path),
            tail=tail,
        )
        if now - agent.started_at < 10:
            delay = min(self._backoff.get(agent.env, 0.5) * 2, 30.0)
            self._backoff[agent.env] = delay
            self._backoff_until[agent.env] = time.monotonic() + delay
        else:
            self._backoff.pop(agent.env, None)

    def _start(self, env: types_pb2.ComputeEnvironment, node_id: str) -> _Agent:
        p = env.provisioner
        agent_argv = [
            self.python, "-m", "agent",
            "--controller", self.controller,
            "--compute-env", env.compute_environment_name,
            "--node-id", node_id,
            "--state-dir", str(self.data_dir / node_id),
            "--vcpus", f"{p.node_vcpus:g}",
            "--memory-mib", str(p.node_memory_mib),
        ]  # fmt: skip
        argv = agent_argv
        if sys.platform.startswith("linux"):
            argv = [self.python, "-c", _WITH_PARENT_DEATH_SIGNAL, str(os.getpid()), *agent_argv]
        log_path = self.data_dir / f"{node_id}.log"
        with open(log_path, "ab") as out:
            child = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._children[child.pid] = child
        try:
            create_time = psutil.Process(child.pid).create_time()
        except psutil.Error:
            create_time = 0.0
        logger.info(
            "local_provisioner.start",
            env=env.compute_environment_name,
            node_id=node_id,
            pid=child.pid,
            log=str(log_path),
        )
        return _Agent(
            env.compute_environment_name, node_id, child.pid, create_time, os.getpid(), 0.0, time.time()
        )

    def stop_all(self, timeout: float | None = None) -> None:
        """Stop every agent this process manages: SIGTERM, wait, SIGKILL (controller exit)."""
        timeout = self.stop_grace if timeout is None else timeout
        me = os.getpid()
        with self._locked() as state:
            agents = self._load(state)
            mine = [a for a in agents if a.owner == me]
            for agent in mine:
                _killpg(agent.pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and any(self._alive(a) for a in mine):
                time.sleep(0.05)
            for agent in mine:
                _killpg(agent.pid, signal.SIGKILL)
            for child in list(self._children.values()):
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(2)
            self._children.clear()
            self._store(state, [a for a in agents if a.owner != me])
        if mine:
            logger.info("local_provisioner.stopped_all", agents=len(mine))


def _killpg(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


# ---------------------------------------------------------------------------------------------
# The command provisioner: an operator's script.


class CommandProvisioner:
    """Runs `command` with the desired node count in its environment.

    Re-run only when (desired, remove) changes, or after a failure (backoff 2 s, doubling, up
    to 5 min). The command runs in its own process group, killed when it exceeds `timeout`.
    """

    def __init__(self, command: list[str], *, controller: str, timeout: float = 900.0) -> None:
        self.command = list(command)
        self.controller = controller
        self.timeout = timeout
        self._done: tuple[int, tuple[str, ...]] | None = None
        self._failures = 0
        self._retry_at = 0.0

    async def scale(self, env: types_pb2.ComputeEnvironment, desired: int, remove: list[str]) -> None:
        request = (desired, tuple(sorted(remove)))
        if request == self._done:
            return
        if self._failures and time.monotonic() < self._retry_at:
            return
        name = env.compute_environment_name
        child_env = dict(os.environ)
        child_env.update(
            SHOAL_CE_NAME=name,
            SHOAL_DESIRED_NODES=str(desired),
            SHOAL_NODES_TO_REMOVE=",".join(request[1]),
            SHOAL_CONTROLLER=self.controller,
            SHOAL_NODE_VCPUS=f"{env.provisioner.node_vcpus:g}",
            SHOAL_NODE_MEMORY_MIB=str(env.provisioner.node_memory_mib),
        )
        started = time.monotonic()
        logger.info(
            "command_provisioner.run",
            env=name,
            desired=desired,
            remove=",".join(request[1]),
            command=self.command[0],
        )
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=child_env,
                start_new_session=True,
            )
        except OSError as err:
            self._failed(name, f"cannot run {self.command[0]!r}: {err}", None, "")
            return
        try:
            output, _ = await asyncio.wait_for(proc.communicate(), self.timeout)
        except (TimeoutError, asyncio.CancelledError) as err:
            _killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), 5)
            if isinstance(err, asyncio.CancelledError):
                raise
            self._failed(name, f"timed out after {self.timeout:g}s", None, "")
            return
        text = output.decode(errors="replace")
        if proc.returncode != 0:
            self._failed(name, "command failed", proc.returncode, text)
            return
        self._done = request
        self._failures = 0
        logger.info(
            "command_provisioner.done",
            env=name,
            seconds=round(time.monotonic() - started, 1),
            output=_tail(text),
        )

    def _failed(self, env: str, what: str, code: int | None, output: str) -> None:
        self._failures += 1
        delay = min(2.0 * 2 ** (self._failures - 1), 300.0)
        self._retry_at = time.monotonic() + delay
        logger.warning(
            "command_provisioner.failed",
            env=env,
            error=what,
            exit_code=code,
            retry_in=delay,
            output=_tail(output),
        )


def _tail(text: str, limit: int = 4000) -> str:
    return text if len(text) <= limit else "..." + text[-limit:]


# ---------------------------------------------------------------------------------------------
# The scaling loop.


@dataclass
class _EnvStatus:
    desired: int
    up: int
    needed: int
    max_nodes: int
    max_vcpus: int
    waiting: int


class ScalingLoop:
    """Sizes every MANAGED environment while this replica leads (cancel `run` to stop it)."""

    def __init__(
        self,
        *,
        leader: LeaderLoop,
        view: ClusterView,
        config: ControllerConfig,
        mono: Callable[[], float] = time.monotonic,
    ) -> None:
        self.leader = leader
        self.view = view
        self.config = config
        self._mono = mono
        self._wake = asyncio.Event()
        self._idle_since: dict[str, float] = {}
        # node id -> when it was handed to the provisioner for removal.
        self._removing: dict[str, float] = {}
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._commands: dict[tuple[str, tuple[str, ...]], CommandProvisioner] = {}
        self._status: dict[str, _EnvStatus] = {}

    # ---- for `shoal why` ------------------------------------------------------------------

    def status(self, env_name: str) -> str | None:
        """What scaling is doing for `env_name`, for a job waiting on it; None if nothing."""
        s = self._status.get(env_name)
        if s is None or not s.waiting:
            return None
        if s.up < s.desired:
            return (
                f"managed environment {env_name} is scaling up: {s.up} of {s.desired} requested nodes are up"
            )
        if s.needed > s.max_nodes:
            return (
                f"managed environment {env_name} is at its maximum ({s.max_vcpus} vCPUs = {s.max_nodes} nodes); "
                "jobs wait for running ones to finish"
            )
        return None

    # ---- the loop -------------------------------------------------------------------------

    async def run(self) -> None:
        self.view.add_change_listener(self._wake.set)
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), _TICK_SECONDS)
                self._wake.clear()
                try:
                    await self._tick()
                except asyncio.CancelledError:
                    raise
                except errors.FencedOut:
                    logger.info("scaling.fenced_out")
                    return
                except Exception:  # noqa: BLE001 - keep sizing; the next tick starts from the view
                    logger.exception("scaling.tick_failed")
                await asyncio.sleep(_MIN_TICK_SECONDS)
        finally:
            self.view.remove_change_listener(self._wake.set)
            for task in self._inflight.values():
                task.cancel()
            for task in self._inflight.values():
                with contextlib.suppress(BaseException):
                    await task

    def _managed_envs(self) -> dict[str, types_pb2.ComputeEnvironment]:
        return {
            name: env
            for name, env in self.view.data.envs.items()
            if env.type == types_pb2.COMPUTE_ENVIRONMENT_TYPE_MANAGED and env.provisioner.node_vcpus > 0
        }

    async def _tick(self) -> None:
        data = self.view.data
        envs = self._managed_envs()
        if not envs:
            self._status.clear()
            return
        specs = {
            name: S.ManagedEnv(
                name=name,
                enabled=env.state != types_pb2.ENTITY_STATE_DISABLED,
                min_vcpus=env.min_vcpus,
                max_vcpus=env.max_vcpus,
                node=Resources.from_vcpus(env.provisioner.node_vcpus, env.provisioner.node_memory_mib),
            )
            for name, env in envs.items()
        }
        queues = {
            name: QueueView(
                name=name,
                priority=q.priority,
                enabled=q.state != types_pb2.ENTITY_STATE_DISABLED,
                compute_environments=tuple(
                    o.compute_environment for o in sorted(q.compute_environment_order, key=lambda o: o.order)
                ),
            )
            for name, q in data.queues.items()
        }
        # Up to ~100k waiting jobs: count shapes first, build each Resources once.
        shapes: Counter[tuple[str, float, int, int]] = Counter()
        for jid in data.by_status.get(J.RUNNABLE, ()):
            entry = data.jobs.get(jid)
            if entry is None:
                continue
            job = entry.job
            # A multi-node job asks for each of its nodes (not that they land on distinct hosts).
            containers = multinode.node_containers(job.node_properties) if job.node_properties.num_nodes else [job.container]
            for container in containers:
                r = container.resources
                shapes[(job.job_queue, r.vcpus, r.memory_mib, r.gpus)] += 1
        runnable = []
        for (queue, vcpus, memory, gpus), count in shapes.items():
            runnable += [(queue, Resources.from_vcpus(vcpus, memory, gpus))] * count
        demand = S.demand_by_env(queues, runnable, specs)
        mono = self._mono()
        await self._forget_removed()
        for name, env in envs.items():
            await self._size(env, specs[name], demand[name], mono)
        for name in list(self._status):
            if name not in envs:
                del self._status[name]

    def _nodes_of(self, env_name: str, mono: float) -> list[S.ManagedNode]:
        result = []
        states = {
            types_pb2.NODE_STATUS_READY: S.NodeState.READY,
            types_pb2.NODE_STATUS_DRAINING: S.NodeState.DRAINING,
            types_pb2.NODE_STATUS_DRAINED: S.NodeState.DRAINED,
        }
        for node_id, node in self.view.data.nodes.items():
            state = states.get(node.status)
            if node.compute_environment != env_name or state is None or node_id in self._removing:
                continue
            active = self.view.active_jobs_on(node_id)
            used = Resources(0, 0, 0)
            for job in active:
                r = job.container.resources
                used = used + Resources.from_vcpus(r.vcpus, r.memory_mib, r.gpus)
            if active:
                self._idle_since.pop(node_id, None)
                idle_for = 0.0
            else:
                idle_for = mono - self._idle_since.setdefault(node_id, mono)
            result.append(
                S.ManagedNode(
                    node_id=node_id,
                    state=state,
                    capacity=Resources.from_vcpus(node.vcpus, node.memory_mib, node.gpus),
                    used=used,
                    running=len(active),
                    idle_for=idle_for,
                    scale_in=node.status_reason.startswith(SCALE_IN_REASON),
                )
            )
        return result

    async def _size(
        self, env: types_pb2.ComputeEnvironment, spec: S.ManagedEnv, demand: list[Resources], mono: float
    ) -> None:
        name = env.compute_environment_name
        nodes = self._nodes_of(name, mono)
        decision = S.desired_nodes(spec, demand, nodes, scale_in_idle=self.config.scale_in_idle)
        up = sum(1 for n in nodes if n.state is S.NodeState.READY)
        self._status[name] = _EnvStatus(
            decision.desired, up, decision.needed, spec.max_nodes, spec.max_vcpus, decision.waiting_jobs
        )
        for node_id in decision.undrain:
            with contextlib.suppress(errors.NotFound):
                await self.leader.undrain(node_id)
                logger.info("scaling.undrain", env=name, node_id=node_id)
        for node_id in decision.drain:
            with contextlib.suppress(errors.NotFound):
                await self.leader.drain(
                    node_id, reason=f"{SCALE_IN_REASON} (idle for {self.config.scale_in_idle:g}s)"
                )
                logger.info("scaling.drain", env=name, node_id=node_id)
        await self._record_desired(env, spec, decision.desired)
        self._provision(env, decision.desired, list(decision.remove), mono)

    def _provision(
        self, env: types_pb2.ComputeEnvironment, desired: int, remove: list[str], mono: float
    ) -> None:
        name = env.compute_environment_name
        task = self._inflight.get(name)
        if task is not None and not task.done():
            return  # a slow command is still running; ask again when it is done
        provisioner = self._provisioner(env)
        if provisioner is None:
            return

        async def call() -> None:
            try:
                await provisioner.scale(env, desired, remove)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a provisioner bug must not stop scaling
                logger.exception("scaling.provisioner_failed", env=name)
                return
            for node_id in remove:
                self._removing.setdefault(node_id, mono)

        self._inflight[name] = asyncio.create_task(call(), name=f"provision-{name}")

    def _provisioner(self, env: types_pb2.ComputeEnvironment) -> Provisioner | None:
        p = env.provisioner
        if p.kind == "local":
            return LocalProvisioner.shared(self.config.state_dir, controller=self.config.advertised)
        if p.kind == "command" and p.command:
            key = (env.compute_environment_name, tuple(p.command))
            if key not in self._commands:
                self._commands[key] = CommandProvisioner(list(p.command), controller=self.config.advertised)
            return self._commands[key]
        logger.warning("scaling.no_provisioner", env=env.compute_environment_name, kind=p.kind)
        return None

    async def _record_desired(
        self, env: types_pb2.ComputeEnvironment, spec: S.ManagedEnv, desired: int
    ) -> None:
        """env.desired_vcpus := desired nodes x node vCPUs, only when it changes (fenced CAS)."""
        vcpus = math.floor(desired * env.provisioner.node_vcpus + 1e-9)
        vcpus = max(env.min_vcpus, min(vcpus, env.max_vcpus))
        if env.desired_vcpus == vcpus:
            return
        key = self.leader.keys.env(env.compute_environment_name)
        kv = await self.leader.client.get(key)
        if kv is None:
            return
        record = types_pb2.ComputeEnvironment.FromString(kv.value)
        if record.desired_vcpus == vcpus:
            return
        record.desired_vcpus = vcpus
        result = await self.leader.client.txn(
            [self.leader.leadership.guard(), Compare.mod_revision(key, "==", kv.mod_revision)],
            [Op.put(key, record.SerializeToString())],
        )
        if result.succeeded:
            logger.info(
                "scaling.desired", env=env.compute_environment_name, desired_vcpus=vcpus, nodes=desired
            )
        elif not self.leader.leadership.valid():
            raise errors.FencedOut("leadership lost")
        # Otherwise the record changed under us (an update): the next tick sees it.

    async def _forget_removed(self) -> None:
        """Delete the records of removed nodes once their agent is gone (LOST)."""
        mono = self._mono()
        for node_id, since in list(self._removing.items()):
            node = self.view.data.nodes.get(node_id)
            if node is None:
                del self._removing[node_id]
                self._idle_since.pop(node_id, None)
                continue
            if node.status == types_pb2.NODE_STATUS_LOST and not self.view.active_jobs_on(node_id):
                key = self.leader.keys.node(node_id)
                kv = await self.leader.client.get(key)
                if kv is not None:
                    await self.leader.client.txn(
                        [self.leader.leadership.guard(), Compare.mod_revision(key, "==", kv.mod_revision)],
                        [Op.delete(key)],
                    )
                logger.info("scaling.removed", node_id=node_id)
            elif mono - since > _REMOVAL_TIMEOUT_SECONDS:
                logger.warning(
                    "scaling.removal_stuck", node_id=node_id, status=types_pb2.NodeStatus.Name(node.status)
                )
                del self._removing[node_id]
