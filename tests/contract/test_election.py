"""Contract of controller.store.election against a real etcd: one leader, fencing, local deadline."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from controller.store.election import Election, Leadership, deadline_margin
from controller.store.etcd import EtcdClient, Op
from shoal.devcluster import EtcdServer
from shoal.errors import FencedOut, InvalidArgument
from tests.contract.conftest import frozen

pytestmark = pytest.mark.contract


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def clients(etcd_server: EtcdServer) -> AsyncIterator[tuple[EtcdClient, EtcdClient]]:
    """Two independent clients: one per candidate, as two controller replicas would have."""
    async with EtcdClient([etcd_server.endpoint]) as a, EtcdClient([etcd_server.endpoint]) as b:
        yield a, b


async def until(predicate, within: float = 10.0, what: str = "condition") -> None:  # noqa: ANN001
    loop = asyncio.get_running_loop()
    end = loop.time() + within
    while not predicate():
        assert loop.time() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def still_pending(task: asyncio.Task[Leadership], for_seconds: float = 1.0) -> bool:
    done, _ = await asyncio.wait({task}, timeout=for_seconds)
    return not done


@contextlib.asynccontextmanager
async def resigning(*leaderships: Leadership) -> AsyncIterator[None]:
    try:
        yield
    finally:
        for lead in leaderships:
            await lead.resign()


def test_ttl_below_etcd_minimum_is_refused(client: EtcdClient) -> None:
    with pytest.raises(InvalidArgument, match="at least 2s"):
        Election(client, b"/leader", b"a", ttl=1)


async def test_two_candidates_one_leader_then_failover_on_resign(
    clients: tuple[EtcdClient, EtcdClient], etcd_prefix: str
) -> None:
    key = f"{etcd_prefix}leader".encode()
    a, b = Election(clients[0], key, b"ctrl-a"), Election(clients[1], key, b"ctrl-b")
    assert await a.current_leader() is None
    tasks = {asyncio.create_task(a.campaign()): a, asyncio.create_task(b.campaign()): b}
    done, pending = await asyncio.wait(tasks, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    assert len(done) == 1 and len(pending) == 1
    (won_task,), (waiting,) = done, pending
    first = won_task.result()
    winner, loser = tasks[won_task], tasks[waiting]
    assert first.valid()
    assert await loser.current_leader() == (winner.value, first.epoch)
    assert await still_pending(waiting), "a second candidate became leader while the first holds the key"

    await first.resign()
    assert first.lost.is_set() and not first.valid()
    second = await asyncio.wait_for(waiting, 10)
    async with resigning(second):
        assert second.epoch > first.epoch
        assert await winner.current_leader() == (loser.value, second.epoch)
        assert (await clients[0].txn([first.guard()], [Op.put(key + b"/x", b"1")])).succeeded is False
        assert (await clients[0].txn([second.guard()], [Op.put(key + b"/x", b"1")])).succeeded is True
    assert await winner.current_leader() is None  # resign deleted the key


async def test_revoked_lease_deposes_leader_and_fences_its_writes(
    clients: tuple[EtcdClient, EtcdClient], etcd_prefix: str
) -> None:
    key = f"{etcd_prefix}leader".encode()
    old = await Election(clients[0], key, b"ctrl-a", ttl=30).campaign()
    async with resigning(old):
        challenger = asyncio.create_task(Election(clients[1], key, b"ctrl-b").campaign())
        assert await still_pending(challenger, 0.5)

        await clients[1].lease_revoke(old.lease_id)  # what an expiry (or an operator) does
        new = await asyncio.wait_for(challenger, 10)
        async with resigning(new):
            assert new.epoch > old.epoch
            await asyncio.wait_for(old.lost.wait(), 10)  # the deposed leader notices by itself
            assert not old.valid()

            job = f"{etcd_prefix}jobs/1".encode()
            stale = await clients[0].txn([old.guard()], [Op.put(job, b"placed by the old leader")])
            assert not stale.succeeded
            with pytest.raises(FencedOut):
                await clients[0].txn_batches([old.guard()], [Op.put(job, b"placed by the old leader")])
            await clients[1].txn_batches([new.guard()], [Op.put(job, b"placed by the new leader")])
            assert (await clients[0].get(job)).value == b"placed by the new leader"  # type: ignore[union-attr]

            await old.resign()  # must not touch the new leader's key
            assert await Election(clients[0], key, b"x").current_leader() == (b"ctrl-b", new.epoch)
            assert new.valid()


async def test_validity_ends_at_local_deadline_without_keepalive(
    client: EtcdClient, etcd_prefix: str
) -> None:
    clock = FakeClock(1000.0)
    # A long TTL: its keepalive (every TTL/3 s) does not run during the test.
    lead = await Election(client, f"{etcd_prefix}leader".encode(), b"a", ttl=30, clock=clock).campaign()
    async with resigning(lead):
        expected = 1000.0 + lead.ttl - deadline_margin(lead.ttl)
        assert lead.deadline == pytest.approx(expected)
        assert deadline_margin(30) == 6.0 and deadline_margin(2) == 0.5
        clock.now = expected - 0.01
        assert lead.valid()
        clock.now = expected
        assert not lead.valid()
        await asyncio.wait_for(lead.lost.wait(), 5)  # the watchdog notices without any etcd event


async def test_acked_keepalive_moves_deadline_from_request_send_time(
    client: EtcdClient, etcd_prefix: str
) -> None:
    clock = FakeClock(1000.0)
    lead = await Election(client, f"{etcd_prefix}leader".encode(), b"a", ttl=3, clock=clock).campaign()
    async with resigning(lead):
        first = lead.deadline
        assert first == pytest.approx(1000.0 + lead.ttl - deadline_margin(lead.ttl))
        clock.now = 1001.0  # the next keepalive is sent at this (fake) instant
        expected = 1001.0 + lead.ttl - deadline_margin(lead.ttl)
        await until(lambda: lead.deadline > first, what="an acknowledged keepalive")
        assert lead.deadline == pytest.approx(expected)
        clock.now = first + 0.5  # past the first deadline, inside the extended one
        assert lead.valid() and not lead.lost.is_set()


async def test_leader_steps_down_by_itself_when_etcd_stops_answering(solo_etcd: EtcdServer) -> None:
    async with EtcdClient([solo_etcd.endpoint], timeout=1.0) as client:
        lead = await Election(client, b"/leader", b"a", ttl=2).campaign()
        async with resigning(lead):
            assert lead.valid()
            with frozen(solo_etcd):  # no keepalive is acknowledged any more, no key event comes
                await asyncio.wait_for(lead.lost.wait(), 10)
                assert not lead.valid()


async def test_observe_follows_leader_changes(
    clients: tuple[EtcdClient, EtcdClient], etcd_prefix: str
) -> None:
    key = f"{etcd_prefix}leader".encode()
    watcher = Election(clients[1], key, b"observer")
    seen: asyncio.Queue[tuple[bytes, int] | None] = asyncio.Queue()

    async def observe() -> None:
        async for leader in watcher.observe():
            await seen.put(leader)

    task = asyncio.create_task(observe())
    try:
        assert await asyncio.wait_for(seen.get(), 10) is None
        lead_a = await Election(clients[0], key, b"ctrl-a").campaign()
        assert await asyncio.wait_for(seen.get(), 10) == (b"ctrl-a", lead_a.epoch)
        await lead_a.resign()
        assert await asyncio.wait_for(seen.get(), 10) is None
        lead_b = await Election(clients[0], key, b"ctrl-b").campaign()
        async with resigning(lead_b):
            assert await asyncio.wait_for(seen.get(), 10) == (b"ctrl-b", lead_b.epoch)
        assert await asyncio.wait_for(seen.get(), 10) is None
        assert seen.empty()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
