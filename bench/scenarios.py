"""shoal's side of the bench: each scenario starts its own etcd, controller(s) and agents.

Every scenario is a function `(ctx) -> {metric: value}`; values are numbers, or a string saying
why there is no number ("not supported yet: ..."). The runner repeats them and takes medians.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable

from bench import harness as H
from bench.scheduler_pass import build as build_snapshot
from bench.scheduler_pass import time_passes
from controller.store.etcd import EtcdClient, Op
from shoal import Client
from shoal.client import build_submit_request
from shoal.devcluster import EtcdServer, free_port
from shoal.errors import InvalidArgument, ShoalError
from shoal.v1 import state_pb2, types_pb2

BATCH = 1000  # SubmitJobs takes at most 1,000 jobs per call


def _batches(n: int, command: list[str], prefix: str = "job", **shape: float | int | None) -> list[list]:
    reqs = [build_submit_request(f"{prefix}-{i}", command=command, **shape) for i in range(n)]
    return [reqs[i : i + BATCH] for i in range(0, n, BATCH)]


# ------------------------------------------------------------------------------------- submit


def submit(ctx: H.Context) -> dict[str, float | str]:
    """20,000 jobs through SubmitJobs (1,000 per call; one client, then 4 in parallel), then as arrays."""
    n = ctx.size(20_000, 2_000)
    out: dict[str, float | str] = {}
    for clients in (1, 4):
        with H.local_cluster(ctx, f"submit{clients}", agents=0) as cluster:
            batches = _batches(n, ["true"])
            with H.Profile(cluster.controller_procs[0].pid, _profile_path(ctx, f"submit-{clients}")):
                elapsed = _submit_parallel(cluster.address, batches, clients)
            out[f"batch_{clients}c_jobs_per_s"] = n / elapsed
    # One array of all n jobs, as Slurm's side does (`sbatch --array=0-19999`): the controller
    # is told to allow arrays that large (--max-array-size; the default is AWS Batch's 10,000).
    with (
        H.local_cluster(ctx, "submit-array", agents=0, controller_args=["--max-array-size", str(max(n, 2))]) as cluster,
        Client(cluster.address, timeout=120) as client,
    ):
        client.describe_cluster()
        start = time.perf_counter()
        try:
            client.submit_job("array", command=["true"], array_size=n)
            out["array_jobs_per_s"] = n / (time.perf_counter() - start)
        except InvalidArgument as err:
            out["array_jobs_per_s"] = f"refused: {err.message}"
    for key, value in etcd_limit(ctx).items():
        out[f"etcd_{key}"] = value
    if isinstance(out["batch_1c_jobs_per_s"], float):
        out["fraction_of_etcd"] = out["batch_1c_jobs_per_s"] / out["etcd_txn128_jobs_per_s"]  # type: ignore[operator]
    return out


def _submit_parallel(address: str, batches: list[list], clients: int) -> float:
    errors: list[BaseException] = []
    shares = [batches[i::clients] for i in range(clients)]
    gate = threading.Barrier(clients + 1)

    def work(share: list[list]) -> None:
        with Client(address, timeout=120) as client:
            client.describe_cluster()  # connect before the clock starts
            gate.wait()
            try:
                for batch in share:
                    client.submit_jobs(batch)
            except BaseException as e:  # noqa: BLE001
                errors.append(e)

    threads = [threading.Thread(target=work, args=(s,)) for s in shares]
    for t in threads:
        t.start()
    gate.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise H.ScenarioError(f"submit failed: {errors[0]}")
    return elapsed


# ------------------------------------------------------------------------------ etcd's limit


def etcd_limit(ctx: H.Context) -> dict[str, float | str]:
    """Raw etcd through shoal's own client: job-sized records in transactions of etcd's maximum size.

    Two shapes: each job its own key, 128 puts per transaction (etcd's --max-txn-ops default,
    what shoal's leader does when it expands a submission); and shoal's submission shape, one
    value of 1,000 job records per put (what SubmitJobs writes).
    """
    n = ctx.size(20_000, 2_000)
    job = types_pb2.Job(
        job_name="job-12345",
        job_queue="default",
        status=types_pb2.JOB_STATUS_SUBMITTED,
        created_at=int(time.time() * 1000),
        container=types_pb2.ContainerProperties(
            command=["true"], resources=types_pb2.ResourceRequirements(vcpus=1, memory_mib=256)
        ),
    )

    def record(i: int) -> types_pb2.Job:
        j = types_pb2.Job()
        j.CopyFrom(job)
        j.job_id = str(uuid.uuid4())
        j.batch_index = i % BATCH
        return j

    records = [record(i) for i in range(n)]
    out: dict[str, float | str] = {"record_bytes": float(records[0].ByteSize())}
    server = EtcdServer(data_dir=ctx.scratch("etcd-limit"))
    server.start()
    try:

        async def run() -> None:
            async with EtcdClient([server.endpoint], timeout=30) as client:
                ops = [Op.put(f"/raw/jobs/{r.job_id}".encode(), r.SerializeToString()) for r in records]
                start = time.perf_counter()
                await client.txn_batches([], ops)
                out["txn128_jobs_per_s"] = n / (time.perf_counter() - start)
                blobs = [
                    state_pb2.SubmissionBatch(
                        batch_id=uuid.uuid4().hex, jobs=records[i : i + BATCH]
                    ).SerializeToString()
                    for i in range(0, n, BATCH)
                ]
                start = time.perf_counter()
                for i, blob in enumerate(blobs):
                    await client.put(f"/raw/batches/{i}".encode(), blob)
                out["batch_put_jobs_per_s"] = n / (time.perf_counter() - start)

        asyncio.run(run())
    finally:
        server.stop()
    return out


# ---------------------------------------------------------------------------------- dispatch


def dispatch(ctx: H.Context) -> dict[str, float | str]:
    """Submit one job at a time to an idle 1-agent cluster; latency = its start time - submit time."""
    n = ctx.size(200, 20)
    warmup = 5
    with H.local_cluster(ctx, "dispatch", agents=1) as cluster, Client(cluster.address, timeout=60) as client:
        latencies = []
        with H.Profile(cluster.controller_procs[0].pid, _profile_path(ctx, "dispatch")):
            for i in range(n + warmup):
                t0 = time.time()
                job_id = client.submit_job(f"d{i}", command=["true"]).job_id
                job = client.wait([job_id], timeout=60)[job_id]
                started = job.attempts[-1].started_at if job.attempts else job.started_at
                if i >= warmup:
                    latencies.append(started / 1000 - t0)
    return {
        "p50_ms": H.percentile(latencies, 50) * 1000,
        "p99_ms": H.percentile(latencies, 99) * 1000,
        "max_ms": max(latencies) * 1000,
    }


# -------------------------------------------------------------------------------- end to end


def end_to_end(ctx: H.Context) -> dict[str, float | str]:
    """5,000 jobs of `true`, first submit to last SUCCEEDED: through 4 agents of 2 slots (the
    first round's shape), then through 1 agent of 8 slots (a real host's shape: one agent
    process; the agent offers at most the host's 2 CPUs, so its 8 slots are jobs of 0.25 vCPU
    and 256 MiB). Process runtime."""
    four = _end_to_end(ctx, "e2e", agents=4, slots=4 * H.AGENT_SLOTS)
    one = _end_to_end(ctx, "e2e-1agent", agents=1, slots=8, vcpus=0.25, memory_mib=256)
    return {
        **four,
        "one_agent_jobs_per_s": one["jobs_per_s"],
        "one_agent_seconds": one["seconds"],
        "one_agent_failed": one["failed"],
        "one_agent_slots": one["slots"],
    }


def _end_to_end(
    ctx: H.Context, name: str, *, agents: int, slots: int, vcpus: float | None = None, memory_mib: int | None = None
) -> dict[str, float]:
    n = ctx.size(5_000, 200)
    with H.local_cluster(ctx, name, agents=agents) as cluster:
        watch = H.JobWatch(cluster.address).start()
        try:
            batches = _batches(n, ["true"], name, vcpus=vcpus, memory_mib=memory_mib)
            with (
                Client(cluster.address, timeout=120) as client,
                H.Profile(cluster.controller_procs[0].pid, _profile_path(ctx, name)),
                H.Profile(cluster.agent_procs[0].pid, _profile_path(ctx, f"{name}-agent")),
            ):
                client.describe_cluster()
                start = time.perf_counter()
                for batch in batches:
                    client.submit_jobs(batch)
                if not watch.wait_for(n, timeout=ctx.size(900, 120)):
                    raise H.ScenarioError(f"only {len(watch.final)} of {n} jobs finished in time")
                elapsed = time.perf_counter() - start
            failed = sum(1 for s in watch.final.values() if s != types_pb2.JOB_STATUS_SUCCEEDED)
        finally:
            watch.close()
    return {"jobs_per_s": n / elapsed, "seconds": elapsed, "failed": float(failed), "slots": float(slots)}


# ------------------------------------------------------------------------------------- scale


def scale(ctx: H.Context) -> dict[str, float | str]:
    """100,000 queued jobs, then 1,000 simulated agents (4 slots each, jobs end at once) drain them.

    What was measured before a step timed out is kept, with the error, in the result.
    """
    n = ctx.scale_jobs or ctx.size(100_000, 3_000)
    n_agents = ctx.scale_agents or ctx.size(1_000, 50)
    out: dict[str, float | str] = {"jobs": float(n), "agents": float(n_agents)}
    try:
        _scale(ctx, n, n_agents, out)
    except (H.ScenarioError, ShoalError) as err:
        out["error"] = f"{type(err).__name__}: {err}"
    return out


def _scale(ctx: H.Context, n: int, n_agents: int, out: dict[str, float | str]) -> None:
    metrics_port = free_port() if _has_metrics() else 0
    extra = ["--metrics-listen", f"127.0.0.1:{metrics_port}"] if metrics_port else []
    # place() alone on the same shape (the pure scheduler; bench/scheduler_pass.py).
    snapshot = build_snapshot(n, n_agents)
    times, _, _ = time_passes(snapshot, 3)
    out["place_ms"] = H.median(times) * 1000
    del snapshot
    with H.local_cluster(ctx, "scale", agents=0, controller_args=extra) as cluster:
        pid = cluster.controller_procs[0].pid
        out["idle_rss_mib"] = H.rss_mib(pid)
        with Client(cluster.address, timeout=300) as client:
            # In waves, each admitted (SUBMITTED -> RUNNABLE) before the next is sent: one
            # submission of 100,000 jobs at once makes the leader expand them all in one pass,
            # which starves its lease keepalive (see docs/benchmarks.md, "Where the time goes").
            wave = max(BATCH, n // 10)
            batches = _batches(n, ["true"], "s")
            start = time.perf_counter()
            submit_time = 0.0
            for i in range(0, len(batches), wave // BATCH):
                t = time.perf_counter()
                for batch in batches[i : i + wave // BATCH]:
                    client.submit_jobs(batch)
                submit_time += time.perf_counter() - t
                H.wait_until(
                    lambda: not H.count_status(client, "SUBMITTED"), 600, "the leader to admit every job", 0.2
                )
            out["submit_jobs_per_s"] = n / submit_time
            out["queued_s"] = time.perf_counter() - start
            out["queued_rss_mib"] = H.rss_mib(pid)
            out["rss_per_job_kib"] = (out["queued_rss_mib"] - out["idle_rss_mib"]) * 1024 / n  # type: ignore[operator]
            before = _pass_stats(metrics_port)
            sim = subprocess.Popen(
                [sys.executable, "-m", "bench.simagents", "--controller", cluster.address, "--count", str(n_agents),
                 "--vcpus", "4", "--memory-mib", "16384", "--job-seconds", "0"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=H.ROOT, start_new_session=True,
            )  # fmt: skip
            progress: dict = {}
            reader = threading.Thread(target=_read_progress, args=(sim, progress), daemon=True)
            reader.start()
            t0 = time.perf_counter()
            try:
                with H.RssSampler(pid) as rss, H.Profile(pid, _profile_path(ctx, "scale")):
                    # All of them, or go on after 120 s with those registered by then (the
                    # count is reported): a leader that keeps losing its lease drops every
                    # session each time, and the drain is still worth measuring.
                    with contextlib.suppress(H.ScenarioError):
                        H.wait_until(
                            lambda: progress.get("registered", 0) >= n_agents,
                            120,
                            "simulated agents to register",
                            0.1,
                        )
                    out["registered"] = float(progress.get("registered", 0))
                    out["register_s"] = time.perf_counter() - t0
                    H.wait_until(
                        lambda: progress.get("finished", 0) >= n,
                        ctx.size(1800, 300),
                        "the queue to drain",
                        0.2,
                    )
                    H.wait_until(
                        lambda: not any(H.count_status(client, s) for s in ("RUNNABLE", "STARTING", "RUNNING")),
                        300, "the last jobs to be recorded", 0.2,
                    )  # fmt: skip
                    out["drain_s"] = time.perf_counter() - t0
                    out["drain_jobs_per_s"] = n / out["drain_s"]
                out["peak_rss_mib"] = max(rss.peak, out["queued_rss_mib"])  # type: ignore[type-var]
                out["reconnects"] = float(max(0, progress.get("reconnects", 0)))
                after = _pass_stats(metrics_port)
                if before and after and after[0] > before[0]:
                    out["pass_ms_mean"] = 1000 * (after[1] - before[1]) / (after[0] - before[0])
                    out["decide_ms_mean"] = 1000 * (after[2] - before[2]) / (after[0] - before[0])
                    out["passes"] = after[0] - before[0]
                else:
                    out["pass_ms_mean"] = "n/a: the controller has no /metrics endpoint yet (see place_ms)"
            finally:
                sim.terminate()
                try:
                    sim.wait(10)
                except subprocess.TimeoutExpired:
                    sim.kill()
                    sim.wait()
        out["leadership_losses"] = float(H.leadership_losses(cluster))


def _read_progress(proc: subprocess.Popen[str], progress: dict) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        try:
            progress.update(json.loads(line))
        except ValueError:
            continue


_METRICS_FLAG: list[bool] = []


def _has_metrics() -> bool:
    if not _METRICS_FLAG:
        _METRICS_FLAG.append(H.controller_supports("--metrics-listen"))
    return _METRICS_FLAG[0]


def _pass_stats(port: int) -> tuple[float, float, float] | None:
    """(passes, total pass seconds, total decision seconds) from the controller's /metrics."""
    if not port:
        return None
    try:
        samples = H.scrape_metrics(f"127.0.0.1:{port}")
    except OSError:
        return None
    count = samples.get("shoal_scheduler_passes_total")
    total = samples.get("shoal_scheduler_pass_seconds_total")
    decide = samples.get("shoal_scheduler_decide_seconds_total", 0.0)
    return (count, total, decide) if count is not None and total is not None else None


# ---------------------------------------------------------------------------------- recovery


def recovery(ctx: H.Context) -> dict[str, float | str]:
    """kill -9 of a busy agent -> its job RUNNING elsewhere; kill -9 of the leader -> a new job RUNNING."""
    out: dict[str, float | str] = {}
    for label, c_args, a_args in (("fast", H.FAST_CONTROLLER, H.FAST_AGENT), ("default", [], [])):
        out[f"agent_kill_s_{label}"] = _agent_kill(ctx, c_args, a_args)
        out[f"failover_s_{label}"] = _leader_kill(ctx, c_args, a_args)
    out["handover_s_default"] = _leader_kill(ctx, [], [], sig=signal.SIGTERM)
    return out


def _started_s(job: types_pb2.Job) -> float:
    return job.started_at / 1000


def _agent_kill(ctx: H.Context, c_args: list[str], a_args: list[str]) -> float:
    with (
        H.local_cluster(ctx, "agent-kill", agents=2, controller_args=c_args, agent_args=a_args) as cluster,
        Client(cluster.address, timeout=30) as client,
    ):
        job_id = client.submit_job("victim", command=["sleep", "600"], retry_strategy=3).job_id
        first = _wait_job(client, job_id, lambda j: j.status == types_pb2.JOB_STATUS_RUNNING, 60)
        victim = next(p for p in cluster.agent_procs if p.name == first.node_id)
        t_kill = time.time()
        victim.kill9()
        again = _wait_job(
            client,
            job_id,
            lambda j: j.status == types_pb2.JOB_STATUS_RUNNING and j.node_id != first.node_id,
            120,
        )
        client.terminate_job(job_id, "bench done")
        return _started_s(again) - t_kill


def _leader_kill(ctx: H.Context, c_args: list[str], a_args: list[str], *, sig: int = signal.SIGKILL) -> float:
    """`sig` to the leader of 2 controllers -> a job submitted right after it RUNNING.
    SIGKILL: the survivor waits out the lease; SIGTERM: the leader revokes it on the way out."""
    with (
        H.local_cluster(
            ctx, "failover", agents=1, controllers=2, controller_args=c_args, agent_args=a_args
        ) as cluster,
        Client(cluster.address, timeout=30) as client,
    ):
        leader = client.describe_cluster().leader_address
        index = cluster.controller_addrs.index(leader)
        # Warm: one job through the old leader, so the agent is busy-free and connected.
        warm = client.submit_job("warm", command=["true"]).job_id
        client.wait([warm], timeout=60)
        t_kill = time.time()
        cluster.controller_procs[index].signal(sig)
        job_id = ""
        deadline = time.monotonic() + 60
        while not job_id:
            try:
                job_id = client.submit_job("after-failover", command=["true"]).job_id
            except Exception:  # noqa: BLE001 - the surviving replica may refuse for a moment
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        job = client.wait([job_id], timeout=120)[job_id]
        started = job.attempts[-1].started_at if job.attempts else job.started_at
        return started / 1000 - t_kill


def _wait_job(
    client: Client, job_id: str, cond: Callable[[types_pb2.Job], bool], timeout: float
) -> types_pb2.Job:
    deadline = time.monotonic() + timeout
    while True:
        job = client.describe_job(job_id)
        if cond(job):
            return job
        if time.monotonic() > deadline:
            raise H.ScenarioError(f"job {job_id} still {job.status} after {timeout:.0f}s")
        time.sleep(0.02)


def _profile_path(ctx: H.Context, name: str):  # noqa: ANN202
    return None if ctx.profile_dir is None else ctx.profile_dir / f"{name}.txt"


SCENARIOS: dict[str, Callable[[H.Context], dict[str, float | str]]] = {
    "submit": submit,
    "dispatch": dispatch,
    "e2e": end_to_end,
    "scale": scale,
    "recovery": recovery,
}
