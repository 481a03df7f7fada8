"""The leader's RUNNABLE index: any sequence of adds and removes leaves every queue's lane
exactly the sorted list of its current jobs, and lanes handed out never change afterwards."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.services.runnable import RunnableIndex
from shoal.v1 import types_pb2

pytestmark = pytest.mark.unit


def _job(n: int, queue: str, vcpus: int, parent: bool = False) -> types_pb2.Job:
    job = types_pb2.Job(
        job_id=f"p:{n}" if parent else f"j{n}", job_queue=queue, status=types_pb2.JOB_STATUS_RUNNABLE
    )
    job.container.resources.vcpus = vcpus
    job.container.resources.memory_mib = 256
    return job


ops = st.lists(
    st.tuples(
        st.sampled_from(["add", "remove", "lanes"]),
        st.integers(0, 60),
        st.sampled_from(["a", "b"]),
        st.integers(1, 3),
        st.booleans(),
    ),  # fmt: skip
    max_size=300,
)


@settings(max_examples=200, deadline=None)
@given(ops)
def test_lanes_always_equal_the_sorted_current_jobs(steps):
    index = RunnableIndex()
    current: dict[str, tuple[str, tuple[int, int], int]] = {}
    handed_out = []
    for op, n, queue, vcpus, child in steps:
        job = _job(n, queue, vcpus, parent=child)
        if op == "add":
            order = (n % 7, 2 * n + child)  # not the order of the adds; one order per job, as in etcd
            index.add(job, order)
            current[job.job_id] = (queue, order, vcpus)
        elif op == "remove":
            index.remove(job.job_id)
            current.pop(job.job_id, None)
        else:
            lanes = index.lanes()
            handed_out.append({name: (list(lane.jobs), lane) for name, lane in lanes.items()})
            for name, lane in lanes.items():
                expected = sorted((order, jid) for jid, (q, order, _) in current.items() if q == name)
                assert [(v.order, v.job_id) for v in lane.jobs] == expected
                assert {s[1] for s in lane.shapes} == {v.request.milli_vcpus for v in lane.jobs}
            assert set(lanes) == {q for q, _, _ in current.values()}
    assert len(index) == len(current)
    assert index.children.get("p", set()) == {jid for jid in current if jid.startswith("p:")}
    for snapshot in handed_out:  # never changed after being handed out
        for copy, lane in snapshot.values():
            assert list(lane.jobs) == copy


def test_array_parents_are_never_indexed():
    index = RunnableIndex()
    parent = _job(1, "a", 1)
    parent.array_properties.size = 10
    index.add(parent, (1, 0))
    assert len(index) == 0
    assert index.lanes() == {}
