"""desired_nodes / demand_by_env: managed environment sizing on plain data, plus invariants."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.domain.scaling import (
    ManagedEnv,
    ManagedNode,
    NodeState,
    ScalingDecision,
    demand_by_env,
    desired_nodes,
)
from controller.scheduler import QueueView, Resources

pytestmark = pytest.mark.unit

READY, DRAINING, DRAINED = NodeState.READY, NodeState.DRAINING, NodeState.DRAINED


def env(
    *, min_vcpus: int = 0, max_vcpus: int = 8, cpus: float = 2, memory: int = 2048, enabled: bool = True
) -> ManagedEnv:
    return ManagedEnv("m", enabled, min_vcpus, max_vcpus, Resources.from_vcpus(cpus, memory))


def reqs(n: int, *, vcpus: float = 1, memory: int = 256) -> list[Resources]:
    return [Resources.from_vcpus(vcpus, memory)] * n


def node(
    node_id: str,
    *,
    state: NodeState = READY,
    running: int = 0,
    used_cpus: float | None = None,
    idle_for: float = 0.0,
    cpus: float = 2,
    memory: int = 2048,
    scale_in: bool = False,
) -> ManagedNode:
    used = Resources.from_vcpus(running if used_cpus is None else used_cpus, 256 * running)
    return ManagedNode(node_id, state, Resources.from_vcpus(cpus, memory), used, running, idle_for, scale_in)


def check(e: ManagedEnv, nodes: list[ManagedNode], d: ScalingDecision) -> ScalingDecision:
    """Invariants that hold for every decision."""
    by_id = {n.node_id: n for n in nodes}
    assert e.min_nodes <= d.desired <= e.max_nodes
    assert d.desired * e.node.milli_vcpus <= e.max_vcpus * 1000
    for nid in (*d.drain, *d.remove):
        assert not by_id[nid].busy, f"{nid} is busy but scaled in"
    assert all(by_id[n].state is READY for n in d.drain)
    assert all(by_id[n].state is DRAINED for n in d.remove)
    assert all(by_id[n].scale_in and by_id[n].state is not READY for n in d.undrain)
    assert not set(d.undrain) & (set(d.drain) | set(d.remove))
    assert len(d.drain) + len(d.remove) <= max(0, len(nodes) - d.desired)
    return d


def decide(
    e: ManagedEnv, requests: list[Resources], nodes: list[ManagedNode], idle: float = 30
) -> ScalingDecision:
    return check(e, nodes, desired_nodes(e, requests, nodes, scale_in_idle=idle))


# -- growing ---------------------------------------------------------------------------------


def test_empty_env_with_no_work_stays_at_min():
    assert decide(env(min_vcpus=0), [], []).desired == 0
    assert decide(env(min_vcpus=3), [], []).desired == 2  # ceil(3 / 2)


def test_burst_of_12_one_vcpu_jobs_asks_for_max_3_nodes():
    d = decide(env(max_vcpus=6), reqs(12), [])
    assert (d.desired, d.needed, d.waiting_jobs) == (3, 6, 12)


def test_packing_counts_memory_not_only_vcpus():
    # 1 vCPU but 1500 MiB: only one fits per 2 vCPU / 2048 MiB node.
    assert decide(env(max_vcpus=100), reqs(4, memory=1500), []).desired == 4


def test_mixed_shapes_first_fit_decreasing():
    # 1.5 + 0.5 fill one node each: 2 nodes, not 3.
    requests = reqs(2, vcpus=1.5) + reqs(2, vcpus=0.5)
    assert decide(env(max_vcpus=100), requests, []).desired == 2


def test_busy_nodes_count_and_free_room_is_used_first():
    nodes = [node("a", running=1), node("b", running=2)]
    d = decide(env(max_vcpus=100), reqs(1), nodes)
    # The waiting job fits in a's free vCPU: no new node.
    assert (d.desired, d.needed) == (2, 2)
    d = decide(env(max_vcpus=100), reqs(2), nodes)
    assert d.desired == 3


def test_jobs_larger_than_a_node_are_not_counted():
    d = decide(env(max_vcpus=100), reqs(3, vcpus=4), [])
    assert (d.desired, d.too_large) == (0, 3)


def test_disabled_env_scales_to_min_and_ignores_work():
    d = decide(env(min_vcpus=2, enabled=False), reqs(10), [node("a", idle_for=60), node("b", idle_for=60)])
    assert d.desired == 1
    assert d.drain == ("a",) or d.drain == ("b",)


# -- shrinking -------------------------------------------------------------------------------


def test_idle_nodes_are_drained_only_after_the_idle_time():
    nodes = [node("a", idle_for=5), node("b", idle_for=40)]
    d = decide(env(), [], nodes)
    assert (d.desired, d.drain, d.remove) == (0, ("b",), ())


def test_drained_nodes_are_removed_and_draining_ones_awaited():
    nodes = [
        node("a", state=DRAINED, idle_for=40, scale_in=True),
        node("b", state=DRAINING, idle_for=40, scale_in=True),
        node("c", idle_for=40),
    ]
    d = decide(env(), [], nodes)
    assert d.remove == ("a",)
    assert d.drain == ("c",)
    assert d.undrain == ()


def test_busy_node_is_never_scaled_in_even_when_far_above_need():
    nodes = [node("a", running=1, idle_for=0), node("b", idle_for=100)]
    d = decide(env(max_vcpus=2), [], nodes)  # max 1 node, 2 present
    assert d.desired == 1
    assert d.drain == ("b",)
    assert "a" not in d.drain + d.remove


def test_node_receiving_waiting_work_is_not_drained():
    nodes = [node("a", idle_for=100)]
    d = decide(env(), reqs(1), nodes)
    assert (d.desired, d.drain) == (1, ())


def test_scale_in_drained_node_comes_back_when_work_arrives():
    nodes = [node("a", state=DRAINED, idle_for=100, scale_in=True)]
    d = decide(env(), reqs(1), nodes)
    assert (d.desired, d.undrain, d.remove) == (1, ("a",), ())


def test_operator_drained_node_is_never_undrained():
    nodes = [node("a", state=DRAINED, idle_for=100, scale_in=False)]
    d = decide(env(), reqs(1), nodes)
    assert d.undrain == ()
    assert d.desired == 1  # a new node is asked for instead


def test_min_keeps_idle_nodes():
    nodes = [node("a", idle_for=100), node("b", idle_for=100)]
    d = decide(env(min_vcpus=2), [], nodes)
    assert d.desired == 1
    assert len(d.drain) == 1


# -- demand attribution ----------------------------------------------------------------------


def test_demand_goes_to_the_first_managed_env_that_can_hold_the_job():
    small = ManagedEnv("small", True, 0, 8, Resources.from_vcpus(2, 2048))
    big = ManagedEnv("big", True, 0, 64, Resources.from_vcpus(16, 65536))
    off = ManagedEnv("off", False, 0, 64, Resources.from_vcpus(16, 65536))
    queues = {
        "q": QueueView("q", 1, True, ("unmanaged", "off", "small", "big")),
        "stopped": QueueView("stopped", 1, False, ("small",)),
    }
    runnable = [
        ("q", Resources.from_vcpus(1, 256)),
        ("q", Resources.from_vcpus(8, 256)),
        ("stopped", Resources.from_vcpus(1, 256)),
        ("nope", Resources.from_vcpus(1, 256)),
    ]
    demand = demand_by_env(queues, runnable, {"small": small, "big": big, "off": off})
    assert demand == {
        "small": [Resources.from_vcpus(1, 256)],
        "big": [Resources.from_vcpus(8, 256)],
        "off": [],
    }


def test_a_job_too_large_for_every_env_is_reported_on_the_first():
    small = ManagedEnv("small", True, 0, 8, Resources.from_vcpus(2, 2048))
    queues = {"q": QueueView("q", 1, True, ("small",))}
    demand = demand_by_env(queues, [("q", Resources.from_vcpus(4, 256))], {"small": small})
    assert desired_nodes(small, demand["small"], []).too_large == 1


# -- invariants under hypothesis -------------------------------------------------------------

_states = st.sampled_from([READY, DRAINING, DRAINED])


@st.composite
def scenarios(draw):  # noqa: ANN201
    cpus = draw(st.sampled_from([0.5, 1, 2, 4]))
    max_vcpus = draw(st.integers(0, 40))
    min_vcpus = draw(st.integers(0, max_vcpus))
    e = ManagedEnv("m", draw(st.booleans()), min_vcpus, max_vcpus, Resources.from_vcpus(cpus, 4096))
    nodes = []
    for i in range(draw(st.integers(0, 12))):
        running = draw(st.integers(0, 3))
        nodes.append(
            ManagedNode(
                f"n{i}",
                draw(_states),
                Resources.from_vcpus(cpus, 4096),
                Resources.from_vcpus(min(cpus, running * 0.5), min(4096, running * 512)),
                running,
                0.0 if running else draw(st.floats(0, 100)),
                draw(st.booleans()),
            )
        )
    requests = draw(
        st.lists(
            st.builds(
                Resources.from_vcpus,
                st.sampled_from([0.25, 0.5, 1, 2, 3, 8]),
                st.sampled_from([64, 256, 1024, 4096, 8192]),
            ),
            max_size=60,
        )
    )
    return e, requests, nodes


@settings(max_examples=400, deadline=None)
@given(scenarios(), st.sampled_from([0.0, 10.0, 30.0]))
def test_invariants(scenario, idle):  # noqa: ANN001
    e, requests, nodes = scenario
    d = decide(e, requests, nodes, idle)
    # Every drained/removed node was idle long enough.
    for nid in (*d.drain, *d.remove):
        assert next(n for n in nodes if n.node_id == nid).idle_for >= idle


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_waiting_work_never_asks_for_fewer_nodes_than_none(scenario):  # noqa: ANN001
    # (Not "more work, more nodes": first fit decreasing is famously not monotone.)
    e, requests, nodes = scenario
    assert desired_nodes(e, requests, nodes).desired >= desired_nodes(e, [], nodes).desired


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_enough_nodes_for_the_work_when_max_allows(scenario):  # noqa: ANN001
    e, requests, _nodes = scenario
    d = desired_nodes(e, requests, [])
    fitting = [r for r in requests if r.fits_in(e.node)] if e.enabled else []
    if d.needed <= e.max_nodes and fitting:
        total = sum(r.milli_vcpus for r in fitting)
        assert d.desired * e.node.milli_vcpus >= total
        assert d.desired <= max(len(fitting), e.min_nodes)
