"""`shoal controller`: run one controller replica (API + agent gateway on one port)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import signal
import socket

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from controller.api import auth
from controller.api.agent_gateway import AgentGatewayServicer
from controller.api.batch import BatchServicer
from controller.config import ControllerConfig, default_data_dir
from controller.http import awsbatch
from controller.services.replica import Replica
from shoal import log
from shoal.tls import server_credentials
from shoal.v1 import agent_pb2, agent_pb2_grpc, batch_pb2, batch_pb2_grpc

logger = log.get("controller")

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
SERVICES = ("shoal.v1.Batch", "shoal.v1.AgentGateway")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="shoal controller",
        description="Run a shoal controller replica. Start several against the same etcd for high "
        "availability: one is elected leader (it schedules and holds the agent sessions), the "
        "others serve reads and accept submissions, and take over within about --lease-ttl "
        "seconds if the leader dies.",
    )
    p.add_argument("--etcd", required=True, metavar="HOST:PORT[,...]", help="etcd client endpoints")
    p.add_argument("--listen", default="127.0.0.1:50051", metavar="HOST:PORT", help="address to serve on (default %(default)s)")
    p.add_argument("--advertise", default="", metavar="HOST:PORT", help="address clients and agents are redirected to (default: --listen, with 0.0.0.0 replaced by this host's name)")
    p.add_argument("--prefix", default="/shoal/", help="etcd key prefix of this cluster (default %(default)s)")
    p.add_argument("--replica-id", default="", help="name of this replica in logs (default: the advertised address)")
    p.add_argument("--lease-ttl", type=int, default=5, metavar="SECONDS", help="leader lease TTL, >= 2 (default %(default)s); failover takes about this long")
    p.add_argument("--heartbeat-interval", type=float, default=1.0, metavar="SECONDS", help="agent heartbeat interval (default %(default)s)")
    p.add_argument("--agent-lost-timeout", type=float, default=10.0, metavar="SECONDS", help="a silent agent is declared lost after this long (default %(default)s)")
    p.add_argument("--reconnect-grace", type=float, default=1.0, metavar="SECONDS", help="an agent whose stream broke is lost after this long unless it reconnects (default %(default)s)")
    p.add_argument("--fence-margin", type=float, default=0.5, metavar="SECONDS", help="a broken-stream agent's jobs are requeued after its fence window + fence kill grace (it reports them) + this margin, so its host's fence has stopped them first (default %(default)s)")
    p.add_argument("--gang-reserve-after", type=int, default=3, metavar="PASSES", help="a multi-node job that waited while jobs behind it started in this many scheduling passes reserves the nodes it needs (0 = never; default %(default)s)")
    p.add_argument("--kill-grace", type=float, default=10.0, metavar="SECONDS", help="TerminateJob: SIGTERM-to-SIGKILL grace (default %(default)s)")
    p.add_argument("--max-txn-ops", type=int, default=128, help="etcd's --max-txn-ops (default %(default)s)")
    p.add_argument("--archive-after", type=float, default=3600.0, metavar="SECONDS", help="move finished jobs out of the hot keyspace into history this long after they end (default %(default)s)")
    p.add_argument("--history-retention-days", type=float, default=7.0, metavar="DAYS", help="keep finished jobs describable and listable this long (default %(default)s)")
    p.add_argument("--etcd-cacert", default="", help="CA bundle for TLS to etcd")
    p.add_argument("--etcd-cert", default="", help="client certificate for etcd")
    p.add_argument("--etcd-key", default="", help="client key for etcd")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    auth.add_arguments(p)
    awsbatch.add_arguments(p)
    p.add_argument("--http-listen", "--aws-api-listen", dest="http_listen", default="", metavar="HOST:PORT",
                   help="serve HTTP here: AWS Batch's own wire API (boto3, `aws batch`) and the dashboard at /ui/ "
                   "(default: off); HTTPS with --tls-cert/--tls-key, plaintext only on loopback unless --insecure")
    p.add_argument("--metrics-listen", default="", metavar="HOST:PORT", help="serve Prometheus /metrics and /healthz over HTTP here (default: off)")
    p.add_argument("--data-dir", default="", metavar="DIR", help="local state of this replica, e.g. the agents its `local` provisioner started (default: /var/lib/shoal/controller as root, else $XDG_STATE_HOME/shoal/controller or ~/.local/state/shoal/controller)")
    p.add_argument("--scale-in-idle", type=float, default=30.0, metavar="SECONDS", help="MANAGED environments: a node idle this long may be drained and removed (default %(default)s)")
    return p


def config_from_args(ns: argparse.Namespace) -> ControllerConfig:
    endpoints = tuple(e.strip() for e in ns.etcd.split(",") if e.strip())
    if not endpoints:
        raise SystemExit("shoal controller: --etcd needs at least one HOST:PORT")
    if ns.lease_ttl < 2:
        raise SystemExit("shoal controller: --lease-ttl must be >= 2 (etcd grants no shorter lease)")
    if ns.agent_lost_timeout <= 2 * ns.heartbeat_interval:
        raise SystemExit("shoal controller: --agent-lost-timeout must be more than two heartbeat intervals")
    if ns.fence_margin < 0:
        raise SystemExit("shoal controller: --fence-margin cannot be negative")
    advertise = ns.advertise
    if not advertise:
        host, _, port = ns.listen.rpartition(":")
        advertise = f"{socket.gethostname()}:{port}" if host in ("0.0.0.0", "[::]", "") else ns.listen
    tls = {}
    if ns.etcd_cacert:
        tls = {"ca_file": ns.etcd_cacert, "cert_file": ns.etcd_cert or None, "key_file": ns.etcd_key or None}
    return ControllerConfig(
        etcd_endpoints=endpoints,
        listen=ns.listen,
        advertise=advertise,
        prefix=ns.prefix,
        replica_id=ns.replica_id,
        lease_ttl=ns.lease_ttl,
        heartbeat_interval=ns.heartbeat_interval,
        agent_lost_timeout=ns.agent_lost_timeout,
        reconnect_grace=ns.reconnect_grace,
        fence_margin=ns.fence_margin,
        gang_reserve_after=ns.gang_reserve_after,
        kill_grace=ns.kill_grace,
        max_txn_ops=ns.max_txn_ops,
        archive_after=ns.archive_after,
        history_retention=ns.history_retention_days * 86400,
        etcd_tls=tls,
        data_dir=ns.data_dir or default_data_dir(),
        scale_in_idle=ns.scale_in_idle,
    )


async def _health_updater(replica: Replica, servicer: health.aio.HealthServicer) -> None:
    serving = None
    while True:
        ok = replica.view.healthy
        if ok != serving:
            status = health_pb2.HealthCheckResponse.SERVING if ok else health_pb2.HealthCheckResponse.NOT_SERVING
            for name in ("", *SERVICES):
                await servicer.set(name, status)
            serving = ok
        await asyncio.sleep(0.2)


async def serve(
    config: ControllerConfig,
    *,
    stop: asyncio.Event | None = None,
    metrics_listen: str = "",
    edge: auth.EdgeOptions | None = None,
    http_listen: str = "",
) -> None:
    stop = stop or asyncio.Event()
    edge = edge or auth.EdgeOptions()
    replica = Replica(config)
    replica.jobs.max_queued_per_queue = edge.max_queued_per_queue
    replica.jobs.max_array_size = edge.max_array_size
    metrics_server = None
    if metrics_listen:
        from controller import metrics
        from shoal.metrics_http import MetricsServer

        metrics_server = MetricsServer(metrics_listen, metrics.registry_for(replica), lambda: metrics.health_of(replica))
    options = [
        ("grpc.max_receive_message_length", edge.max_message_bytes),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        # Agent streams live for days: keep them alive through idle NAT/firewalls.
        ("grpc.keepalive_time_ms", 20_000),
        ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
        ("grpc.keepalive_permit_without_calls", 1),
    ]
    server = grpc.aio.server(interceptors=edge.interceptors(), options=options)
    batch_servicer = BatchServicer(replica)
    batch_pb2_grpc.add_BatchServicer_to_server(batch_servicer, server)
    http_server = None
    if http_listen:
        from controller.http.routes import route_sets
        from controller.http.server import HttpOptions, HttpServer

        http_server = HttpServer(
            HttpOptions(http_listen, route_sets(edge), tls_cert=edge.tls_cert, tls_key=edge.tls_key),
            replica, batch_servicer, edge,
        )
    agent_pb2_grpc.add_AgentGatewayServicer_to_server(
        AgentGatewayServicer(replica, agent_address=edge.agent_advertise), server
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", *SERVICES):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    reflection.enable_server_reflection(
        (
            batch_pb2.DESCRIPTOR.services_by_name["Batch"].full_name,
            agent_pb2.DESCRIPTOR.services_by_name["AgentGateway"].full_name,
            health.SERVICE_NAME,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    if edge.tls:
        port = server.add_secure_port(config.listen, server_credentials(edge.tls_cert, edge.tls_key))
    else:
        port = server.add_insecure_port(config.listen)
    if port == 0:
        raise SystemExit(f"shoal controller: cannot listen on {config.listen}")
    agent_server = None
    if edge.mutual_tls:
        # Agents only, every peer with a certificate of --tls-client-ca (else no handshake).
        agent_server = grpc.aio.server(options=options)
        agent_pb2_grpc.add_AgentGatewayServicer_to_server(AgentGatewayServicer(replica, require_cert=True), agent_server)
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, agent_server)
        creds = server_credentials(edge.tls_cert, edge.tls_key, client_ca=edge.tls_client_ca)
        if agent_server.add_secure_port(edge.agent_listen, creds) == 0:
            raise SystemExit(f"shoal controller: cannot listen on {edge.agent_listen} (--agent-listen)")
        await agent_server.start()
    await server.start()
    await replica.start()
    health_task = asyncio.create_task(_health_updater(replica, health_servicer))
    if metrics_server is not None:
        await metrics_server.start()
    if http_server is not None:
        await http_server.start()
    logger.info("controller.ready", listen=config.listen, advertise=config.advertised, etcd=",".join(config.etcd_endpoints),
                tls=edge.tls, agent_listen=edge.agent_listen or config.listen,
                auth="tokens" if edge.tokens is not None else "off")
    try:
        await stop.wait()
    finally:
        logger.info("controller.stopping")
        health_task.cancel()
        if http_server is not None:
            await http_server.stop()
        if metrics_server is not None:
            await metrics_server.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await health_task
        await replica.stop()
        if agent_server is not None:
            await agent_server.stop(grace=1.0)
        await server.stop(grace=1.0)


def main(argv: list[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    config = config_from_args(ns)
    edge = dataclasses.replace(auth.edge_from_args(ns, config.advertised), aws_api=awsbatch.options_from_args(ns))
    if ns.http_listen:
        from shoal.tls import is_loopback

        if ":" not in ns.http_listen or not ns.http_listen.rpartition(":")[2].isdigit():
            raise SystemExit(f"shoal controller: --http-listen must be HOST:PORT (got {ns.http_listen!r})")
        if not (edge.tls or ns.insecure or is_loopback(ns.http_listen)):
            raise SystemExit(
                f"shoal controller: refusing to serve HTTP on {ns.http_listen} (not loopback) without --tls-cert/--tls-key, "
                "or pass --insecure to run unprotected"
            )
    log.configure(ns.log_level, component="controller")

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(config, stop=stop, metrics_listen=ns.metrics_listen, edge=edge, http_listen=ns.http_listen)

    asyncio.run(run())
    return 0
