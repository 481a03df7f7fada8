"""The JSON the pages load: each endpoint is a few calls of the API (through ApiCaller, as the
browser's principal) shaped for one page. Nothing here scans the jobs: lists are one page of
ListJobs, counts come from DescribeCluster (counters the view keeps)."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from controller.http.server import API
from controller.http.ui import encode
from controller.http.ui.access import caller, json_endpoint, json_response, peer
from shoal import errors
from shoal.v1 import batch_pb2, types_pb2

PAGE_SIZES = (25, 50, 100, 200)


async def _call(request: web.Request, name: str, message: Any) -> Any:
    _, principal = caller(request)
    return await request.app[API].call(name, message, principal, peer(request))


async def overview_data(request: web.Request) -> dict[str, Any]:
    cluster = await _call(request, "DescribeCluster", batch_pb2.DescribeClusterRequest())
    nodes = (await _call(request, "ListNodes", batch_pb2.ListNodesRequest())).nodes
    envs = (await _call(request, "DescribeComputeEnvironments", batch_pb2.DescribeComputeEnvironmentsRequest()))
    per_env: dict[str, dict[str, Any]] = {}
    for e in envs.compute_environments:
        per_env[e.compute_environment_name] = _env_totals(e.compute_environment_name, encode.environment(e))
    for n in nodes:
        totals = per_env.setdefault(n.compute_environment, _env_totals(n.compute_environment, None))
        status = encode.node_status_name(n.status)
        totals["nodes"][status] = totals["nodes"].get(status, 0) + 1
        if n.status == types_pb2.NODE_STATUS_LOST:
            continue  # a lost node offers nothing
        totals["vcpus"] += n.vcpus
        totals["memory_mib"] += n.memory_mib
        totals["gpus"] += n.gpus
        totals["used_vcpus"] += n.used.vcpus
        totals["used_memory_mib"] += n.used.memory_mib
        totals["used_gpus"] += n.used.gpus
        totals["running_jobs"] += len(n.running_job_ids)
    return {
        "cluster": {
            "replica_id": cluster.replica_id,
            "is_leader": cluster.is_leader,
            "leader_address": cluster.leader_address,
            "etcd_healthy": cluster.etcd_healthy,
            "view_revision": cluster.view_revision,
        },
        "statuses": encode.STATUSES,
        "queues": [{"job_queue": q.job_queue, "counts": dict(q.counts)} for q in cluster.queue_job_counts],
        "environments": [per_env[name] for name in sorted(per_env)],
        "jobs_per_minute": [
            {"minute_start": m.minute_start, "started": m.started, "finished": m.finished} for m in cluster.jobs_per_minute
        ],
        "now": int(time.time() * 1000),
    }


def _env_totals(name: str, env: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "name": name, "environment": env, "nodes": {}, "vcpus": 0.0, "memory_mib": 0, "gpus": 0,
        "used_vcpus": 0.0, "used_memory_mib": 0, "used_gpus": 0, "running_jobs": 0,
    }  # fmt: skip


@json_endpoint
async def overview(request: web.Request) -> web.StreamResponse:
    return json_response(await overview_data(request))


def _int_param(request: web.Request, name: str) -> int:
    raw = request.query.get(name, "")
    if not raw:
        return 0
    try:
        value = int(raw)
    except ValueError:
        raise errors.InvalidArgument(f"{name}: expected milliseconds since the epoch (got {raw[:40]!r})") from None
    if value < 0:
        raise errors.InvalidArgument(f"{name}: cannot be negative")
    return value


def jobs_request(request: web.Request) -> batch_pb2.ListJobsRequest:
    """The Jobs page's query string as ListJobs' filters (the CLI's `jobs list` flags)."""
    q = request.query
    status = q.get("status", "").upper()
    if status and status not in encode.STATUSES:
        raise errors.InvalidArgument(f"status: one of {', '.join(encode.STATUSES)} (got {status[:40]!r})")
    order = q.get("order", "newest")
    if order not in ("newest", "oldest"):
        raise errors.InvalidArgument(f"order: newest or oldest (got {order[:40]!r})")
    try:
        limit = int(q.get("limit", "50"))
    except ValueError:
        limit = 0
    if limit not in PAGE_SIZES:
        raise errors.InvalidArgument(f"limit: one of {', '.join(map(str, PAGE_SIZES))}")
    return batch_pb2.ListJobsRequest(
        job_queue=q.get("queue", ""),
        job_status=types_pb2.JobStatus.Value("JOB_STATUS_" + status) if status else 0,
        job_name_prefix=q.get("prefix", ""),
        created_after=_int_param(request, "after"),
        created_before=_int_param(request, "before"),
        array_job_id=q.get("array", ""),
        next_token=q.get("token", ""),
        max_results=limit,
        newest_first=order == "newest",
    )


@json_endpoint
async def jobs(request: web.Request) -> web.StreamResponse:
    page = await _call(request, "ListJobs", jobs_request(request))
    return json_response({"jobs": [encode.summary(s) for s in page.job_summary_list], "next_token": page.next_token})


@json_endpoint
async def job(request: web.Request) -> web.StreamResponse:
    job_id = request.match_info["job_id"]
    found = (await _call(request, "DescribeJobs", batch_pb2.DescribeJobsRequest(job_ids=[job_id]))).jobs
    if not found:
        raise errors.NotFound(f"job '{job_id}' does not exist")
    record = found[0]
    out = encode.job(record)
    try:
        explained = await _call(request, "ExplainJob", batch_pb2.ExplainJobRequest(job_id=job_id))
        out["why"] = list(explained.reasons)
        out["why_error"] = ""
    except errors.ShoalError as err:  # e.g. a follower answers: only the leader knows
        out["why"] = []
        out["why_error"] = err.message
    deps = [d.job_id for d in record.depends_on if d.job_id]
    if ":" in job_id:
        deps.append(job_id.rpartition(":")[0])  # the array parent
    statuses = {}
    if deps:
        described = await _call(request, "DescribeJobs", batch_pb2.DescribeJobsRequest(job_ids=deps[:100]))
        statuses = {j.job_id: encode.status_name(j.status) for j in described.jobs}
    out["related_status"] = statuses
    out["array_parent"] = job_id.rpartition(":")[0] if ":" in job_id else ""
    return json_response(out)


@json_endpoint
async def nodes(request: web.Request) -> web.StreamResponse:
    listed = await _call(request, "ListNodes", batch_pb2.ListNodesRequest(compute_environment=request.query.get("env", "")))
    return json_response({"nodes": [encode.node(n) for n in listed.nodes]})


@json_endpoint
async def queues(request: web.Request) -> web.StreamResponse:
    qs = await _call(request, "DescribeJobQueues", batch_pb2.DescribeJobQueuesRequest())
    envs = await _call(request, "DescribeComputeEnvironments", batch_pb2.DescribeComputeEnvironmentsRequest())
    cluster = await _call(request, "DescribeCluster", batch_pb2.DescribeClusterRequest())
    counts = {c.job_queue: dict(c.counts) for c in cluster.queue_job_counts}
    return json_response(
        {
            "statuses": encode.STATUSES,
            "queues": [dict(encode.queue(q), counts=counts.get(q.job_queue_name, {})) for q in qs.job_queues],
            "environments": [encode.environment(e) for e in envs.compute_environments],
        }
    )
