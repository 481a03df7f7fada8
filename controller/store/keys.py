"""The etcd key layout. Every value is a serialized shoal.v1 protobuf message.

    <prefix>leader                      LeaderRecord, under the leader's lease (create revision = epoch)
    <prefix>subs/<batch id>             SubmissionBatch: jobs accepted by any replica, not yet expanded
    <prefix>jobs/<job id>               Job (written by the leader only, once expanded)
    <prefix>control/<job id>            JobControl: a cancel/terminate request for the leader
    <prefix>queues/<name>               JobQueue
    <prefix>envs/<name>                 ComputeEnvironment
    <prefix>defs/<name>/<revision>      JobDefinition (revision zero-padded so keys sort by revision)
    <prefix>nodes/<node id>             Node
    <prefix>policies/<name>             SchedulingPolicy
    <prefix>usage/<queue>               FairshareUsage: decayed usage per share (leader only)
    <prefix>-history/jobs/<t>-<id>      HistoryBucket: finished jobs archived out of the hot keyspace
    <prefix>-history/index/<job id>     the history bucket key holding that job

Why submissions land in `subs/` first: one SubmitJobs call becomes one put of one key, so it is
atomic (all or none) whatever etcd's --max-txn-ops, and accepting jobs costs one round trip per
call rather than per job. The leader then writes each job's own key (batched) as it admits it.
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("subs", "jobs", "control", "queues", "envs", "defs", "nodes", "policies", "usage")


@dataclass(frozen=True)
class Keys:
    prefix: str = "/shoal/"

    def __post_init__(self) -> None:
        if not self.prefix.startswith("/") or not self.prefix.endswith("/"):
            raise ValueError(f"etcd prefix must start and end with '/': {self.prefix!r}")

    @property
    def root(self) -> bytes:
        return self.prefix.encode()

    @property
    def leader(self) -> bytes:
        return f"{self.prefix}leader".encode()

    def kind_prefix(self, kind: str) -> bytes:
        return f"{self.prefix}{kind}/".encode()

    def submission(self, batch_id: str) -> bytes:
        return f"{self.prefix}subs/{batch_id}".encode()

    def job(self, job_id: str) -> bytes:
        return f"{self.prefix}jobs/{job_id}".encode()

    def control(self, job_id: str) -> bytes:
        return f"{self.prefix}control/{job_id}".encode()

    def queue(self, name: str) -> bytes:
        return f"{self.prefix}queues/{name}".encode()

    def env(self, name: str) -> bytes:
        return f"{self.prefix}envs/{name}".encode()

    def definition(self, name: str, revision: int) -> bytes:
        return f"{self.prefix}defs/{name}/{revision:010d}".encode()

    def definition_prefix(self, name: str) -> bytes:
        return f"{self.prefix}defs/{name}/".encode()

    def node(self, node_id: str) -> bytes:
        return f"{self.prefix}nodes/{node_id}".encode()

    def policy(self, name: str) -> bytes:
        return f"{self.prefix}policies/{name}".encode()

    def usage(self, queue: str) -> bytes:
        return f"{self.prefix}usage/{queue}".encode()

    # History lives beside the hot prefix, not under it, so the watch never sees it.
    @property
    def history_root(self) -> bytes:
        return f"{self.prefix.rstrip('/')}-history/".encode()

    def history_bucket(self, created_at_ms: int, bucket_id: str) -> bytes:
        return f"{self.prefix.rstrip('/')}-history/jobs/{created_at_ms:013d}-{bucket_id}".encode()

    def history_buckets_between(self, start_ms: int, end_ms: int) -> tuple[bytes, bytes]:
        """[start, end) key range of the buckets whose first job was created in [start, end)."""
        base = f"{self.prefix.rstrip('/')}-history/jobs/"
        return f"{base}{start_ms:013d}".encode(), f"{base}{end_ms:013d}".encode()

    def history_index(self, job_id: str) -> bytes:
        return f"{self.prefix.rstrip('/')}-history/index/{job_id}".encode()

    def parse(self, key: bytes) -> tuple[str, str]:
        """(kind, rest) of a key under the prefix, e.g. ("jobs", "<id>"); ("", "") if foreign."""
        text = key.decode()
        if not text.startswith(self.prefix):
            return "", ""
        rest = text[len(self.prefix) :]
        if rest == "leader":
            return "leader", ""
        kind, _, name = rest.partition("/")
        if kind not in KINDS:
            return "", ""
        return kind, name
