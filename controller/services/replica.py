"""One controller replica: its view, its services, and its bid for leadership.

Every replica serves reads and accepts submissions; the one that wins the election also runs
the leader loop and owns agent sessions until it loses the lease (or its local deadline
passes), then campaigns again with fresh state.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from controller.config import ControllerConfig
from controller.services.catalog import CatalogService
from controller.services.jobs import JobService
from controller.services.leader import LeaderLoop
from controller.services.provisioning import ScalingLoop
from controller.services.view import ClusterView
from controller.store.election import Election
from controller.store.etcd import EtcdClient, EtcdTls
from controller.store.keys import Keys
from shoal import errors, log
from shoal.v1 import state_pb2

logger = log.get("controller.replica")


class Replica:
    def __init__(self, config: ControllerConfig) -> None:
        self.config = config
        tls = EtcdTls(**config.etcd_tls) if config.etcd_tls else None
        self.client = EtcdClient(
            list(config.etcd_endpoints), timeout=config.etcd_timeout, tls=tls, max_txn_ops=config.max_txn_ops
        )
        self.keys = Keys(config.prefix)
        self.view = ClusterView(self.client, self.keys)
        self.jobs = JobService(self.client, self.keys, self.view)
        self.catalog = CatalogService(self.client, self.keys, self.view)
        self.leader: LeaderLoop | None = None
        # Sizes MANAGED environments while this replica leads (`scaling.status` for ExplainJob).
        self.scaling: ScalingLoop | None = None
        self.leader_address = ""
        # Set (and replaced) whenever who leads may have changed: agents held by a follower
        # during a failover wait on it (`wait_for_leader`).
        self._leader_changed = asyncio.Event()
        self.replica_id = config.replica_id or config.advertised
        record = state_pb2.LeaderRecord(
            replica_id=self.replica_id, address=config.advertised, elected_at=int(time.time() * 1000)
        )
        self.election = Election(self.client, self.keys.leader, record.SerializeToString(), ttl=config.lease_ttl)
        self._tasks: list[asyncio.Task[None]] = []
        self.stopping = False

    async def start(self) -> None:
        self.view.start()
        self._tasks.append(asyncio.create_task(self._lead_forever(), name="lead"))
        self._tasks.append(asyncio.create_task(self._observe_leader(), name="observe-leader"))
        self._tasks.append(asyncio.create_task(self._probe_etcd(), name="probe-etcd"))

    async def stop(self) -> None:
        self.stopping = True
        self._note_leader_change()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.view.stop()
        await self.client.close()

    def require_leader(self) -> LeaderLoop:
        leader = self.leader
        if leader is None:
            where = f"; the leader is {self.leader_address}" if self.leader_address else "; no leader is elected yet"
            raise errors.NotLeader(f"this replica ({self.config.advertised}) is not the leader{where}", self.leader_address)
        return leader

    def _note_leader_change(self) -> None:
        self._leader_changed.set()
        self._leader_changed = asyncio.Event()

    def _set_leader_address(self, address: str) -> None:
        if address != self.leader_address:
            self.leader_address = address
            self._note_leader_change()

    async def wait_for_leader(self, stale: str, timeout: float) -> None:
        """Return once this replica leads or knows a leader other than `stale` ('' = none), or
        after `timeout` seconds. A follower holds an agent's Connect here during a failover, so
        the agent is served (or redirected) the moment a new leader exists instead of backing
        off between retries while the old leader's lease runs out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        # Our own address in the leader record before `self.leader` is set means we won and are
        # still catching up with the previous term's writes: keep holding until we serve.
        while self.leader is None and self.leader_address in ("", stale, self.config.advertised) and not self.stopping:
            left = deadline - loop.time()
            if left <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._leader_changed.wait(), left)

    async def _lead_forever(self) -> None:
        backoff = 0.1
        while not self.stopping:
            try:
                await self.view.ready.wait()
                leadership = await self.election.campaign()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - etcd unreachable: keep trying
                logger.warning("election.failed", error=str(err))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            backoff = 0.1
            log_ = logger.bind(epoch=leadership.epoch)
            log_.info("leader.elected", replica=self.replica_id)
            loop = LeaderLoop(
                config=self.config, client=self.client, keys=self.keys, view=self.view, leadership=leadership
            )
            scaling = ScalingLoop(leader=loop, view=self.view, config=self.config)
            scaling_task: asyncio.Task[None] | None = None
            try:
                # Everything the previous leader wrote precedes our key's creation (it was
                # fenced on its own key, which had to be gone for ours to be created).
                await self.view.wait_for(leadership.epoch, timeout=max(self.config.lease_ttl, 5))
                self.leader = loop
                self.scaling = scaling
                loop.scaling_status = scaling.status
                self.leader_address = self.config.advertised
                self._note_leader_change()
                scaling_task = asyncio.create_task(scaling.run(), name="scaling")
                await loop.run()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a bug must not leave a zombie leader behind
                log_.exception("leader.crashed")
            finally:
                self.leader = None
                self.scaling = None
                if self.leader_address == self.config.advertised:
                    self.leader_address = ""
                self._note_leader_change()
                if scaling_task is not None:
                    scaling_task.cancel()
                    await asyncio.wait([scaling_task], timeout=5)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(leadership.resign(), 2)
                log_.warning("leader.stepped_down")

    async def _probe_etcd(self, interval: float = 1.0) -> None:
        """Health follows etcd: a watch on a dead member can take many seconds to notice, a
        one-key read with a short deadline does not. Serving reads from a view that can no
        longer be refreshed is what NOT_SERVING warns load balancers about."""
        while True:
            try:
                await asyncio.wait_for(self.client.revision(), timeout=max(interval, 1.0))
                ok = True
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - any failure means "not healthy now"
                ok = False
            if ok != self.view.healthy and self.view.ready.is_set():
                logger.warning("etcd.health", healthy=ok) if not ok else logger.info("etcd.health", healthy=ok)
                self.view.healthy = ok
            await asyncio.sleep(interval)

    async def _observe_leader(self) -> None:
        while True:
            try:
                async for current in self.election.observe():
                    if current is None:
                        self._set_leader_address("")
                    else:
                        value, _epoch = current
                        self._set_leader_address(state_pb2.LeaderRecord.FromString(value).address)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001
                logger.debug("leader.observe_failed", error=str(err))
                await asyncio.sleep(0.5)
