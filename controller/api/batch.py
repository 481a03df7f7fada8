"""shoal.v1.Batch servicer: decode, call a service, encode. No logic of its own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc

from controller.api import auth
from controller.api.errors import stream, unary
from controller.domain import jobs as J
from controller.domain import validation as V
from controller.services import sessions as S
from controller.services.replica import Replica
from shoal import errors
from shoal.v1 import agent_pb2, batch_pb2, batch_pb2_grpc, state_pb2, types_pb2

Ctx = grpc.aio.ServicerContext


def _owner() -> str | None:
    """Cancel/Terminate: a non-admin caller may stop only the jobs it submitted."""
    principal = auth.current_principal()
    return None if principal.is_admin else principal.name


class BatchServicer(batch_pb2_grpc.BatchServicer):
    def __init__(self, replica: Replica) -> None:
        self.r = replica

    # ---- jobs --------------------------------------------------------------------------

    @unary
    async def SubmitJob(self, request: batch_pb2.SubmitJobRequest, context: Ctx) -> batch_pb2.SubmitJobResponse:
        (resp,) = (await self.r.jobs.submit([request], batch=False, owner=auth.current_principal().name)).jobs
        return resp

    @unary
    async def SubmitJobs(self, request: batch_pb2.SubmitJobsRequest, context: Ctx) -> batch_pb2.SubmitJobsResponse:
        owner = auth.current_principal().name
        return await self.r.jobs.submit(request.jobs, batch=True, owner=owner)

    @unary
    async def DescribeJobs(self, request: batch_pb2.DescribeJobsRequest, context: Ctx) -> batch_pb2.DescribeJobsResponse:
        if len(request.job_ids) > 100:
            raise errors.InvalidArgument(f"job_ids: at most 100 ids per call (got {len(request.job_ids)})")
        jobs = await self.r.jobs.describe(list(request.job_ids))
        return batch_pb2.DescribeJobsResponse(jobs=[auth.redact_job(j) for j in jobs])

    @unary
    async def ListJobs(self, request: batch_pb2.ListJobsRequest, context: Ctx) -> batch_pb2.ListJobsResponse:
        if request.job_queue:
            V.validate_name(request.job_queue, "job_queue")
        if request.array_job_id:
            V.validate_job_id(request.array_job_id, "array_job_id")
        if request.job_status and request.job_status not in types_pb2.JobStatus.values():
            raise errors.InvalidArgument(f"job_status: unknown status {request.job_status}")
        return await self.r.jobs.list(request)

    @unary
    async def CancelJob(self, request: batch_pb2.CancelJobRequest, context: Ctx) -> batch_pb2.CancelJobResponse:
        V.validate_cancel(request)
        await self.r.jobs.control(request.job_id, request.reason, state_pb2.JOB_CONTROL_ACTION_CANCEL, owner=_owner())
        return batch_pb2.CancelJobResponse()

    @unary
    async def TerminateJob(self, request: batch_pb2.TerminateJobRequest, context: Ctx) -> batch_pb2.TerminateJobResponse:
        V.validate_terminate(request)
        await self.r.jobs.control(request.job_id, request.reason, state_pb2.JOB_CONTROL_ACTION_TERMINATE, owner=_owner())
        return batch_pb2.TerminateJobResponse()

    # ---- job definitions ---------------------------------------------------------------

    @unary
    async def RegisterJobDefinition(
        self, request: batch_pb2.RegisterJobDefinitionRequest, context: Ctx
    ) -> batch_pb2.RegisterJobDefinitionResponse:
        d = await self.r.catalog.register_definition(request)
        return batch_pb2.RegisterJobDefinitionResponse(job_definition_name=d.job_definition_name, revision=d.revision)

    @unary
    async def DescribeJobDefinitions(
        self, request: batch_pb2.DescribeJobDefinitionsRequest, context: Ctx
    ) -> batch_pb2.DescribeJobDefinitionsResponse:
        defs = self.r.catalog.describe_definitions(request.job_definition_name, request.status)
        return batch_pb2.DescribeJobDefinitionsResponse(job_definitions=[auth.redact_definition(d) for d in defs])

    @unary
    async def DeregisterJobDefinition(
        self, request: batch_pb2.DeregisterJobDefinitionRequest, context: Ctx
    ) -> batch_pb2.DeregisterJobDefinitionResponse:
        await self.r.catalog.deregister_definition(request.job_definition)
        return batch_pb2.DeregisterJobDefinitionResponse()

    # ---- job queues --------------------------------------------------------------------

    @unary
    async def CreateJobQueue(self, request: batch_pb2.CreateJobQueueRequest, context: Ctx) -> types_pb2.JobQueue:
        return await self.r.catalog.create_queue(request)

    @unary
    async def UpdateJobQueue(self, request: batch_pb2.UpdateJobQueueRequest, context: Ctx) -> types_pb2.JobQueue:
        return await self.r.catalog.update_queue(request)

    @unary
    async def DeleteJobQueue(self, request: batch_pb2.DeleteJobQueueRequest, context: Ctx) -> batch_pb2.DeleteJobQueueResponse:
        await self.r.catalog.delete_queue(request.job_queue_name)
        return batch_pb2.DeleteJobQueueResponse()

    @unary
    async def DescribeJobQueues(
        self, request: batch_pb2.DescribeJobQueuesRequest, context: Ctx
    ) -> batch_pb2.DescribeJobQueuesResponse:
        return batch_pb2.DescribeJobQueuesResponse(job_queues=self.r.catalog.describe_queues(list(request.job_queues)))

    # ---- compute environments ----------------------------------------------------------

    @unary
    async def CreateComputeEnvironment(
        self, request: batch_pb2.CreateComputeEnvironmentRequest, context: Ctx
    ) -> types_pb2.ComputeEnvironment:
        return await self.r.catalog.create_env(request)

    @unary
    async def UpdateComputeEnvironment(
        self, request: batch_pb2.UpdateComputeEnvironmentRequest, context: Ctx
    ) -> types_pb2.ComputeEnvironment:
        return await self.r.catalog.update_env(request)

    @unary
    async def DeleteComputeEnvironment(
        self, request: batch_pb2.DeleteComputeEnvironmentRequest, context: Ctx
    ) -> batch_pb2.DeleteComputeEnvironmentResponse:
        await self.r.catalog.delete_env(request.compute_environment_name)
        return batch_pb2.DeleteComputeEnvironmentResponse()

    @unary
    async def DescribeComputeEnvironments(
        self, request: batch_pb2.DescribeComputeEnvironmentsRequest, context: Ctx
    ) -> batch_pb2.DescribeComputeEnvironmentsResponse:
        envs = self.r.catalog.describe_envs(list(request.compute_environments))
        return batch_pb2.DescribeComputeEnvironmentsResponse(compute_environments=envs)

    # ---- scheduling policies -----------------------------------------------------------

    @unary
    async def CreateSchedulingPolicy(
        self, request: batch_pb2.CreateSchedulingPolicyRequest, context: Ctx
    ) -> types_pb2.SchedulingPolicy:
        return await self.r.catalog.create_policy(request)

    @unary
    async def UpdateSchedulingPolicy(
        self, request: batch_pb2.UpdateSchedulingPolicyRequest, context: Ctx
    ) -> types_pb2.SchedulingPolicy:
        return await self.r.catalog.update_policy(request)

    @unary
    async def DeleteSchedulingPolicy(
        self, request: batch_pb2.DeleteSchedulingPolicyRequest, context: Ctx
    ) -> batch_pb2.DeleteSchedulingPolicyResponse:
        await self.r.catalog.delete_policy(request.name)
        return batch_pb2.DeleteSchedulingPolicyResponse()

    @unary
    async def DescribeSchedulingPolicies(
        self, request: batch_pb2.DescribeSchedulingPoliciesRequest, context: Ctx
    ) -> batch_pb2.DescribeSchedulingPoliciesResponse:
        policies = self.r.catalog.describe_policies(list(request.names))
        return batch_pb2.DescribeSchedulingPoliciesResponse(scheduling_policies=policies)

    # ---- nodes -------------------------------------------------------------------------

    @unary
    async def ListNodes(self, request: batch_pb2.ListNodesRequest, context: Ctx) -> batch_pb2.ListNodesResponse:
        view, leader = self.r.view, self.r.leader
        response = batch_pb2.ListNodesResponse()
        mono = time.monotonic()
        for node_id, stored in sorted(view.data.nodes.items()):
            if request.compute_environment and stored.compute_environment != request.compute_environment:
                continue
            node = response.nodes.add()
            node.CopyFrom(stored)
            # Read-time fields (never stored): what runs there and, on the leader, how fresh
            # the agent's last message is.
            active = sorted((j for j in view.active_jobs_on(node_id) if j.status in J.ACTIVE), key=lambda j: j.job_id)
            node.running_job_ids.extend(j.job_id for j in active)
            node.used.vcpus = sum(j.container.resources.vcpus for j in active)
            node.used.memory_mib = sum(j.container.resources.memory_mib for j in active)
            node.used.gpus = sum(j.container.resources.gpus for j in active)
            if stored.gpus:  # GPUs free: not stored, worked out from the attempts placed there
                node.gpus_free = max(0, stored.gpus - node.used.gpus)
            session = leader.sessions.get(node_id) if leader is not None else None
            if session is not None and not session.closed:
                node.heartbeat_age_ms = max(0, int((mono - session.last_seen) * 1000))
        return response

    @unary
    async def DrainNode(self, request: batch_pb2.DrainNodeRequest, context: Ctx) -> batch_pb2.DrainNodeResponse:
        V.validate_node_id(request.node_id, "node_id")
        if len(request.reason) > 1024:
            raise errors.InvalidArgument("reason: at most 1024 characters")
        if request.interrupt and request.deadline_seconds:
            raise errors.InvalidArgument("deadline_seconds: not with interrupt (interrupt means now)")
        node = await self.r.require_leader().drain(
            request.node_id, interrupt=request.interrupt, deadline_seconds=request.deadline_seconds, reason=request.reason
        )
        return batch_pb2.DrainNodeResponse(node=node)

    @unary
    async def UndrainNode(self, request: batch_pb2.UndrainNodeRequest, context: Ctx) -> batch_pb2.UndrainNodeResponse:
        V.validate_node_id(request.node_id, "node_id")
        return batch_pb2.UndrainNodeResponse(node=await self.r.require_leader().undrain(request.node_id))

    @unary
    async def ExplainJob(self, request: batch_pb2.ExplainJobRequest, context: Ctx) -> batch_pb2.ExplainJobResponse:
        V.validate_job_id(request.job_id, "job_id")
        leader = self.r.require_leader()
        jobs = await self.r.jobs.describe([request.job_id])
        if not jobs:
            raise errors.NotFound(f"job_id: job '{request.job_id}' does not exist")
        job = jobs[0]
        return batch_pb2.ExplainJobResponse(job_id=job.job_id, status=job.status, reasons=leader.explain(job))

    @unary
    async def DescribeCluster(
        self, request: batch_pb2.DescribeClusterRequest, context: Ctx
    ) -> batch_pb2.DescribeClusterResponse:
        leader = self.r.leader
        response = batch_pb2.DescribeClusterResponse(
            replica_id=self.r.replica_id,
            replica_address=self.r.config.advertised,
            is_leader=leader is not None,
            leader_address=self.r.leader_address,
            epoch=leader.epoch if leader is not None else 0,
            view_revision=self.r.view.revision,
            etcd_healthy=self.r.view.healthy,
        )
        names = {v: k.removeprefix("JOB_STATUS_") for k, v in types_pb2.JobStatus.items() if v}
        for queue, counts in sorted(self.r.view.queue_status_counts().items()):
            entry = response.queue_job_counts.add(job_queue=queue)
            for status, name in names.items():
                entry.counts[name] = counts.get(status, 0)
        for minute_start, started, finished in self.r.view.jobs_per_minute(int(time.time() * 1000)):
            response.jobs_per_minute.add(minute_start=minute_start, started=started, finished=finished)
        return response

    # ---- streams -----------------------------------------------------------------------

    @stream
    async def WatchJobs(self, request: batch_pb2.WatchJobsRequest, context: Ctx) -> AsyncIterator[batch_pb2.JobEvent]:
        wanted = set(request.job_ids)
        for job_id in wanted:
            V.validate_job_id(job_id, "job_ids")
        queue: asyncio.Queue[tuple[types_pb2.Job, int]] = asyncio.Queue()

        def matches(job: types_pb2.Job) -> bool:
            return (not wanted or job.job_id in wanted) and (not request.job_queue or job.job_queue == request.job_queue)

        def listener(job: types_pb2.Job, revision: int) -> None:
            if matches(job):
                queue.put_nowait((job, revision))

        view = self.r.view
        view.add_job_listener(listener)
        try:
            if request.changes_only:
                current = []
            elif wanted:
                current = await self.r.jobs.describe(sorted(wanted))
                missing = wanted - {j.job_id for j in current}
                if missing:
                    raise errors.NotFound(f"job_ids: job '{sorted(missing)[0]}' does not exist")
            else:
                current = [e.job for e in view.data.jobs.values() if matches(e.job)]
            revision = view.revision
            for job in current:
                yield batch_pb2.JobEvent(job=auth.redact_job(job), revision=revision)
            while True:
                job, revision = await queue.get()
                yield batch_pb2.JobEvent(job=auth.redact_job(job), revision=revision)
        finally:
            view.remove_job_listener(listener)

    @stream
    async def GetJobLogs(self, request: batch_pb2.GetJobLogsRequest, context: Ctx) -> AsyncIterator[batch_pb2.LogChunk]:
        V.validate_job_id(request.job_id, "job_id")
        leader = self.r.require_leader()
        job = (await self.r.jobs.describe([request.job_id]) or [None])[0]
        if job is None:
            raise errors.NotFound(f"job_id: job '{request.job_id}' does not exist")
        if request.follow and request.attempt == 0:
            job = await self._wait_started(job)
        latest = job.current.attempt if job.status in J.ACTIVE else len(job.attempts)
        attempt = request.attempt or latest
        if latest == 0:
            raise errors.FailedPrecondition(
                f"job '{job.job_id}' has not started yet (status {J.status_name(job.status)}); no logs to show"
            )
        if attempt > latest:
            raise errors.NotFound(f"attempt: job '{job.job_id}' has {latest} attempt(s), not {attempt}")
        running = job.status in J.ACTIVE and attempt == job.current.attempt
        node_id = job.node_id if running else job.attempts[attempt - 1].node_id
        session = leader.sessions.get(node_id)
        if session is None or not session.registered:
            raise errors.Unavailable(
                f"node '{node_id}' that ran attempt {attempt} of job '{job.job_id}' is not connected; "
                "its logs cannot be read until it is back"
            )
        request_id = S.next_request_id()
        inbox: asyncio.Queue[agent_pb2.LogData] = asyncio.Queue()
        session.log_requests[request_id] = inbox
        session.send(
            agent_pb2.ControllerMessage(
                read_logs=agent_pb2.ReadLogs(
                    request_id=request_id, job_id=job.job_id, attempt=attempt, follow=request.follow
                )
            )
        )
        done = False
        try:
            while True:
                data = await inbox.get()
                if data.data:
                    yield batch_pb2.LogChunk(data=data.data, attempt=attempt, node_id=node_id)
                if data.eof:
                    done = True
                    if data.error:
                        raise errors.Unavailable(data.error)
                    return
        finally:
            session.log_requests.pop(request_id, None)
            if not done:
                session.send(agent_pb2.ControllerMessage(cancel_logs=agent_pb2.CancelLogs(request_id=request_id)))

    async def _wait_started(self, job: types_pb2.Job) -> types_pb2.Job:
        """With --follow on a job that has not started: wait until it starts or ends."""
        if job.status in J.ACTIVE or job.status in J.FINAL or job.attempts:
            return job
        changed = asyncio.Event()
        latest = {"job": job}

        def listener(j: types_pb2.Job, _rev: int) -> None:
            if j.job_id == job.job_id:
                latest["job"] = j
                changed.set()

        self.r.view.add_job_listener(listener)
        try:
            while not (latest["job"].status in J.ACTIVE or latest["job"].status in J.FINAL):
                changed.clear()
                await changed.wait()
            return latest["job"]
        finally:
            self.r.view.remove_job_listener(listener)
