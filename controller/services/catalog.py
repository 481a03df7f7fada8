"""Job queues, compute environments and job definitions: served by any replica.

These change rarely, so each change is a read-modify-write guarded by the key's mod revision
(compare-and-swap). A failed compare means the write was NOT applied, so it is safe to re-read
and try again; an RPC failure is not retried (its outcome is unknown).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from controller.domain import jobs as J
from controller.domain import policies as P
from controller.domain import validation as V
from controller.services.view import ClusterView
from controller.store.etcd import Compare, EtcdClient, Op
from controller.store.keys import Keys
from shoal import errors
from shoal.v1 import batch_pb2, types_pb2

M = TypeVar("M", types_pb2.JobQueue, types_pb2.ComputeEnvironment, types_pb2.JobDefinition, types_pb2.SchedulingPolicy)
_CAS_ATTEMPTS = 5


def _now_ms() -> int:
    return int(time.time() * 1000)


class CatalogService:
    def __init__(self, client: EtcdClient, keys: Keys, view: ClusterView) -> None:
        self.client = client
        self.keys = keys
        self.view = view

    # ---- generic helpers ---------------------------------------------------------------

    async def _create(
        self, key: bytes, record: M, what: str, requires: tuple[bytes, str] | None = None
    ) -> M:
        """Create `key`; with `requires` (key, its description), only while that key exists
        (checked in the same transaction)."""
        compares = [Compare.create_revision(key, "==", 0)]
        if requires is not None:
            compares.append(Compare.create_revision(requires[0], ">", 0))
        result = await self.client.txn(compares, [Op.put(key, record.SerializeToString())])
        if not result.succeeded:
            if requires is not None and await self.client.get(requires[0]) is None:
                raise errors.NotFound(f"{requires[1]} was deleted meanwhile; {what} was not created")
            raise errors.AlreadyExists(f"{what} already exists")
        await self.view.wait_for(result.revision)
        return record

    async def _update(self, key: bytes, cls: type[M], what: str, change: Callable[[M], Awaitable[None] | None]) -> M:
        for _ in range(_CAS_ATTEMPTS):
            kv = await self.client.get(key)
            if kv is None:
                raise errors.NotFound(f"{what} does not exist")
            record = cls.FromString(kv.value)
            outcome = change(record)
            if outcome is not None:
                await outcome
            result = await self.client.txn(
                [Compare.mod_revision(key, "==", kv.mod_revision)], [Op.put(key, record.SerializeToString())]
            )
            if result.succeeded:
                await self.view.wait_for(result.revision)
                return record
        raise errors.Conflict(f"{what} is being changed concurrently; try again")

    async def _delete(
        self, key: bytes, cls: type[M], what: str, check: Callable[[M], None], also: tuple[bytes, ...] = ()
    ) -> None:
        """Delete `key` (and the keys `also`, in the same transaction) once `check` passes."""
        for _ in range(_CAS_ATTEMPTS):
            kv = await self.client.get(key)
            if kv is None:
                raise errors.NotFound(f"{what} does not exist")
            check(cls.FromString(kv.value))
            ops = [Op.delete(key)] + [Op.delete(k) for k in also]
            result = await self.client.txn([Compare.mod_revision(key, "==", kv.mod_revision)], ops)
            if result.succeeded:
                await self.view.wait_for(result.revision)
                return
        raise errors.Conflict(f"{what} is being changed concurrently; try again")

    async def _envs_exist(self, names: list[str], field: str) -> None:
        missing = [n for n in names if n not in self.view.data.envs]
        if missing:
            await self.view.sync()
            missing = [n for n in names if n not in self.view.data.envs]
        if missing:
            raise errors.NotFound(f"{field}: compute environment '{missing[0]}' does not exist")

    # ---- job queues --------------------------------------------------------------------

    async def create_queue(self, req: batch_pb2.CreateJobQueueRequest) -> types_pb2.JobQueue:
        V.validate_create_job_queue(req)
        await self._envs_exist([o.compute_environment for o in req.compute_environment_order], "compute_environment_order")
        if req.scheduling_policy:
            await self._policy_exists(req.scheduling_policy)
        queue = types_pb2.JobQueue(
            job_queue_name=req.job_queue_name,
            state=req.state or types_pb2.ENTITY_STATE_ENABLED,
            priority=req.priority,
            compute_environment_order=req.compute_environment_order,
            created_at=_now_ms(),
            scheduling_policy=req.scheduling_policy,
        )
        requires = (
            (self.keys.policy(req.scheduling_policy), f"scheduling_policy: scheduling policy '{req.scheduling_policy}'")
            if req.scheduling_policy
            else None
        )
        return await self._create(
            self.keys.queue(req.job_queue_name), queue, f"job queue '{req.job_queue_name}'", requires
        )

    async def update_queue(self, req: batch_pb2.UpdateJobQueueRequest) -> types_pb2.JobQueue:
        V.validate_update_job_queue(req)
        if req.compute_environment_order:
            await self._envs_exist([o.compute_environment for o in req.compute_environment_order], "compute_environment_order")
        if req.scheduling_policy:
            await self._policy_exists(req.scheduling_policy)

        def change(q: types_pb2.JobQueue) -> None:
            if req.scheduling_policy and req.scheduling_policy != q.scheduling_policy:
                if not q.scheduling_policy:
                    # Its queued jobs have no share identifiers (AWS: FIFO stays FIFO).
                    raise errors.FailedPrecondition(
                        f"scheduling_policy: job queue '{q.job_queue_name}' is a FIFO queue; only a "
                        "fair-share queue's policy can be replaced (create a new queue instead)"
                    )
                q.scheduling_policy = req.scheduling_policy
            if req.state:
                q.state = req.state
            if req.HasField("priority"):
                q.priority = req.priority
            if req.compute_environment_order:
                del q.compute_environment_order[:]
                q.compute_environment_order.extend(req.compute_environment_order)

        return await self._update(self.keys.queue(req.job_queue_name), types_pb2.JobQueue, f"job queue '{req.job_queue_name}'", change)

    async def delete_queue(self, name: str) -> None:
        V.validate_name(name, "job_queue_name")

        def check(q: types_pb2.JobQueue) -> None:
            if q.state != types_pb2.ENTITY_STATE_DISABLED:
                raise errors.FailedPrecondition(f"job queue '{name}' is ENABLED; disable it before deleting it")
            active = sum(1 for e in self.view.data.jobs.values() if e.job.job_queue == name and e.job.status not in J.FINAL)
            if active:
                raise errors.FailedPrecondition(
                    f"job queue '{name}' still has {active} unfinished jobs; cancel or terminate them first"
                )

        # Its fair-share usage goes with it (no attempt of it is left to charge: it has no
        # unfinished jobs), so a new queue of the same name starts from nothing.
        await self._delete(
            self.keys.queue(name), types_pb2.JobQueue, f"job queue '{name}'", check, also=(self.keys.usage(name),)
        )

    async def _policy_exists(self, name: str) -> None:
        if name not in self.view.data.policies:
            await self.view.sync()
        if name not in self.view.data.policies:
            raise errors.NotFound(f"scheduling_policy: scheduling policy '{name}' does not exist")

    def describe_queues(self, names: list[str]) -> list[types_pb2.JobQueue]:
        queues = self.view.data.queues
        chosen = names or sorted(queues)
        return [queues[n] for n in chosen if n in queues]

    # ---- compute environments ----------------------------------------------------------

    async def create_env(self, req: batch_pb2.CreateComputeEnvironmentRequest) -> types_pb2.ComputeEnvironment:
        V.validate_create_compute_environment(req)
        env = types_pb2.ComputeEnvironment(
            compute_environment_name=req.compute_environment_name,
            type=req.type or types_pb2.COMPUTE_ENVIRONMENT_TYPE_UNMANAGED,
            state=req.state or types_pb2.ENTITY_STATE_ENABLED,
            min_vcpus=req.min_vcpus,
            desired_vcpus=req.desired_vcpus,
            max_vcpus=req.max_vcpus,
            created_at=_now_ms(),
        )
        if req.HasField("provisioner"):
            env.provisioner.CopyFrom(req.provisioner)
        return await self._create(
            self.keys.env(req.compute_environment_name), env, f"compute environment '{req.compute_environment_name}'"
        )

    async def update_env(self, req: batch_pb2.UpdateComputeEnvironmentRequest) -> types_pb2.ComputeEnvironment:
        V.validate_update_compute_environment(req)

        def change(e: types_pb2.ComputeEnvironment) -> None:
            if req.state:
                e.state = req.state
            for name in ("min_vcpus", "desired_vcpus", "max_vcpus"):
                if req.HasField(name):
                    setattr(e, name, getattr(req, name))
            if e.type == types_pb2.COMPUTE_ENVIRONMENT_TYPE_MANAGED:
                if req.HasField("provisioner"):
                    e.provisioner.CopyFrom(req.provisioner)
                if e.min_vcpus > e.max_vcpus:
                    raise errors.InvalidArgument(f"min_vcpus: must be <= max_vcpus ({e.min_vcpus} > {e.max_vcpus})")
                V.validate_managed_environment(e.max_vcpus, e.provisioner)
                # The controller sets desired_vcpus from the queued work; keep it in range.
                e.desired_vcpus = max(e.min_vcpus, min(e.desired_vcpus, e.max_vcpus))
                return
            if req.HasField("provisioner"):
                raise errors.InvalidArgument("provisioner: only MANAGED compute environments have a provisioner")
            if e.max_vcpus and not (e.min_vcpus <= e.desired_vcpus <= e.max_vcpus or e.desired_vcpus == 0):
                raise errors.InvalidArgument(
                    f"min_vcpus <= desired_vcpus <= max_vcpus must hold (got {e.min_vcpus}, {e.desired_vcpus}, {e.max_vcpus})"
                )

        name = req.compute_environment_name
        return await self._update(self.keys.env(name), types_pb2.ComputeEnvironment, f"compute environment '{name}'", change)

    async def delete_env(self, name: str) -> None:
        V.validate_name(name, "compute_environment_name")

        def check(e: types_pb2.ComputeEnvironment) -> None:
            if e.state != types_pb2.ENTITY_STATE_DISABLED:
                raise errors.FailedPrecondition(f"compute environment '{name}' is ENABLED; disable it before deleting it")
            users = sorted(
                q.job_queue_name
                for q in self.view.data.queues.values()
                if any(o.compute_environment == name for o in q.compute_environment_order)
            )
            if users:
                raise errors.FailedPrecondition(
                    f"compute environment '{name}' is used by job queue(s) {', '.join(users)}; remove it from them first"
                )

        await self._delete(self.keys.env(name), types_pb2.ComputeEnvironment, f"compute environment '{name}'", check)

    def describe_envs(self, names: list[str]) -> list[types_pb2.ComputeEnvironment]:
        envs = self.view.data.envs
        chosen = names or sorted(envs)
        return [envs[n] for n in chosen if n in envs]

    # ---- job definitions ---------------------------------------------------------------

    async def register_definition(self, req: batch_pb2.RegisterJobDefinitionRequest) -> types_pb2.JobDefinition:
        V.validate_register_job_definition(req)
        name = req.job_definition_name
        for _ in range(_CAS_ATTEMPTS):
            kvs, _rev = await self.client.get_prefix(self.keys.definition_prefix(name))
            latest = 0
            for kv in kvs:
                latest = max(latest, types_pb2.JobDefinition.FromString(kv.value).revision)
            definition = types_pb2.JobDefinition(
                job_definition_name=name,
                revision=latest + 1,
                status="ACTIVE",
                container_properties=req.container_properties,
                retry_strategy=req.retry_strategy,
                timeout=req.timeout,
                created_at=_now_ms(),
                scheduling_priority=req.scheduling_priority,
            )
            definition.parameters.update(req.parameters)
            definition.tags.update(req.tags)
            if req.HasField("node_properties"):
                definition.node_properties.CopyFrom(req.node_properties)
            key = self.keys.definition(name, latest + 1)
            result = await self.client.txn(
                [Compare.create_revision(key, "==", 0)], [Op.put(key, definition.SerializeToString())]
            )
            if result.succeeded:
                await self.view.wait_for(result.revision)
                return definition
        raise errors.Conflict(f"job definition '{name}' is being registered concurrently; try again")

    async def deregister_definition(self, ref: str) -> None:
        name, revision = V.parse_definition_ref(ref, "job_definition")
        if revision is None:
            raise errors.InvalidArgument("job_definition: give the revision to deregister, as name:revision")

        def change(d: types_pb2.JobDefinition) -> None:
            d.status = "INACTIVE"

        await self._update(self.keys.definition(name, revision), types_pb2.JobDefinition, f"job definition '{ref}'", change)

    def describe_definitions(self, name: str, status: str) -> list[types_pb2.JobDefinition]:
        if status and status not in ("ACTIVE", "INACTIVE"):
            raise errors.InvalidArgument(f"status: must be ACTIVE or INACTIVE (got {status!r})")
        result = [
            d
            for (n, _rev), d in sorted(self.view.data.definitions.items())
            if (not name or n == name) and (not status or d.status == status)
        ]
        return result


    # ---- scheduling policies -----------------------------------------------------------

    async def create_policy(self, req: batch_pb2.CreateSchedulingPolicyRequest) -> types_pb2.SchedulingPolicy:
        P.validate_create_scheduling_policy(req)
        policy = types_pb2.SchedulingPolicy(
            name=req.name, fairshare_policy=req.fairshare_policy, created_at=_now_ms()
        )
        policy.tags.update(req.tags)
        return await self._create(self.keys.policy(req.name), policy, f"scheduling policy '{req.name}'")

    async def update_policy(self, req: batch_pb2.UpdateSchedulingPolicyRequest) -> types_pb2.SchedulingPolicy:
        P.validate_update_scheduling_policy(req)

        def change(policy: types_pb2.SchedulingPolicy) -> None:
            policy.fairshare_policy.CopyFrom(req.fairshare_policy)

        return await self._update(
            self.keys.policy(req.name), types_pb2.SchedulingPolicy, f"scheduling policy '{req.name}'", change
        )

    async def delete_policy(self, name: str) -> None:
        V.validate_name(name, "name")

        def check(_policy: types_pb2.SchedulingPolicy) -> None:
            users = sorted(q.job_queue_name for q in self.view.data.queues.values() if q.scheduling_policy == name)
            if users:
                raise errors.FailedPrecondition(
                    f"scheduling policy '{name}' is used by job queue(s) {', '.join(users)}; delete them first"
                )

        await self.view.sync()  # a queue naming it may have just been created elsewhere
        await self._delete(self.keys.policy(name), types_pb2.SchedulingPolicy, f"scheduling policy '{name}'", check)

    def describe_policies(self, names: list[str]) -> list[types_pb2.SchedulingPolicy]:
        for i, name in enumerate(names):
            V.validate_name(name, f"names[{i}]")
        policies = self.view.data.policies
        chosen = names or sorted(policies)
        return [policies[n] for n in chosen if n in policies]
