"""The leader's part of multi-node parallel jobs: starting, ending and retrying a job's nodes.

The rules are in `controller.domain.multinode`; this is the shell that applies them inside a
leader pass (`LeaderLoop` owns one `GangRunner`). Everything it decides is written in the
pass's transaction like any other change, and commands go to agents only after the commit.

- start:   a gang placement -> the parent STARTING, every child STARTING on its node, each
           child told the main node's address. Only the main node's StartAttempt goes out;
           the others go out once the main node is RUNNING (`may_start`).
- end:     the main node exited, or a node was lost or interrupted -> the outcome is recorded
           on the parent and every node still running is told to stop (`node_ended`).
- settle:  once no node of the attempt is STARTING or RUNNING any more, the parent's retry
           strategy decides; a retry is placed afresh, as a whole (`settle`). A node whose
           StartAttempt never went out (its agent does not hold it) is ended right away.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from controller.domain import jobs as J
from controller.domain import multinode as M
from controller.scheduler.gang import GangPlacement
from controller.scheduler.placement import Plan
from shoal import log
from shoal.v1 import agent_pb2, types_pb2

if TYPE_CHECKING:
    from controller.services.leader import LeaderLoop, _Pass

logger = log.get("controller.gangs")


class GangRunner:
    def __init__(self, leader: LeaderLoop) -> None:
        self.leader = leader
        # Parents whose attempt has an outcome and whose nodes are being stopped.
        self.ending: set[str] = set()
        # Parent id -> passes that placed jobs behind it while it waited (for reservations).
        # Kept in memory: a new leader starts counting from zero.
        self.passes: dict[str, int] = {}
        # (child id, attempt) -> the agent session a KillAttempt went to (re-sent on a new one).
        self._killed: dict[tuple[str, int], object] = {}
        self._scanned = False

    # ---- helpers -----------------------------------------------------------------------

    def _children(self, p: _Pass, parent: types_pb2.Job) -> list[types_pb2.Job | None]:
        return [self.leader._job(p, M.child_id(parent.job_id, i)) for i in range(parent.node_properties.num_nodes)]

    def _parent_of_child(self, p: _Pass, child: types_pb2.Job) -> types_pb2.Job | None:
        parent = self.leader._job(p, M.parent_of(child.job_id))
        if parent is None or parent.status not in J.ACTIVE or parent.current.attempt != child.current.attempt:
            return None
        return parent

    # ---- scheduling --------------------------------------------------------------------

    def count_passes(self, plan: Plan) -> None:
        """Remember which waiting gangs this pass passed over; forget gangs no longer waiting."""
        for job_id in plan.passed_over:
            self.passes[job_id] = self.passes.get(job_id, 0) + 1
        data = self.leader.view.data
        for job_id in list(self.passes):
            if job_id in plan.passed_over:
                continue
            entry = data.jobs.get(job_id)
            if entry is None or entry.job.status != J.RUNNABLE:
                del self.passes[job_id]

    def start(self, p: _Pass, placement: GangPlacement) -> None:
        leader = self.leader
        parent = leader._job(p, placement.job_id)
        assert parent is not None
        existing = self._children(p, parent)
        new_parent, children = M.start_nodes(
            parent, placement.node_ids, placement.compute_environment, leader.epoch, existing
        )
        main = leader._node(p, placement.node_ids[parent.node_properties.main_node])
        address = (main.address or main.hostname) if main is not None else ""
        for child in children:
            child.node_details.main_node_address = address
            leader._set(p, child)
        leader._set(p, new_parent)
        self.passes.pop(parent.job_id, None)
        logger.info("gang.placed", job_id=parent.job_id, attempt=new_parent.current.attempt,
                    nodes=list(placement.node_ids), main_node_address=address)  # fmt: skip

    def may_start(self, p: _Pass, child: types_pb2.Job) -> bool:
        """Whether a STARTING child's StartAttempt may go out now: the main node at once, the
        others once the main node is RUNNING; none once the attempt is ending."""
        parent = self._parent_of_child(p, child)
        if parent is None or parent.HasField("multinode_outcome"):
            return False
        if child.node_details.is_main_node:
            return True
        main = self.leader._job(p, M.child_id(parent.job_id, parent.node_properties.main_node))
        return main is not None and main.status == J.RUNNING and main.current.attempt == child.current.attempt

    def stopping_parent(self, job_id: str) -> str:
        """The parent a stopping child holds back from a new placement ('' for other jobs)."""
        return M.parent_of(job_id)

    # ---- agent reports -----------------------------------------------------------------

    def node_running(self, p: _Pass, child: types_pb2.Job) -> None:
        """A child reached RUNNING: the main node makes the parent RUNNING."""
        if not child.node_details.is_main_node:
            return
        parent = self._parent_of_child(p, child)
        if parent is not None and parent.status == J.STARTING:
            self.leader._set(p, J.mark_running(parent, child.started_at))

    def node_ended(
        self, p: _Pass, child: types_pb2.Job, result: agent_pb2.AttemptFinished, now: int, *, interrupted: bool
    ) -> None:
        """A child's attempt ended (exit, host lost, interruption)."""
        leader = self.leader
        leader._set(p, M.finish_node(child, result, now_ms=now, interrupted=interrupted))
        parent = self._parent_of_child(p, child)
        if parent is None or parent.HasField("multinode_outcome"):
            return
        if not M.ends_attempt(child, interrupted=interrupted):
            return  # a node other than the main one exited: the others carry on (AWS)
        out = M.outcome(child, result, now_ms=now, interrupted=interrupted)
        leader._set(p, M.with_outcome(parent, out))
        self.ending.add(parent.job_id)
        logger.info("gang.attempt_ending", job_id=parent.job_id, attempt=parent.current.attempt,
                    node_index=out.node_index, interrupted=interrupted, reason=out.status_reason)  # fmt: skip

    def terminate(self, p: _Pass, parent: types_pb2.Job, reason: str) -> None:
        """TerminateJob of a running multi-node job: stop every node; the job ends FAILED."""
        new = J._copy(parent)
        new.terminate_reason = reason
        if not new.HasField("multinode_outcome"):
            new.multinode_outcome.status_reason = reason
            new.multinode_outcome.reason = "Terminated"
            new.multinode_outcome.node_index = parent.node_properties.main_node
        self.leader._set(p, new)
        self.ending.add(parent.job_id)

    # ---- every pass --------------------------------------------------------------------

    def settle(self, p: _Pass, now: int) -> None:
        """Stop what is left of ending attempts; finish those with no node left running."""
        leader = self.leader
        if not self._scanned:
            # A new term: find the attempts a previous leader left ending.
            self._scanned = True
            data = leader.view.data
            for status in J.ACTIVE:
                for job_id in data.by_status.get(status, ()):
                    entry = data.jobs.get(job_id)
                    if entry is not None and entry.job.HasField("multinode_outcome"):
                        self.ending.add(job_id)
        grace_ms = int(leader.config.kill_grace * 1000)
        for pid in sorted(self.ending):
            parent = leader._job(p, pid)
            if parent is None or parent.status not in J.ACTIVE or not parent.HasField("multinode_outcome"):
                self.ending.discard(pid)
                continue
            reason = self._stop_reason(parent)
            left = 0
            for child in self._children(p, parent):
                if child is None or child.status not in J.ACTIVE or child.current.attempt != parent.current.attempt:
                    continue
                key = (child.job_id, child.current.attempt)
                session = leader.sessions.get(child.node_id)
                registered = session is not None and session.registered
                if registered and key not in leader._sent_starts:
                    # Never sent, so its agent does not hold it (it reported what it holds).
                    never = agent_pb2.AttemptFinished(
                        token=child.current, status_reason=M.REASON_NEVER_STARTED, reason="NotStarted"
                    )
                    leader._set(p, M.finish_node(child, never, now_ms=now))
                    continue
                left += 1
                if registered and self._killed.get(key) is not session:
                    self._killed[key] = session
                    kill = agent_pb2.KillAttempt(token=child.current, reason=reason, grace_period_ms=grace_ms)
                    p.commands.append((child.node_id, agent_pb2.ControllerMessage(kill_attempt=kill)))
            if left:
                continue
            self.ending.discard(pid)
            for i in range(parent.node_properties.num_nodes):
                self._killed.pop((M.child_id(pid, i), parent.current.attempt), None)
            finished = M.finish_parent(parent, now_ms=now)
            main = leader._job(p, M.child_id(pid, parent.node_properties.main_node))
            if main is not None:
                finished.attempts[-1].main_node_address = main.node_details.main_node_address
            leader._set(p, finished)
            logger.info("gang.attempt_ended", job_id=pid, attempt=parent.current.attempt,
                        status=J.status_name(finished.status), reason=finished.status_reason)  # fmt: skip

    @staticmethod
    def _stop_reason(parent: types_pb2.Job) -> str:
        out = parent.multinode_outcome
        if parent.terminate_reason:
            return parent.terminate_reason
        if out.interrupted:
            return f"Stopped: the job's attempt was interrupted ({out.status_reason})"
        return f"{M.REASON_MAIN_EXITED} (node {out.node_index})"

    def explain_active(self, parent: types_pb2.Job) -> str:
        """`shoal why` of a running multi-node job: where each of its active nodes is."""
        leader = self.leader
        nodes = []
        for i in range(parent.node_properties.num_nodes):
            child = leader.view.job(M.child_id(parent.job_id, i))
            if child is not None and child.status in J.ACTIVE:
                nodes.append(f"#{i} {J.status_name(child.status)} on {child.node_id}")
        status = J.status_name(parent.status)
        ending = "; ending, its nodes are being stopped" if parent.HasField("multinode_outcome") else ""
        return f"Multi-node job is {status} (attempt {parent.current.attempt}): {', '.join(nodes) or 'no node active'}{ending}"
