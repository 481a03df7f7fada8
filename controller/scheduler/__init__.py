"""The scheduler: `place(snapshot) -> Plan`, a pure function over an immutable snapshot."""

from controller.scheduler.placement import Placement, Plan, place
from controller.scheduler.snapshot import EnvView, JobView, NodeView, QueueView, Resources, Snapshot

__all__ = [
    "EnvView",
    "JobView",
    "NodeView",
    "Placement",
    "Plan",
    "QueueView",
    "Resources",
    "Snapshot",
    "place",
]
