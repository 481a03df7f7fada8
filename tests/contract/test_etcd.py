"""Contract of controller.store.etcd against real etcd members (no mocks)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import urllib.request
from collections.abc import AsyncIterator

import pytest

from controller.store.etcd import (
    Compacted,
    Compare,
    EtcdClient,
    EtcdTls,
    EtcdUnavailable,
    Event,
    LeaseNotFound,
    Op,
    RequestTooLarge,
    TooManyOps,
    WriteOutcomeUnknown,
)
from shoal.devcluster import EtcdServer, free_port
from shoal.errors import FencedOut, InvalidArgument
from tests.contract.conftest import Pki, frozen

pytestmark = pytest.mark.contract


def k(prefix: str, name: str) -> bytes:
    return f"{prefix}{name}".encode()


async def collect(events: AsyncIterator[list[Event]], n: int, within: float = 10.0) -> list[Event]:
    """The next `n` events of a watch (failing after `within` seconds)."""
    out: list[Event] = []

    async def run() -> None:
        async for batch in events:
            out.extend(batch)
            if len(out) >= n:
                return

    await asyncio.wait_for(run(), within)
    return out


def metric(server: EtcdServer, name: str) -> float:
    with urllib.request.urlopen(f"http://{server.endpoint}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    assert match, f"etcd exposes no {name}"
    return float(match.group(1))


def watcher_count(server: EtcdServer) -> int:
    return int(metric(server, "etcd_debugging_mvcc_watcher_total"))


async def until(predicate, within: float = 10.0, what: str = "condition") -> None:  # noqa: ANN001
    loop = asyncio.get_running_loop()
    end = loop.time() + within
    while not await asyncio.to_thread(predicate):
        assert loop.time() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


# ------------------------------------------------------------------------------ key-value basics


async def test_put_get_delete(client: EtcdClient, etcd_prefix: str) -> None:
    key = k(etcd_prefix, "a")
    assert await client.get(key) is None
    rev1 = await client.put(key, b"one")
    rev2 = await client.put(key, b"two")
    assert rev2 > rev1
    kv = await client.get(key)
    assert kv is not None
    assert (kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version, kv.lease) == (
        key, b"two", rev1, rev2, 2, 0
    )  # fmt: skip
    assert await client.revision() >= rev2
    assert await client.delete(key) == 1
    assert await client.delete(key) == 0
    assert await client.get(key) is None


async def test_delete_prefix_removes_only_that_prefix(client: EtcdClient, etcd_prefix: str) -> None:
    for name in ("jobs/1", "jobs/2", "jobs/3", "jobsx", "queues/1"):
        await client.put(k(etcd_prefix, name), b"v")
    assert await client.delete(k(etcd_prefix, "jobs/"), prefix=True) == 3
    kvs, _ = await client.get_prefix(etcd_prefix.encode())
    assert [kv.key for kv in kvs] == [k(etcd_prefix, "jobsx"), k(etcd_prefix, "queues/1")]


async def test_get_prefix_pages_sorted_at_one_revision(client: EtcdClient, etcd_prefix: str) -> None:
    names = [f"k{i:03d}" for i in range(60)]
    for name in reversed(names):
        await client.put(k(etcd_prefix, name), b"0")
    await client.put(k(etcd_prefix[:-1], "-outside"), b"not under the prefix")

    # Rewrite every key while a one-key-per-page read runs: every page must still show the
    # first page's revision, never a newer value.
    stop = asyncio.Event()

    async def writer() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            for name in names:
                await client.put(k(etcd_prefix, name), str(n).encode())

    task = asyncio.create_task(writer())
    try:
        await client.put(k(etcd_prefix, names[0]), b"start")
        kvs, rev = await client.get_prefix(etcd_prefix.encode(), page_size=1)
    finally:
        stop.set()
        await task
    assert [kv.key for kv in kvs] == [k(etcd_prefix, n) for n in names]
    assert all(kv.mod_revision <= rev for kv in kvs)
    assert await client.revision() > rev, "the writer should have run during the read"
    again, rev_again = await client.get_prefix(etcd_prefix.encode(), revision=rev, page_size=7)
    assert rev_again == rev
    assert again == kvs


async def test_get_prefix_at_compacted_revision_raises(client: EtcdClient, etcd_prefix: str) -> None:
    rev = await client.put(k(etcd_prefix, "a"), b"1")
    latest = await client.put(k(etcd_prefix, "a"), b"2")
    await client.compact(latest)
    with pytest.raises(Compacted):
        await client.get_prefix(etcd_prefix.encode(), revision=rev)
    kvs, now = await client.get_prefix(etcd_prefix.encode())  # unpinned: reads the present
    assert [kv.value for kv in kvs] == [b"2"] and now >= latest


# ---------------------------------------------------------------------------------- transactions


async def test_txn_takes_success_or_failure_branch(client: EtcdClient, etcd_prefix: str) -> None:
    key, other = k(etcd_prefix, "a"), k(etcd_prefix, "b")
    create = await client.txn(
        [Compare.create_revision(key, "==", 0)], [Op.put(key, b"1"), Op.get(key)], [Op.get(key)]
    )
    assert create.succeeded
    assert create.responses[0] is None
    assert [kv.value for kv in create.responses[1] or []] == [b"1"]
    assert (create.responses[1] or [])[0].create_revision == create.revision

    again = await client.txn(
        [Compare.create_revision(key, "==", 0)], [Op.put(key, b"2")], [Op.get(key), Op.put(other, b"x")]
    )
    assert not again.succeeded
    assert [kv.value for kv in again.responses[0] or []] == [b"1"]
    assert again.responses[1] is None
    assert again.revision == create.revision + 1  # the failure branch wrote `other`
    assert (await client.get(key)).value == b"1"  # type: ignore[union-attr]

    checks = [
        (Compare.value(key, "==", b"1"), True),
        (Compare.value(key, "!=", b"1"), False),
        (Compare.version(key, "==", 1), True),
        (Compare.version(key, ">", 1), False),
        (Compare.mod_revision(key, "<", again.revision + 1), True),
        (Compare.create_revision(key, "==", create.revision), True),
        (Compare.lease(key, "==", 0), True),
    ]
    for compare, expected in checks:
        result = await client.txn([compare], [Op.get(key)])
        assert result.succeeded is expected, compare


async def test_txn_with_too_many_ops_is_refused(client: EtcdClient, etcd_prefix: str) -> None:
    ops = [Op.put(k(etcd_prefix, f"{i}"), b"v") for i in range(129)]
    with pytest.raises(TooManyOps, match="txn_batches"):
        await client.txn([], ops)
    # A client configured above etcd's --max-txn-ops (128) gets etcd's refusal, mapped.
    async with EtcdClient(client.endpoints, max_txn_ops=1000) as loose:
        with pytest.raises(TooManyOps, match="max-txn-ops"):
            await loose.txn([], ops)
    assert await client.get_prefix(etcd_prefix.encode()) == ([], await client.revision())


async def test_oversized_request_is_refused_clearly(client: EtcdClient, etcd_prefix: str) -> None:
    with pytest.raises(RequestTooLarge):
        await client.put(k(etcd_prefix, "big"), b"x" * 1_600_000)
    with pytest.raises(RequestTooLarge, match="alone"):
        await client.txn_batches([], [Op.put(k(etcd_prefix, "big"), b"x" * 1_500_000)])
    assert await client.get(k(etcd_prefix, "big")) is None


async def test_txn_batches_uses_as_few_txns_as_max_txn_ops_allows(
    client: EtcdClient, etcd_prefix: str
) -> None:
    fence = k(etcd_prefix, "leader")
    await client.put(fence, b"me")
    before = await client.revision()
    ops = [Op.put(k(etcd_prefix, f"job/{i:03d}"), b"queued") for i in range(300)]
    last = await client.txn_batches([Compare.value(fence, "==", b"me")], ops)
    assert last == before + 3  # 128 + 128 + 44: one revision per transaction
    kvs, _ = await client.get_prefix(k(etcd_prefix, "job/"))
    assert len(kvs) == 300
    assert {kv.mod_revision for kv in kvs} == {before + 1, before + 2, before + 3}


async def test_txn_batches_splits_by_size_and_on_repeated_keys(client: EtcdClient, etcd_prefix: str) -> None:
    before = await client.revision()
    big = [Op.put(k(etcd_prefix, f"big/{i}"), bytes([65 + i]) * 400_000) for i in range(6)]
    last = await client.txn_batches([], big)
    assert last == before + 2  # 3 x 400 KB per request stays under 1.4 MiB
    kvs, _ = await client.get_prefix(k(etcd_prefix, "big/"))
    assert [len(kv.value) for kv in kvs] == [400_000] * 6

    key = k(etcd_prefix, "twice")
    last = await client.txn_batches(
        [], [Op.put(key, b"1"), Op.put(key, b"2"), Op.delete(key), Op.put(key, b"3")]
    )
    assert last == before + 2 + 4  # every op overlaps the one before it
    assert (await client.get(key)).value == b"3"  # type: ignore[union-attr]


async def test_txn_batches_fenced_out_before_first_chunk(client: EtcdClient, etcd_prefix: str) -> None:
    fence = k(etcd_prefix, "leader")
    await client.put(fence, b"someone-else")
    ops = [Op.put(k(etcd_prefix, f"job/{i}"), b"x") for i in range(10)]
    with pytest.raises(FencedOut, match="0 of 10 ops"):
        await client.txn_batches([Compare.value(fence, "==", b"me")], ops)
    assert (await client.get_prefix(k(etcd_prefix, "job/")))[0] == []


async def test_txn_batches_fenced_out_midway_keeps_earlier_chunks(
    client: EtcdClient, etcd_prefix: str
) -> None:
    fence = k(etcd_prefix, "leader")
    await client.put(fence, b"me")
    ops = [Op.put(k(etcd_prefix, f"job/{i:03d}"), b"x") for i in range(200)]
    ops[5] = Op.put(fence, b"deposed")  # the first chunk itself breaks the guard of the second
    with pytest.raises(FencedOut, match="chunk 2 of 2: 128 of 200 ops"):
        await client.txn_batches([Compare.value(fence, "==", b"me")], ops)
    kvs, _ = await client.get_prefix(k(etcd_prefix, "job/"))
    assert len(kvs) == 127  # chunk 1 minus the fence op; none of chunk 2


# ------------------------------------------------------------------------------------- watches


async def test_watch_delivers_events_in_order(client: EtcdClient, etcd_prefix: str) -> None:
    prefix = etcd_prefix.encode()
    start = await client.revision() + 1
    async with contextlib.aclosing(client.watch(prefix, prefix=True, start_revision=start)) as events:
        await client.put(k(etcd_prefix, "a"), b"1")
        await client.put(k(etcd_prefix, "b"), b"2")
        await client.txn([], [Op.put(k(etcd_prefix, "c"), b"3"), Op.delete(k(etcd_prefix, "a"))])
        await client.put(k(etcd_prefix[:-1], "-outside"), b"not watched")
        got = await collect(events, 4)
    assert [(e.type, e.kv.key, e.kv.value) for e in got] == [
        ("put", k(etcd_prefix, "a"), b"1"),
        ("put", k(etcd_prefix, "b"), b"2"),
        ("put", k(etcd_prefix, "c"), b"3"),
        ("delete", k(etcd_prefix, "a"), b""),
    ]
    revs = [e.kv.mod_revision for e in got]
    assert revs[0] == start and revs[1] == start + 1 and revs[2] == revs[3] == start + 2


async def test_watch_replays_history_from_a_given_revision(client: EtcdClient, etcd_prefix: str) -> None:
    key = k(etcd_prefix, "job")
    revs = [await client.put(key, str(i).encode()) for i in range(5)]
    async with contextlib.aclosing(client.watch(key, start_revision=revs[2])) as events:
        got = await collect(events, 3)
    assert [(e.kv.value, e.kv.mod_revision) for e in got] == [
        (b"2", revs[2]),
        (b"3", revs[3]),
        (b"4", revs[4]),
    ]


async def test_watch_of_compacted_history_raises_compacted(client: EtcdClient, etcd_prefix: str) -> None:
    key = k(etcd_prefix, "job")
    first = await client.put(key, b"1")
    latest = await client.put(key, b"2")
    await client.compact(latest)
    await client.compact(latest)  # idempotent
    with pytest.raises(Compacted) as info:
        async with contextlib.aclosing(client.watch(key, start_revision=first)) as events:
            await collect(events, 1)
    assert info.value.compact_revision == latest


async def test_cancelling_the_watching_task_ends_the_server_side_watch(
    etcd_server: EtcdServer, client: EtcdClient, etcd_prefix: str
) -> None:
    before = watcher_count(etcd_server)
    started = asyncio.Event()

    async def consume() -> None:
        async for _ in client.watch(etcd_prefix.encode(), prefix=True, start_revision=0):
            started.set()

    task = asyncio.create_task(consume())
    await client.put(k(etcd_prefix, "x"), b"1")  # may or may not be seen: start_revision=0 is "from now"
    await until(lambda: watcher_count(etcd_server) == before + 1, what="the watch to exist in etcd")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await until(lambda: watcher_count(etcd_server) == before, what="the watch to be cancelled in etcd")


# ------------------------------------------------------------------------------------- leases


async def test_lease_expiry_deletes_its_keys(client: EtcdClient, etcd_prefix: str) -> None:
    lease, ttl = await client.lease_grant(2)
    assert ttl >= 2
    key = k(etcd_prefix, "session")
    rev = await client.put(key, b"alive", lease=lease)
    assert (await client.get(key)).lease == lease  # type: ignore[union-attr]
    assert 0 < await client.lease_keepalive(lease) <= ttl
    async with contextlib.aclosing(client.watch(key, start_revision=rev + 1)) as events:
        got = await collect(events, 1, within=15)
    assert got[0].type == "delete"
    assert await client.get(key) is None
    assert await client.lease_keepalive(lease) == 0
    await client.lease_revoke(lease)  # already gone: a no-op


async def test_lease_revoke_deletes_its_keys(client: EtcdClient, etcd_prefix: str) -> None:
    lease, _ = await client.lease_grant(60)
    await client.put(k(etcd_prefix, "a"), b"1", lease=lease)
    await client.lease_revoke(lease)
    assert await client.get(k(etcd_prefix, "a")) is None
    with pytest.raises(LeaseNotFound):
        await client.put(k(etcd_prefix, "b"), b"1", lease=lease)


# ----------------------------------------------------------------------- failures and endpoints


async def test_nothing_listening_is_unavailable_and_names_the_endpoints() -> None:
    endpoints = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    async with contextlib.AsyncExitStack() as stack:
        client = EtcdClient(endpoints, timeout=1.0)
        stack.push_async_callback(client.close)
        with pytest.raises(EtcdUnavailable, match="not sent") as write_error:
            await client.put(b"/k", b"v")
        with pytest.raises(EtcdUnavailable) as read_error:
            await client.get(b"/k")
    for err in (write_error.value, read_error.value):
        assert all(ep in err.message for ep in endpoints)
    assert not isinstance(write_error.value, WriteOutcomeUnknown)


async def test_writes_skip_an_endpoint_that_refuses_connections(
    etcd_server: EtcdServer, etcd_prefix: str
) -> None:
    dead = f"127.0.0.1:{free_port()}"
    async with EtcdClient([dead, etcd_server.endpoint], timeout=2.0) as client:
        rev = await client.put(k(etcd_prefix, "a"), b"1")  # certainly not sent to `dead`: no error
        assert client.current_endpoint == etcd_server.endpoint
        assert (await client.get(k(etcd_prefix, "a"))).mod_revision == rev  # type: ignore[union-attr]


async def test_frozen_member_write_outcome_unknown_read_unavailable(solo_etcd: EtcdServer) -> None:
    async with EtcdClient([solo_etcd.endpoint], timeout=1.0) as client:
        await client.put(b"/k", b"before")
        with frozen(solo_etcd):
            with pytest.raises(WriteOutcomeUnknown, match=solo_etcd.endpoint):
                await client.put(b"/k", b"during")
            with pytest.raises(EtcdUnavailable, match=solo_etcd.endpoint):
                await client.get(b"/k")
        # Whether etcd applied the timed-out write once thawed is exactly what nobody can know.
        assert (await client.get(b"/k")).value in (b"before", b"during")  # type: ignore[union-attr]


async def test_reads_writes_and_watches_survive_losing_a_member(etcd_cluster: list[EtcdServer]) -> None:
    # Lose a follower: this tests the client's failover, not how fast raft elects a new leader.
    etcd_cluster.sort(key=lambda m: metric(m, "etcd_server_is_leader"))
    endpoints = [m.endpoint for m in etcd_cluster]
    async with EtcdClient(endpoints, timeout=3.0) as client:
        assert client.current_endpoint == endpoints[0]
        for i in range(5):
            await client.put(f"/c/{i}".encode(), b"v")
        start = await client.revision() + 1
        async with contextlib.aclosing(client.watch(b"/c/", prefix=True, start_revision=start)) as events:
            await client.put(b"/c/before", b"1")
            assert [e.kv.key for e in await collect(events, 1)] == [b"/c/before"]

            etcd_cluster[0].stop()  # the member every call (and the watch) was using

            assert (await client.get(b"/c/0")).value == b"v"  # type: ignore[union-attr]
            kvs, _ = await client.get_prefix(b"/c/", page_size=2)
            assert len(kvs) == 6
            assert client.current_endpoint != endpoints[0]
            await client.put(b"/c/after1", b"2")
            await client.put(b"/c/after2", b"3")
            got = await collect(events, 2, within=20)
        assert [e.kv.key for e in got] == [b"/c/after1", b"/c/after2"]  # nothing skipped, nothing repeated


# ------------------------------------------------------------------------------------------ TLS


async def test_tls_with_client_certificate(tls_etcd: EtcdServer, pki: Pki) -> None:
    tls = EtcdTls(str(pki.ca), str(pki.client_cert), str(pki.client_key))
    async with EtcdClient([tls_etcd.endpoint], timeout=30.0, tls=tls) as client:  # 30 s: etcd is starting
        rev = await client.put(b"/tls", b"secret")
        assert (await client.get(b"/tls")).mod_revision == rev  # type: ignore[union-attr]

    no_cert = EtcdClient([tls_etcd.endpoint], timeout=2.0, tls=EtcdTls(str(pki.ca)))
    try:
        with pytest.raises(EtcdUnavailable, match=tls_etcd.endpoint):
            await no_cert.get(b"/tls")
    finally:
        await no_cert.close()


def test_tls_files_are_checked_up_front(pki: Pki) -> None:
    with pytest.raises(InvalidArgument, match="cannot read"):
        EtcdClient(["127.0.0.1:2379"], tls=EtcdTls("/nonexistent/ca.pem"))
    with pytest.raises(InvalidArgument, match="together"):
        EtcdClient(["127.0.0.1:2379"], tls=EtcdTls(str(pki.ca), cert_file=str(pki.client_cert)))
