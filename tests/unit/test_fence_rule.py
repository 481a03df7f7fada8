"""The controller's side of the host fence (controller/services/sessions.py): when a broken
stream's attempts may be failed over, and which hand-over window is granted."""

from __future__ import annotations

import pytest

from controller.services.sessions import granted_handover, requeue_delay
from shoal.v1 import agent_pb2

pytestmark = [pytest.mark.unit]


def register(window_ms: int = 500, grace_ms: int = 500) -> agent_pb2.Register:
    return agent_pb2.Register(node_id="n1", fence_window_ms=window_ms, fence_kill_grace_ms=grace_ms)


@pytest.mark.parametrize(
    ("window_ms", "grace_ms", "handover", "reconnect_grace", "margin", "expected"),
    [
        (500, 500, 0.0, 1.0, 0.5, 1.5),  # the defaults: W + G + margin
        (500, 500, 0.0, 3.0, 0.5, 3.0),  # never before the reconnect grace
        (5000, 500, 0.0, 1.0, 0.5, 6.0),  # a long window is waited for in full
        (500, 500, 5.0, 1.0, 0.5, 6.0),  # a hand-over replaces the window
        (0, 0, 0.0, 1.0, 0.5, 1.0),  # an agent without a fence: the reconnect grace alone
        (0, 500, 0.0, 0.5, 0.5, 1.0),  # window 0 but a grace: still waited for
    ],
)
def test_a_broken_stream_is_failed_over_only_after_its_fence_has_stopped_the_attempts(
    window_ms: int, grace_ms: int, handover: float, reconnect_grace: float, margin: float, expected: float
) -> None:
    delay = requeue_delay(register(window_ms, grace_ms), handover=handover, reconnect_grace=reconnect_grace,
                          fence_margin=margin)
    assert delay == pytest.approx(expected)


@pytest.mark.parametrize(
    ("requested", "lost_timeout", "expected"),
    [
        (5.0, 10.0, 5.0),  # within what a new leader waits anyway
        (30.0, 10.0, 9.0),  # capped: lost timeout - fence kill grace - margin
        (5.0, 0.8, 0.0),  # nothing left to grant
    ],
)
def test_a_handover_is_granted_no_longer_than_a_new_leader_would_wait(
    requested: float, lost_timeout: float, expected: float
) -> None:
    granted = granted_handover(requested, register(grace_ms=500), agent_lost_timeout=lost_timeout, fence_margin=0.5)
    assert granted == pytest.approx(expected)
    # The invariant behind the cap: a new leader's lost timeout covers the granted window's fence.
    assert granted + 0.5 + 0.5 <= lost_timeout or granted == 0.0
