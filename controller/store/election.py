"""Leader election on etcd, with fencing and a local deadline.

A candidate becomes leader by creating the leader key, attached to its lease, in a transaction
that requires the key not to exist (create_revision == 0). The key's create revision is the
leader's *epoch*: it grows with every election, and every leader write carries
`Compare.create_revision(key, "==", epoch)` (`Leadership.guard()`), so a deposed leader's writes
fail in etcd whatever it believes (etcd's own concurrency.Election does the same).

The lease alone cannot be trusted for safety (a lease can outlive its TTL across an etcd leader
change) but it bounds how long a leader that lost contact goes on acting: after every
*acknowledged* keepalive the leader may act until

    (monotonic time the keepalive request was sent) + granted TTL - margin,  margin = max(0.5 s, TTL/5)

and a watchdog sets `Leadership.lost` at that instant even if etcd never answers again. `lost`
is also set when a keepalive reports the lease gone or the leader key is deleted or replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

from controller.store.etcd import Compacted, Compare, EtcdClient, KeyValue, Op, WriteOutcomeUnknown
from shoal import log
from shoal.errors import InvalidArgument, ShoalError, Unavailable

_log = log.get("shoal.store.election")

#: etcd grants no lease shorter than about 2 s (1.5 x its election timeout, rounded up).
MIN_TTL = 2
#: Longest the watchdog sleeps between looks at the clock (the clock may be a fake in tests).
_WATCHDOG_POLL = 0.25


def deadline_margin(ttl: int) -> float:
    """How long before its lease's TTL runs out a leader stops acting on its own."""
    return max(0.5, ttl / 5)


class Leadership:
    """Proof of being leader, valid while `valid()` is True. Created by `Election.campaign`.

    Put `guard()` in every leader write. Stop acting as leader as soon as `lost` is set or
    `valid()` is False, and call `resign()` in every case (it is idempotent and best effort).
    """

    def __init__(
        self,
        client: EtcdClient,
        key: bytes,
        value: bytes,
        epoch: int,
        lease_id: int,
        ttl: int,
        deadline: float,
        clock: Callable[[], float],
    ) -> None:
        self.key = key
        self.value = value
        #: Create revision of the leader key: unique per term and increasing across terms.
        self.epoch = epoch
        self.lease_id = lease_id
        #: Set when leadership is lost or can no longer be trusted; never cleared.
        self.lost = asyncio.Event()
        self.ttl = ttl
        self._client = client
        self._clock = clock
        self._deadline = deadline
        self._margin = deadline_margin(ttl)
        self._resigned = False
        self._task = asyncio.create_task(self._run(), name=f"leadership-{lease_id:x}")

    def __repr__(self) -> str:
        return (
            f"Leadership(key={self.key!r}, epoch={self.epoch}, lease={self.lease_id:x}, valid={self.valid()})"
        )

    @property
    def deadline(self) -> float:
        """Clock time after which this leader must not act, unless a keepalive moves it."""
        return self._deadline

    def guard(self) -> Compare:
        """The fencing compare: include it in EVERY leader write."""
        return Compare.create_revision(self.key, "==", self.epoch)

    def valid(self) -> bool:
        return not self.lost.is_set() and self._clock() < self._deadline

    async def resign(self) -> None:
        """Step down: stop the keepalive, delete the key if still ours, revoke the lease.

        Best effort: if etcd cannot be reached the lease expires by itself within its TTL.
        """
        self._lose("resigned")
        if self._resigned:
            return
        self._resigned = True
        await self._stop_tasks()
        try:
            await self._client.txn([self.guard()], [Op.delete(self.key)])
        except ShoalError as e:
            _log.warning("could not delete the leader key while resigning", key=self.key, error=str(e))
        try:
            await self._client.lease_revoke(self.lease_id)
        except ShoalError as e:
            _log.warning(
                "could not revoke the leader lease while resigning", lease=self.lease_id, error=str(e)
            )

    # ---------------------------------------------------------------- background tasks

    def _lose(self, reason: str) -> None:
        if not self.lost.is_set():
            if not self._resigned and reason != "resigned":
                _log.warning("leadership lost", key=self.key, epoch=self.epoch, reason=reason)
            self.lost.set()

    async def _stop_tasks(self) -> None:
        self._task.cancel()
        await asyncio.wait([self._task])  # unlike `await task`, leaves our own cancellation alone

    async def _run(self) -> None:
        """Keep the lease alive, enforce the deadline, watch the key; all stop once `lost` is set
        (by them, by resign(), or by the caller)."""
        tasks = [
            asyncio.create_task(self._keepalive_loop(), name=f"lease-keepalive-{self.lease_id:x}"),
            asyncio.create_task(self._watchdog(), name=f"leader-deadline-{self.lease_id:x}"),
            asyncio.create_task(self._watch_key(), name=f"leader-key-watch-{self.lease_id:x}"),
        ]
        try:
            await self.lost.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _keepalive_loop(self) -> None:
        interval = self.ttl / 3
        while not self.lost.is_set():
            await asyncio.sleep(interval)
            sent = self._clock()
            try:
                remaining = await self._client.lease_keepalive(self.lease_id, attempt_timeout=interval)
            except Unavailable as e:
                # Keep trying: the watchdog ends the term if no keepalive is acked in time.
                _log.info("leader keepalive failed", lease=self.lease_id, error=e.message)
                continue
            except ShoalError as e:  # e.g. permission denied: the lease cannot be kept
                self._lose(f"keepalive refused: {e.message}")
                return
            if remaining <= 0:
                self._lose("lease expired or revoked")
                return
            self._deadline = max(self._deadline, sent + remaining - self._margin)

    async def _watchdog(self) -> None:
        while not self.lost.is_set():
            left = self._deadline - self._clock()
            if left <= 0:
                self._lose("no keepalive acknowledged before the local deadline")
                return
            await asyncio.sleep(min(left, _WATCHDOG_POLL))

    async def _watch_key(self) -> None:
        start = self.epoch + 1
        while not self.lost.is_set():
            try:
                async with contextlib.aclosing(self._client.watch(self.key, start_revision=start)) as events:
                    async for batch in events:
                        for ev in batch:
                            if ev.type == "delete" or ev.kv.create_revision != self.epoch:
                                self._lose(f"leader key {ev.type} at revision {ev.kv.mod_revision}")
                                return
                            start = ev.kv.mod_revision + 1
            except Compacted:
                # History is gone: look at the key itself, then watch on from now.
                try:
                    result = await self._client.txn([], [Op.get(self.key)])
                except Unavailable:
                    await asyncio.sleep(0.5)
                    continue
                kvs = result.responses[0] or []
                if not kvs or kvs[0].create_revision != self.epoch:
                    self._lose("leader key gone (seen after a compaction)")
                    return
                start = result.revision + 1
            except Unavailable as e:
                _log.info("leader key watch interrupted", key=self.key, error=e.message)
                await asyncio.sleep(0.5)
            except ShoalError as e:  # the key can no longer be watched: it cannot be trusted either
                self._lose(f"leader key watch refused: {e.message}")
                return


class Election:
    """Campaign for (or observe) the leadership held in one etcd key."""

    def __init__(
        self,
        client: EtcdClient,
        key: bytes,
        value: bytes,
        *,
        ttl: int = 5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl < MIN_TTL:
            raise InvalidArgument(
                f"leader lease TTL must be at least {MIN_TTL}s (etcd grants no shorter lease)"
            )
        self.client = client
        self.key = key
        self.value = value
        self.ttl = ttl
        self._clock = clock

    async def campaign(self) -> Leadership:
        """Block until this candidate is leader, then return its Leadership.

        Each attempt grants a fresh lease and tries to create the key with it; on losing, the
        lease is revoked and the key watched until it is deleted. etcd errors are retried with
        backoff: a campaign only ends by winning (or by being cancelled).
        """
        backoff = 0.1
        while True:
            try:
                leadership = await self._attempt()
            except Unavailable as e:
                _log.info("campaign attempt failed, retrying", key=self.key, error=e.message)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            if leadership is not None:
                return leadership
            backoff = 0.1

    async def _attempt(self) -> Leadership | None:
        """One try: the Leadership if won; None once the present leader's key has gone."""
        sent = self._clock()
        lease_id, granted = await self.client.lease_grant(self.ttl)
        deadline = sent + granted - deadline_margin(granted)
        try:
            won, kv, revision = await self._try_create(lease_id)
        except BaseException:
            await self._revoke_quietly(lease_id)
            raise
        if won:
            assert kv is not None
            _log.info("elected leader", key=self.key, epoch=kv.create_revision, lease=lease_id)
            return Leadership(
                self.client,
                self.key,
                self.value,
                kv.create_revision,
                lease_id,
                granted,
                deadline,
                self._clock,
            )
        await self._revoke_quietly(lease_id)
        await self._wait_deleted(revision)
        return None

    async def _try_create(self, lease_id: int) -> tuple[bool, KeyValue | None, int]:
        """(won, the key as it is, revision) after trying to create the key with our lease."""
        try:
            result = await self.client.txn(
                [Compare.create_revision(self.key, "==", 0)],
                [Op.put(self.key, self.value, lease=lease_id), Op.get(self.key)],
                [Op.get(self.key)],
            )
        except WriteOutcomeUnknown:
            # Did our create land? The key says so: it carries our lease only if it did.
            result = await self.client.txn([], [Op.get(self.key)])
            kvs = result.responses[0] or []
            kv = kvs[0] if kvs else None
            return (kv is not None and kv.lease == lease_id), kv, result.revision
        kvs = result.responses[-1] or []
        kv = kvs[0] if kvs else None
        return result.succeeded, kv, result.revision

    async def _wait_deleted(self, revision: int) -> None:
        """Return once the leader key is deleted after `revision` (or history to check is gone)."""
        with contextlib.suppress(Compacted):
            async with contextlib.aclosing(
                self.client.watch(self.key, start_revision=revision + 1)
            ) as events:
                async for batch in events:
                    if any(ev.type == "delete" for ev in batch):
                        return

    async def _revoke_quietly(self, lease_id: int) -> None:
        try:
            await self.client.lease_revoke(lease_id)
        except ShoalError as e:  # it expires by itself
            _log.info("could not revoke an unused campaign lease", lease=lease_id, error=str(e))

    async def current_leader(self) -> tuple[bytes, int] | None:
        """(value, epoch) of the present leader, or None when there is none."""
        kv = await self.client.get(self.key)
        return (kv.value, kv.create_revision) if kv else None

    async def observe(self) -> AsyncIterator[tuple[bytes, int] | None]:
        """Yield the leader now, then on every change: (value, epoch), or None while there is none.

        Survives compaction and etcd outages (it re-reads and watches again); consecutive
        duplicates are not yielded.
        """
        unset = object()
        last: object = unset
        backoff = 0.1
        while True:
            try:
                result = await self.client.txn([], [Op.get(self.key)])
                kvs = result.responses[0] or []
                now = (kvs[0].value, kvs[0].create_revision) if kvs else None
                if now != last:
                    last = now
                    yield now
                backoff = 0.1
                watch = self.client.watch(self.key, start_revision=result.revision + 1)
                async with contextlib.aclosing(watch) as events:
                    async for batch in events:
                        for ev in batch:
                            now = None if ev.type == "delete" else (ev.kv.value, ev.kv.create_revision)
                            if now != last:
                                last = now
                                yield now
            except Compacted:
                continue
            except Unavailable as e:
                _log.info("leader observation interrupted, retrying", key=self.key, error=e.message)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)


__all__ = ["MIN_TTL", "Election", "Leadership", "deadline_margin"]
