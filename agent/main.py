"""Command line of the node agent: `shoal agent ...` or `python -m agent ...`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from agent.address import route_address, validate_address
from agent.attempts import STATE_FILE
from agent.capacity import hostname, measure_host, offered_capacity
from agent.config import (
    DEFAULT_ERROR_RETRY_SECONDS,
    DEFAULT_FENCE_KILL_GRACE_SECONDS,
    DEFAULT_FENCE_TIMEOUT_SECONDS,
    DEFAULT_FENCE_WINDOW_SECONDS,
    DEFAULT_HANDOVER_WINDOW_SECONDS,
    DEFAULT_KILL_GRACE_SECONDS,
    AgentConfig,
)
from agent.daemon import run_until_signalled
from agent.identity import NODE_ID_FILE, default_state_dir, load_or_create_node_id
from agent.runtime import RUNTIMES, configure_runtimes, detect_runtimes
from agent.runtime.output import LogLimits
from shoal import log
from shoal.errors import InvalidArgument, ShoalError

PROG = "shoal agent"


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Run a shoal node agent: join a compute environment, offer this host's CPUs and "
            "memory, run the job attempts the controller places here, stream their logs and "
            "report how they ended. Stop it with SIGTERM or Ctrl-C: running attempts get "
            "SIGTERM, the kill grace, then SIGKILL, and the controller requeues them. "
            "Restart it without stopping its jobs (upgrades) with SIGUSR2: it announces a hand-over "
            "to the controller, exits and leaves every attempt running; the next agent started "
            "with the same --state-dir re-attaches to them if it registers within the "
            "--handover-window. If the agent dies instead (crash, kill -9, OOM kill), the host's "
            "fence (the agent's log writer process, which outlives it) stops its attempts after "
            "the --fence-window unless a new agent took them over by then, and the controller "
            "requeues them only after the fence window + --fence-kill-grace + its --fence-margin: "
            "a job never runs twice at once."
        ),
    )
    parser.add_argument(
        "--controller",
        required=True,
        metavar="HOST:PORT[,HOST:PORT...]",
        help="controller addresses, tried in turn; followers redirect the agent to the leader",
    )
    parser.add_argument("--advertise-address", default=None, metavar="ADDRESS",
                        help="address the other nodes of a multi-node job reach this host at, given to "
                             "them as SHOAL_MAIN_NODE_ADDR when this host runs the main node (default: "
                             "this host's address on the route to the first --controller)")
    parser.add_argument("--compute-env", default="default", metavar="NAME",
                        help="compute environment to join; it must exist (default: %(default)s)")
    parser.add_argument("--runtime", default="auto", choices=("auto", *RUNTIMES),
                        help="preferred runtime: auto = podman, else docker, when the host can run "
                             "containers, else process (default: %(default)s); a container node also "
                             "runs jobs without an image as processes")
    parser.add_argument("--image-pull", default="", choices=("", "never", "missing", "always"),
                        help="container image pull policy (default: the CLI's, missing); 'never' for "
                             "air-gapped nodes whose images are loaded from archives")
    parser.add_argument("--oci-runtime", default="", metavar="NAME",
                        help="podman's OCI runtime, e.g. runc (default: podman's; runc is used "
                             "automatically when crun fails)")
    parser.add_argument("--log-max-mib", type=int, default=64, metavar="N",
                        help="rotate an attempt's log at this size (default: %(default)s)")
    parser.add_argument("--log-keep", type=int, default=3, metavar="N",
                        help="rotated log files kept per attempt (default: %(default)s)")
    parser.add_argument("--node-id", default=None, metavar="ID",
                        help=f"node id (default: kept in STATE_DIR/{NODE_ID_FILE}, created once as "
                             "<hostname>-<6 hex>)")
    parser.add_argument("--state-dir", type=Path, default=None, metavar="DIR",
                        help=f"node id, {STATE_FILE}, attempt logs and work dirs (default: "
                             "/var/lib/shoal/agent as root, else $XDG_STATE_HOME/shoal/agent or "
                             "~/.local/state/shoal/agent)")
    parser.add_argument("--vcpus", type=float, default=None, metavar="N",
                        help="logical CPUs to offer before the reserve (default: all; at most all)")
    parser.add_argument("--memory-mib", type=int, default=None, metavar="N",
                        help="memory to offer in MiB before the reserve (default: all; at most all)")
    parser.add_argument("--gpus", default="auto", metavar="N|ID,ID...|auto|none",
                        help="GPUs to offer: auto = the host's NVIDIA GPUs from nvidia-smi (none "
                             "without it), a count N (devices 0..N-1), or device ids such as 0,1 "
                             "(default: %(default)s)")
    parser.add_argument("--reserve-vcpus", type=float, default=0.0, metavar="N",
                        help="logical CPUs kept back for the host (default: %(default)g)")
    parser.add_argument("--reserve-memory-mib", type=int, default=0, metavar="N",
                        help="memory in MiB kept back for the host (default: %(default)s)")
    parser.add_argument("--label", action="append", default=[], metavar="KEY=VALUE",
                        help="placement label (repeatable)")
    parser.add_argument("--fence-timeout", type=float, default=DEFAULT_FENCE_TIMEOUT_SECONDS,
                        metavar="SECONDS",
                        help="kill all attempts after this long without hearing from a controller "
                             "(default: %(default)gs; keep it below the controller's agent-lost timeout minus the kill grace)")
    parser.add_argument("--kill-grace", type=float, default=DEFAULT_KILL_GRACE_SECONDS,
                        metavar="SECONDS",
                        help="SIGTERM-to-SIGKILL grace when the agent stops attempts itself "
                             "(fencing, shutdown, timeouts; default: %(default)gs)")
    parser.add_argument("--fence-window", type=float, default=DEFAULT_FENCE_WINDOW_SECONDS, metavar="SECONDS",
                        help="when this agent process dies, the host's fence stops its attempts unless "
                             "a new agent with the same --state-dir registered and took them over "
                             "within this long (default: %(default)gs; the controller waits this + "
                             "--fence-kill-grace + its --fence-margin before it requeues them)")
    parser.add_argument("--fence-kill-grace", type=float, default=DEFAULT_FENCE_KILL_GRACE_SECONDS,
                        metavar="SECONDS",
                        help="SIGTERM-to-SIGKILL grace when the fence stops a dead agent's attempts "
                             "(default: %(default)gs)")
    parser.add_argument("--handover-window", type=float, default=DEFAULT_HANDOVER_WINDOW_SECONDS,
                        metavar="SECONDS",
                        help="on SIGUSR2 (or --keep-jobs-on-exit) the next agent must take the attempts "
                             "over within this long, announced to the controller, which grants at most "
                             "its agent-lost timeout minus the fence kill grace and margin (default: "
                             "%(default)gs)")
    parser.add_argument("--keep-jobs-on-exit", action="store_true",
                        help="on SIGTERM/SIGINT too, exit leaving the attempts running for the next "
                             "agent to re-attach to (as SIGUSR2 always does), e.g. when a service "
                             "manager restarts the agent for upgrades; a termination notice then "
                             "no longer stops jobs")
    parser.add_argument("--tls-ca", default=None, metavar="FILE",
                        help="cluster CA (PEM) to verify controllers with; turns TLS on")
    parser.add_argument("--tls-cert", default=None, metavar="FILE",
                        help="this node's certificate (`shoal certs issue --kind agent --name NODE_ID`); "
                             "its node id must be --node-id")
    parser.add_argument("--tls-key", default=None, metavar="FILE", help="key of --tls-cert")
    parser.add_argument("--insecure", action="store_true",
                        help="allow plaintext to a controller that is not on loopback")
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"],
                        help="log level (default: %(default)s); JSON lines when stderr is not a TTY")
    parser.add_argument("--metrics-listen", default="", metavar="HOST:PORT",
                        help="serve Prometheus /metrics and /healthz over HTTP here (default: off)")
    return parser


def parse_labels(items: list[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidArgument(f"--label must look like KEY=VALUE, got {item!r}")
        labels[key.strip()] = value.strip()
    return labels


def parse_controllers(value: str) -> tuple[str, ...]:
    addresses = tuple(part.strip() for part in value.split(",") if part.strip())
    if not addresses:
        raise InvalidArgument("--controller needs at least one HOST:PORT")
    for address in addresses:
        host, sep, port = address.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise InvalidArgument(f"--controller address {address!r} is not HOST:PORT")
    return addresses


def config_from_args(args: argparse.Namespace) -> AgentConfig:
    """Resolve flags, the host's capacity and the node's identity into an AgentConfig."""
    if args.fence_timeout <= 0:
        raise InvalidArgument("--fence-timeout must be > 0")
    if args.kill_grace < 0:
        raise InvalidArgument("--kill-grace cannot be negative")
    for flag, value in (("--fence-window", args.fence_window), ("--fence-kill-grace", args.fence_kill_grace),
                        ("--handover-window", args.handover_window)):
        if value < 0 or value > 3600:
            raise InvalidArgument(f"{flag} must be between 0 and 3600 seconds")
    capacity = offered_capacity(
        measure_host(args.gpus),
        vcpus=args.vcpus,
        memory_mib=args.memory_mib,
        reserve_vcpus=args.reserve_vcpus,
        reserve_memory_mib=args.reserve_memory_mib,
    )
    if args.log_max_mib <= 0 or args.log_keep < 1:
        raise InvalidArgument("--log-max-mib must be > 0 and --log-keep >= 1")
    runtime = args.runtime
    if runtime == "auto":
        runtime = detect_runtimes()[0]
    configure_runtimes(pull=args.image_pull, oci_runtime=args.oci_runtime,
                       log_limits=LogLimits(args.log_max_mib * 1024 * 1024, args.log_keep))
    host = hostname()
    state_dir: Path = (args.state_dir or default_state_dir()).expanduser().absolute()
    state_dir.mkdir(parents=True, exist_ok=True)
    node_id = args.node_id or load_or_create_node_id(state_dir, host)
    controllers = parse_controllers(args.controller)
    try:
        advertise = (
            validate_address(args.advertise_address)
            if args.advertise_address is not None
            else route_address(controllers[0])
        )
    except ValueError as err:
        raise InvalidArgument(str(err)) from None
    return AgentConfig(
        controllers=controllers,
        advertise_address=advertise,
        node_id=node_id,
        hostname=host,
        state_dir=state_dir,
        vcpus=capacity.vcpus,
        memory_mib=capacity.memory_mib,
        gpus=capacity.gpus,
        gpu_ids=capacity.gpu_ids,
        compute_environment=args.compute_env,
        runtime=runtime,
        image_pull=args.image_pull,
        oci_runtime=args.oci_runtime,
        log_max_mib=args.log_max_mib,
        log_keep=args.log_keep,
        labels=parse_labels(args.label),
        fence_timeout=args.fence_timeout,
        kill_grace=args.kill_grace,
        keep_jobs_on_exit=args.keep_jobs_on_exit,
        fence_window=args.fence_window,
        fence_kill_grace=args.fence_kill_grace,
        handover_window=args.handover_window,
        error_retry=DEFAULT_ERROR_RETRY_SECONDS,
    )


async def _run(config: AgentConfig, metrics_listen: str) -> None:
    if not metrics_listen:
        await run_until_signalled(config)
        return
    from agent.metrics import AgentMetrics, registry_for
    from shoal.metrics_http import MetricsServer

    metrics = AgentMetrics(config)
    server = MetricsServer(metrics_listen, registry_for(metrics), metrics.health)
    await server.start()
    try:
        await run_until_signalled(config, on_session=metrics.attach)
    finally:
        await server.stop()


def configure_tls(args: argparse.Namespace, config: AgentConfig) -> None:
    """--tls-* -> the session's channel credentials; plaintext off loopback needs --insecure."""
    from agent import session
    from shoal.certs import node_id_of
    from shoal.tls import channel_credentials, is_loopback, read_pem

    if not args.tls_ca:
        if args.tls_cert or args.tls_key:
            raise InvalidArgument("--tls-cert/--tls-key need --tls-ca (the CA that signed the controllers)")
        remote = [a for a in config.controllers if not is_loopback(a)]
        if remote and not args.insecure:
            raise InvalidArgument(
                f"refusing plaintext to {remote[0]} (not loopback): give --tls-ca, --tls-cert and --tls-key "
                "(see `shoal certs`), or --insecure"
            )
        return
    if bool(args.tls_cert) != bool(args.tls_key):
        raise InvalidArgument("--tls-cert and --tls-key go together")
    if args.tls_cert:
        certified = node_id_of(read_pem(args.tls_cert, "--tls-cert"))
        if certified != config.node_id:
            raise InvalidArgument(
                f"--tls-cert is for node '{certified}', but this node's id is '{config.node_id}' (set --node-id)"
            )
    session.CHANNEL_CREDENTIALS = channel_credentials(args.tls_ca, args.tls_cert, args.tls_key)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    log.configure(args.log_level, component="agent")
    try:
        config = config_from_args(args)
        configure_tls(args, config)
    except ShoalError as err:
        print(f"{PROG}: error: {err.message}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_run(config, args.metrics_listen))
    except ShoalError as err:
        print(f"{PROG}: error: {err.message}", file=sys.stderr)
        return 1
    return 0
