"""The Python SDK: `shoal.Client`, a synchronous client of the shoal.v1.Batch API.

Method names are the snake_case of AWS Batch's verbs (`submit_job`, `describe_jobs`, ...) so that
code written against boto3's batch client reads the same here. Calls return the protobuf
messages of `shoal.v1` and raise the classes of `shoal.errors` (`NotFound`, `InvalidArgument`,
`Unavailable`, ...), never a raw `grpc.RpcError`.

Three things the raw gRPC stub does not do, and this client does:

* **Deadlines.** Every unary call carries `timeout` seconds; a stuck controller cannot hang a
  script forever.
* **Leader following.** A follower answers a leader-only call with UNAVAILABLE and the leader's
  address in the trailing metadata key "shoal-leader". The client retries once there and keeps
  using that address. The follower refused without applying anything, so this is safe for
  writes too.
* **Failover between replicas.** Given several addresses, a read that finds a replica
  unreachable moves on to the next one. A write moves on only when the call certainly never
  reached a server (the connection was refused / could not be made): a submission that timed out
  may have been applied, and retrying it blindly could run a job twice.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import grpc
from google.protobuf.message import Message

from shoal import tls
from shoal.errors import (
    DeadlineExceeded,
    InvalidArgument,
    NotFound,
    ShoalError,
    Unavailable,
    WaitTimeout,
    from_rpc_error,
    leader_hint,
)
from shoal.jobdef import SECRET_ENV_TAG
from shoal.v1 import batch_pb2, batch_pb2_grpc, types_pb2

__all__ = ["ADDRESS_ENV", "DEFAULT_ADDRESS", "Client", "WaitTimeout", "build_submit_request", "enum_name", "enum_value"]

DEFAULT_ADDRESS = "127.0.0.1:50051"
"""Where a controller listens when nothing else is configured (`shoal up` uses it too)."""

ADDRESS_ENV = "SHOAL_ADDR"
"""Environment variable with the controller address(es), comma-separated."""

FINAL_STATUSES = frozenset({types_pb2.JOB_STATUS_SUCCEEDED, types_pb2.JOB_STATUS_FAILED})
"""A job in one of these statuses never changes again."""

# Substrings of gRPC's own UNAVAILABLE details that mean "no connection was ever made", i.e. the
# request bytes never left this process. Only then is it safe to resend a write elsewhere.
_NEVER_CONNECTED = (
    "failed to connect",
    "connection refused",
    "connect failed",
    "dns resolution failed",
    "name resolution",
    "no route to host",
    "network is unreachable",
)

# Stream errors after which WatchJobs is simply re-opened by `wait` (the server re-sends the
# current state of every job on open, so nothing is lost in the gap).
_REOPEN_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)


# --- enum names ------------------------------------------------------------------------------------


def _enum_prefix(enum_type: Any) -> str:
    # Every shoal enum's zero value is <PREFIX>UNSPECIFIED, e.g. JOB_STATUS_UNSPECIFIED.
    zero = enum_type.Name(0)
    return zero[: -len("UNSPECIFIED")] if zero.endswith("UNSPECIFIED") else ""


def enum_name(enum_type: Any, value: int) -> str:
    """The display name of an enum value without its prefix: JOB_STATUS_RUNNABLE -> "RUNNABLE".

    UNSPECIFIED becomes "" and an unknown number (a newer server) becomes its decimal string.
    """
    if value == 0:
        return ""
    try:
        name: str = enum_type.Name(value)
    except ValueError:
        return str(value)
    return name.removeprefix(_enum_prefix(enum_type))


def enum_value(enum_type: Any, text: str | int, *, what: str = "value") -> Any:
    """Parse a user-typed enum name ("runnable", "RUNNABLE", "JOB_STATUS_RUNNABLE") to its number.

    Raises InvalidArgument naming the accepted names, so a typo reads as a usable error.
    """
    if isinstance(text, int):
        return text
    prefix = _enum_prefix(enum_type)
    wanted = text.strip().upper().replace("-", "_")
    for name in enum_type.keys():
        if name.endswith("UNSPECIFIED"):
            continue
        if wanted in (name, name.removeprefix(prefix)):
            return enum_type.Value(name)
    choices = ", ".join(n.removeprefix(prefix) for n in enum_type.keys() if not n.endswith("UNSPECIFIED"))
    raise InvalidArgument(f"unknown {what} {text!r} (expected one of {choices})")


# --- the client ------------------------------------------------------------------------------------


def _split_addresses(addresses: str | Sequence[str] | None) -> list[str]:
    if addresses is None:
        addresses = os.environ.get(ADDRESS_ENV) or DEFAULT_ADDRESS
    parts = addresses.split(",") if isinstance(addresses, str) else list(addresses)
    result = [a.strip() for a in parts if a and a.strip()]
    if not result:
        raise InvalidArgument("no controller address given (expected HOST:PORT[,HOST:PORT...])")
    return list(dict.fromkeys(result))


def _never_connected(err: grpc.RpcError) -> bool:
    """True when gRPC failed before any byte of the request reached a server."""
    if err.code() != grpc.StatusCode.UNAVAILABLE:  # type: ignore[attr-defined]
        return False
    details = (err.details() or "").lower()  # type: ignore[attr-defined]
    return any(marker in details for marker in _NEVER_CONNECTED)


def _short_reason(err: grpc.RpcError) -> str:
    """gRPC's connection errors are long; keep the part a person acts on."""
    details = err.details() or err.code().name  # type: ignore[attr-defined]
    lowered = details.lower()
    for marker, short in (
        ("connection refused", "connection refused"),
        ("deadline", "timed out"),
        ("dns resolution failed", "cannot resolve host name"),
        ("name resolution", "cannot resolve host name"),
        ("no route to host", "no route to host"),
        ("network is unreachable", "network is unreachable"),
    ):
        if marker in lowered:
            return short
    return details.splitlines()[0]


def _as_environment(env: Mapping[str, str] | Iterable[types_pb2.KeyValue] | None) -> list[types_pb2.KeyValue]:
    if env is None:
        return []
    if isinstance(env, Mapping):
        return [types_pb2.KeyValue(name=k, value=str(v)) for k, v in env.items()]
    return list(env)


def _as_dependency(dep: str | types_pb2.JobDependency) -> types_pb2.JobDependency:
    if isinstance(dep, types_pb2.JobDependency):
        return dep
    return types_pb2.JobDependency(job_id=dep)


def _as_timeout(timeout: types_pb2.JobTimeout | int | None) -> types_pb2.JobTimeout | None:
    if timeout is None or isinstance(timeout, types_pb2.JobTimeout):
        return timeout
    return types_pb2.JobTimeout(attempt_duration_seconds=int(timeout))


def _as_retry(retry: types_pb2.RetryStrategy | int | None) -> types_pb2.RetryStrategy | None:
    if retry is None or isinstance(retry, types_pb2.RetryStrategy):
        return retry
    return types_pb2.RetryStrategy(attempts=int(retry))


def _ce_order(names: Sequence[str]) -> list[types_pb2.ComputeEnvironmentOrder]:
    # AWS Batch numbers the order from 1; the list order is the order environments are tried.
    return [types_pb2.ComputeEnvironmentOrder(order=i, compute_environment=n) for i, n in enumerate(names, 1)]


def _provisioner(
    kind: str | types_pb2.Provisioner | None, command: Sequence[str], node_vcpus: float, node_memory_mib: int
) -> types_pb2.Provisioner | None:
    if kind is None or isinstance(kind, types_pb2.Provisioner):
        return kind
    return types_pb2.Provisioner(
        kind=kind, command=list(command), node_vcpus=node_vcpus, node_memory_mib=node_memory_mib
    )


class Client:
    """A synchronous client of one shoal cluster.

    `addresses` is one "host:port", a comma-separated list, or a sequence of them; by default
    $SHOAL_ADDR, else 127.0.0.1:50051. Any replica answers reads; the client remembers the
    replica that last answered (or the leader it was redirected to) and talks to it first.

    `timeout` is the deadline in seconds of every unary call. Streams (`watch_jobs`,
    `get_job_logs(follow=True)`) have no deadline of their own unless one is passed.

    `ca` turns TLS on: the PEM file (or bytes) of the cluster CA the controllers' certificates
    chain to; by default $SHOAL_CA. `token` is the bearer token sent with every call; by default
    $SHOAL_TOKEN, else the first line of the file $SHOAL_TOKEN_FILE. `credentials` (gRPC channel
    credentials) may be given instead of `ca` for anything more unusual.

    Use as a context manager, or call `close()`, to release the connections.
    """

    def __init__(
        self,
        addresses: str | Sequence[str] | None = None,
        *,
        timeout: float = 30.0,
        credentials: grpc.ChannelCredentials | None = None,
        ca: str | os.PathLike[str] | bytes | None = None,
        token: str | None = None,
    ) -> None:
        self.addresses: list[str] = _split_addresses(addresses)
        self.timeout = timeout
        ca = ca if ca is not None else os.environ.get(tls.CA_ENV) or None
        if credentials is None and ca is not None:
            credentials = tls.channel_credentials(ca)
        self._credentials = credentials
        self._metadata = tls.token_metadata(tls.resolve_token(token))
        self._current = self.addresses[0]
        self._channels: dict[str, grpc.Channel] = {}
        self._stubs: dict[str, batch_pb2_grpc.BatchStub] = {}

    # --- plumbing ----------------------------------------------------------------------------------

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every connection. The client must not be used afterwards."""
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()
        self._stubs.clear()

    @property
    def current_address(self) -> str:
        """The address the next call goes to first (the last one that answered)."""
        return self._current

    def _stub(self, address: str) -> batch_pb2_grpc.BatchStub:
        stub = self._stubs.get(address)
        if stub is None:
            if self._credentials is not None:
                channel = grpc.secure_channel(address, self._credentials)
            else:
                channel = grpc.insecure_channel(address)
            self._channels[address] = channel
            stub = self._stubs[address] = batch_pb2_grpc.BatchStub(channel)
        return stub

    def _candidates(self) -> list[str]:
        rest = [a for a in self.addresses if a != self._current]
        return [self._current, *rest]

    def _remember(self, address: str) -> None:
        self._current = address

    def _unreachable(self, tried: list[tuple[str, grpc.RpcError]]) -> Unavailable:
        parts = "; ".join(f"{addr} ({_short_reason(err)})" for addr, err in tried)
        if all(_never_connected(err) for _, err in tried):
            return Unavailable(f"cannot reach a controller at {parts}")
        # Some replica answered but could not serve (no leader, etcd unreachable, timed out).
        return Unavailable(f"no controller could answer: {parts}")

    def _unary(self, method: str, request: Message, *, idempotent: bool) -> Any:
        """One unary call with deadline, leader redirect and (when safe) failover.

        `idempotent` is True for reads: those may be retried on any replica after any
        transport failure. Writes are moved on only when the connection was never made.
        """
        tried: list[tuple[str, grpc.RpcError]] = []
        for address in self._candidates():
            try:
                response = getattr(self._stub(address), method)(
                    request, timeout=self.timeout, metadata=self._metadata
                )
            except grpc.RpcError as err:
                leader = leader_hint(err)
                if err.code() == grpc.StatusCode.UNAVAILABLE and leader:  # type: ignore[attr-defined]
                    return self._redirected(leader, method, request)
                transport = err.code() in (  # type: ignore[attr-defined]
                    grpc.StatusCode.UNAVAILABLE,
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                )
                if _never_connected(err) or (idempotent and transport):
                    tried.append((address, err))
                    continue
                raise from_rpc_error(err) from None
            self._remember(address)
            return response
        raise self._unreachable(tried)

    def _redirected(self, leader: str, method: str, request: Message) -> Any:
        # The follower refused without applying anything: one retry at the leader is safe.
        self._remember(leader)
        try:
            return getattr(self._stub(leader), method)(request, timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as err:
            if _never_connected(err):
                raise self._unreachable([(leader, err)]) from None
            raise from_rpc_error(err) from None

    def _stream(self, method: str, request: Message, *, timeout: float | None) -> Iterator[Any]:
        """A server stream: failover and leader redirect until the first message, then relay.

        Streams are reads, so opening one elsewhere is always safe. Once messages flowed, a
        broken stream raises (the caller decides whether to re-open: see `wait`).
        """
        tried: list[tuple[str, grpc.RpcError]] = []
        candidates = self._candidates()
        redirected = False
        while candidates:
            address = candidates.pop(0)
            call = getattr(self._stub(address), method)(request, timeout=timeout, metadata=self._metadata)
            try:
                try:
                    first = next(call)
                except StopIteration:
                    self._remember(address)
                    return
                except grpc.RpcError as err:
                    leader = leader_hint(err)
                    if err.code() == grpc.StatusCode.UNAVAILABLE and leader and not redirected:  # type: ignore[attr-defined]
                        redirected = True
                        candidates = [leader]
                        self._remember(leader)
                        continue
                    if err.code() == grpc.StatusCode.UNAVAILABLE:  # type: ignore[attr-defined]
                        tried.append((address, err))
                        continue
                    raise from_rpc_error(err) from None
                self._remember(address)
                yield first
                try:
                    yield from call
                except grpc.RpcError as err:
                    raise from_rpc_error(err) from None
                return
            finally:
                call.cancel()
        raise self._unreachable(tried)

    # --- jobs --------------------------------------------------------------------------------------

    def submit_job(
        self,
        job_name: str | batch_pb2.SubmitJobRequest,
        *,
        job_queue: str = "",
        job_definition: str = "",
        command: Sequence[str] | None = None,
        environment: Mapping[str, str] | Iterable[types_pb2.KeyValue] | None = None,
        vcpus: float | None = None,
        memory_mib: int | None = None,
        image: str = "",
        runtime: str = "",
        depends_on: Iterable[str | types_pb2.JobDependency] = (),
        array_size: int = 0,
        array_parallelism: int = 0,
        retry_strategy: types_pb2.RetryStrategy | int | None = None,
        timeout: types_pb2.JobTimeout | int | None = None,
        parameters: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        gpus: int | None = None,
        share_identifier: str = "",
        scheduling_priority: int | None = None,
        num_nodes: int = 0,
        main_node: int = 0,
        node_properties: types_pb2.NodeProperties | None = None,
    ) -> batch_pb2.SubmitJobResponse:
        """Submit one job; returns its id and name once it is durably stored.

        Pass either a ready `SubmitJobRequest`, or a name and keyword arguments:
        `command`/`environment`/`vcpus`/`memory_mib` override the definition's container
        properties (without `job_definition` they are the whole specification, and `command`
        is required); `retry_strategy` may be a RetryStrategy or a number of attempts; `timeout`
        a JobTimeout or the attempt duration in seconds; `depends_on` job ids or JobDependency.
        On a fair-share queue `share_identifier` is required and `scheduling_priority`
        (0-9999, higher first within the share) overrides the definition's.
        `num_nodes` (with `main_node`) makes it a multi-node parallel job whose every node runs
        the command (or changes a multi-node definition's count); `node_properties` gives node
        ranges with containers of their own. Its nodes are the jobs `<id>#0` .. (`describe_nodes`).

        Never retried on another replica unless the connection was refused: a submission that
        may have been stored is not sent twice.
        """
        if isinstance(job_name, batch_pb2.SubmitJobRequest):
            request = job_name
        else:
            request = build_submit_request(
                job_name,
                job_queue=job_queue,
                job_definition=job_definition,
                command=command,
                environment=environment,
                vcpus=vcpus,
                memory_mib=memory_mib,
                image=image,
                runtime=runtime,
                depends_on=depends_on,
                array_size=array_size,
                array_parallelism=array_parallelism,
                retry_strategy=retry_strategy,
                timeout=timeout,
                parameters=parameters,
                tags=tags,
                gpus=gpus,
                share_identifier=share_identifier,
                scheduling_priority=scheduling_priority,
                num_nodes=num_nodes,
                main_node=main_node,
                node_properties=node_properties,
            )
        return self._unary("SubmitJob", request, idempotent=False)

    def submit_jobs(
        self, requests: Iterable[batch_pb2.SubmitJobRequest]
    ) -> list[batch_pb2.SubmitJobResponse]:
        """Submit many jobs atomically (all stored or none); responses are in request order."""
        response = self._unary(
            "SubmitJobs", batch_pb2.SubmitJobsRequest(jobs=list(requests)), idempotent=False
        )
        return list(response.jobs)

    def describe_jobs(self, job_ids: Iterable[str]) -> list[types_pb2.Job]:
        """Full records of the given jobs. Unknown ids are left out, as in AWS Batch.

        More than 100 ids are fetched in several calls.
        """
        ids = list(job_ids)
        jobs: list[types_pb2.Job] = []
        for start in range(0, len(ids), 100):
            request = batch_pb2.DescribeJobsRequest(job_ids=ids[start : start + 100])
            jobs.extend(self._unary("DescribeJobs", request, idempotent=True).jobs)
        return jobs

    def describe_nodes(self, job_id: str) -> list[types_pb2.Job]:
        """The node jobs `<id>#0` .. `<id>#N-1` of a multi-node job that exist (they are created
        when the job is first placed), in node order; [] for any other job."""
        job = self.describe_job(job_id)
        count = job.node_properties.num_nodes
        return self.describe_jobs([f"{job_id}#{i}" for i in range(count)]) if count else []

    def describe_job(self, job_id: str) -> types_pb2.Job:
        """The full record of one job; raises NotFound if there is no such job."""
        for job in self.describe_jobs([job_id]):
            if job.job_id == job_id:
                return job
        raise NotFound(f"job {job_id} not found")

    def list_jobs(
        self,
        *,
        queue: str = "",
        status: str | int = 0,
        name_prefix: str = "",
        page_size: int = 0,
        array_job_id: str = "",
        created_after: int = 0,
        created_before: int = 0,
        top_level_only: bool = False,
    ) -> Iterator[batch_pb2.JobSummary]:
        """Summaries of matching jobs, oldest first, fetching further pages as it is iterated.

        `status` takes a JobStatus or its name ("RUNNABLE", "runnable"); 0/"" means every status.
        `top_level_only` leaves array children and the nodes of multi-node jobs out.
        """
        job_status = enum_value(types_pb2.JobStatus, status, what="job status") if status else 0
        token = ""
        while True:
            request = batch_pb2.ListJobsRequest(
                job_queue=queue,
                job_status=job_status,
                job_name_prefix=name_prefix,
                max_results=page_size,
                next_token=token,
                array_job_id=array_job_id,
                created_after=created_after,
                created_before=created_before,
                top_level_only=top_level_only,
            )
            response = self._unary("ListJobs", request, idempotent=True)
            yield from response.job_summary_list
            token = response.next_token
            if not token:
                return

    def cancel_job(self, job_id: str, reason: str) -> None:
        """Cancel a job that has not started yet (idempotent; a running job is left alone)."""
        self._unary("CancelJob", batch_pb2.CancelJobRequest(job_id=job_id, reason=reason), idempotent=False)

    def terminate_job(self, job_id: str, reason: str) -> None:
        """Cancel a job and kill it if it is STARTING/RUNNING; it ends FAILED with `reason`."""
        request = batch_pb2.TerminateJobRequest(job_id=job_id, reason=reason)
        self._unary("TerminateJob", request, idempotent=False)

    def watch_jobs(
        self, *, ids: Iterable[str] = (), queue: str = "", timeout: float | None = None
    ) -> Iterator[batch_pb2.JobEvent]:
        """Job state changes: first the current state of every matching job, then each change.

        The stream never ends by itself; stop iterating (or close the generator) to cancel it.
        `timeout`, if given, is a deadline for the whole stream (DeadlineExceeded when hit).
        A broken stream raises; re-opening is safe since the server re-sends current states.
        """
        request = batch_pb2.WatchJobsRequest(job_ids=list(ids), job_queue=queue)
        return self._stream("WatchJobs", request, timeout=timeout)

    def get_job_logs(self, job_id: str, attempt: int = 0, follow: bool = False) -> Iterator[bytes]:
        """The output (stdout and stderr, interleaved) of one attempt, as raw chunks of bytes.

        `attempt` is 1-based; 0 means the latest. With `follow`, the stream stays open and
        yields new output until the attempt ends (like `tail -f`).
        """
        request = batch_pb2.GetJobLogsRequest(job_id=job_id, attempt=attempt, follow=follow)
        timeout = None if follow else max(self.timeout, 300.0)
        for chunk in self._stream("GetJobLogs", request, timeout=timeout):
            yield chunk.data

    def wait(self, job_ids: Iterable[str], timeout: float | None = None) -> dict[str, types_pb2.Job]:
        """Block until every job is SUCCEEDED or FAILED; returns {job_id: final Job}.

        Raises NotFound for an unknown id (it would never finish), WaitTimeout when `timeout`
        seconds pass first, and Unavailable if no replica can be reached for `self.timeout`
        seconds in a row. A broken watch stream is re-opened (on any replica); the server sends
        the current state first, so no transition is missed.
        """
        ids = list(dict.fromkeys(job_ids))
        deadline = None if timeout is None else time.monotonic() + timeout
        latest: dict[str, types_pb2.Job] = {}
        for job in self.describe_jobs(ids):
            latest[job.job_id] = job
        missing = [i for i in ids if i not in latest]
        if missing:
            raise NotFound(
                f"job {missing[0]} not found"
                if len(missing) == 1
                else f"jobs not found: {', '.join(missing)}"
            )

        def pending() -> list[str]:
            return [i for i in ids if latest[i].status not in FINAL_STATUSES]

        def timed_out() -> WaitTimeout:
            waiting = pending()
            done = {i: latest[i] for i in ids if i not in waiting}
            states = ", ".join(f"{i} {enum_name(types_pb2.JobStatus, latest[i].status)}" for i in waiting)
            return WaitTimeout(
                f"timed out after {timeout:g}s waiting for {len(waiting)} of {len(ids)} job(s): {states}",
                done,
                {i: latest[i] for i in waiting},
            )

        backoff = 0.2
        broken_since: float | None = None
        while pending():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise timed_out()
            stream = self.watch_jobs(ids=pending(), timeout=remaining)
            problem = "the server closed the job watch"
            try:
                for event in stream:
                    broken_since, backoff = None, 0.2
                    if event.job.job_id in latest:
                        latest[event.job.job_id] = event.job
                    if not pending():
                        break
            except DeadlineExceeded:
                if deadline is not None and time.monotonic() >= deadline - 0.05:
                    raise timed_out() from None
                raise
            except ShoalError as err:
                if err.code not in _REOPEN_CODES:
                    raise
                problem = err.message
            finally:
                stream.close()
            if not pending():
                break
            # The stream broke (or ended, which a healthy server never does): re-open it after
            # a pause, on any replica, and give up only after `timeout` seconds without success.
            now = time.monotonic()
            broken_since = broken_since if broken_since is not None else now
            if now - broken_since > self.timeout:
                raise Unavailable(f"lost the job watch and could not re-open it: {problem}")
            pause = backoff * (1 + random.random() / 2)
            if deadline is not None:
                pause = min(pause, max(0.0, deadline - now))
            time.sleep(pause)
            backoff = min(backoff * 2, 5.0)
        return {i: latest[i] for i in ids}

    # --- job definitions ---------------------------------------------------------------------------

    def register_job_definition(
        self,
        job_definition_name: str | batch_pb2.RegisterJobDefinitionRequest,
        *,
        command: Sequence[str] = (),
        image: str = "",
        environment: Mapping[str, str] | Iterable[types_pb2.KeyValue] | None = None,
        vcpus: float = 0.0,
        memory_mib: int = 0,
        runtime: str = "",
        retry_strategy: types_pb2.RetryStrategy | int | None = None,
        timeout: types_pb2.JobTimeout | int | None = None,
        parameters: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        secret_environment: Iterable[str] = (),
        gpus: int = 0,
        scheduling_priority: int = 0,
        node_properties: types_pb2.NodeProperties | None = None,
    ) -> batch_pb2.RegisterJobDefinitionResponse:
        """Register a new revision of a job definition; returns its name and revision.

        Pass a ready RegisterJobDefinitionRequest (e.g. from `shoal.jobdef.load_file`), or a
        name and keyword arguments. `secret_environment` names environment variables whose
        values describe calls show as **** (jobs still get the real values). `node_properties`
        makes it a multi-node definition (its ranges carry the containers: leave `command` etc.
        empty).
        """
        if isinstance(job_definition_name, batch_pb2.RegisterJobDefinitionRequest):
            request = job_definition_name
        else:
            request = batch_pb2.RegisterJobDefinitionRequest(
                job_definition_name=job_definition_name,
                container_properties=types_pb2.ContainerProperties(
                    image=image,
                    command=list(command),
                    environment=_as_environment(environment),
                    resources=types_pb2.ResourceRequirements(vcpus=vcpus, memory_mib=memory_mib, gpus=gpus),
                    runtime=runtime,
                ),
                retry_strategy=_as_retry(retry_strategy),
                timeout=_as_timeout(timeout),
                parameters=dict(parameters or {}),
                tags=dict(tags or {}),
                scheduling_priority=scheduling_priority,
            )
            secret = list(dict.fromkeys(secret_environment))
            if secret:
                request.tags[SECRET_ENV_TAG] = ",".join(secret)
            if node_properties is not None:
                request.ClearField("container_properties")
                request.node_properties.CopyFrom(node_properties)
        return self._unary("RegisterJobDefinition", request, idempotent=False)

    def describe_job_definitions(self, name: str = "", status: str = "") -> list[types_pb2.JobDefinition]:
        """Definitions, every revision; only `name` if given; `status` "ACTIVE"/"INACTIVE"/"" (both)."""
        request = batch_pb2.DescribeJobDefinitionsRequest(job_definition_name=name, status=status.upper())
        return list(self._unary("DescribeJobDefinitions", request, idempotent=True).job_definitions)

    def deregister_job_definition(self, job_definition: str) -> None:
        """Mark "name:revision" INACTIVE; jobs already submitted from it are unaffected."""
        request = batch_pb2.DeregisterJobDefinitionRequest(job_definition=job_definition)
        self._unary("DeregisterJobDefinition", request, idempotent=False)

    # --- job queues --------------------------------------------------------------------------------

    def create_job_queue(
        self,
        name: str,
        compute_environments: Sequence[str],
        *,
        priority: int = 1,
        state: str | int = "ENABLED",
        scheduling_policy: str = "",
    ) -> types_pb2.JobQueue:
        """Create a queue that places jobs on `compute_environments`, tried in the given order;
        with `scheduling_policy` (a policy name) a fair-share queue, else FIFO."""
        request = batch_pb2.CreateJobQueueRequest(
            job_queue_name=name,
            state=enum_value(types_pb2.EntityState, state, what="state"),
            priority=priority,
            compute_environment_order=_ce_order(compute_environments),
            scheduling_policy=scheduling_policy,
        )
        return self._unary("CreateJobQueue", request, idempotent=False)

    def update_job_queue(
        self,
        name: str,
        *,
        priority: int | None = None,
        state: str | int | None = None,
        compute_environments: Sequence[str] | None = None,
        scheduling_policy: str | None = None,
    ) -> types_pb2.JobQueue:
        """Change a queue; arguments left as None are unchanged (a fair-share queue's policy
        can be replaced, not removed)."""
        request = batch_pb2.UpdateJobQueueRequest(
            job_queue_name=name,
            state=enum_value(types_pb2.EntityState, state, what="state") if state is not None else 0,
            compute_environment_order=_ce_order(compute_environments or ()),
            scheduling_policy=scheduling_policy or "",
        )
        if priority is not None:
            request.priority = priority
        return self._unary("UpdateJobQueue", request, idempotent=False)

    def delete_job_queue(self, name: str) -> None:
        """Delete a queue (the server refuses while it holds unfinished jobs)."""
        self._unary("DeleteJobQueue", batch_pb2.DeleteJobQueueRequest(job_queue_name=name), idempotent=False)

    def describe_job_queues(self, names: Iterable[str] = ()) -> list[types_pb2.JobQueue]:
        """The named queues, or every queue."""
        request = batch_pb2.DescribeJobQueuesRequest(job_queues=list(names))
        return list(self._unary("DescribeJobQueues", request, idempotent=True).job_queues)

    # --- compute environments ----------------------------------------------------------------------

    def create_compute_environment(
        self,
        name: str,
        *,
        type: str | int = "UNMANAGED",  # noqa: A002 - AWS Batch's parameter name
        state: str | int = "ENABLED",
        min_vcpus: int = 0,
        desired_vcpus: int = 0,
        max_vcpus: int = 0,
        provisioner: str | types_pb2.Provisioner | None = None,
        provisioner_command: Sequence[str] = (),
        node_vcpus: float = 0,
        node_memory_mib: int = 0,
    ) -> types_pb2.ComputeEnvironment:
        """Create a compute environment: UNMANAGED (agents join it by name) or MANAGED.

        MANAGED needs a provisioner: `provisioner="local"` (agent processes on the controller's
        host) or `"command"` with `provisioner_command` (argv run with SHOAL_DESIRED_NODES etc.),
        and the size of one node, `node_vcpus` and `node_memory_mib`. E.g.
        `create_compute_environment("burst", type="MANAGED", max_vcpus=8, provisioner="local",
        node_vcpus=2, node_memory_mib=2048)`.
        """
        request = batch_pb2.CreateComputeEnvironmentRequest(
            compute_environment_name=name,
            type=enum_value(types_pb2.ComputeEnvironmentType, type, what="type"),
            state=enum_value(types_pb2.EntityState, state, what="state"),
            min_vcpus=min_vcpus,
            desired_vcpus=desired_vcpus,
            max_vcpus=max_vcpus,
        )
        spec = _provisioner(provisioner, provisioner_command, node_vcpus, node_memory_mib)
        if spec is not None:
            request.provisioner.CopyFrom(spec)
        return self._unary("CreateComputeEnvironment", request, idempotent=False)

    def update_compute_environment(
        self,
        name: str,
        *,
        state: str | int | None = None,
        min_vcpus: int | None = None,
        desired_vcpus: int | None = None,
        max_vcpus: int | None = None,
        provisioner: str | types_pb2.Provisioner | None = None,
        provisioner_command: Sequence[str] = (),
        node_vcpus: float = 0,
        node_memory_mib: int = 0,
    ) -> types_pb2.ComputeEnvironment:
        """Change a compute environment; arguments left as None are unchanged.

        A MANAGED environment's provisioner is replaced as a whole when `provisioner` is given
        (with `provisioner_command`, `node_vcpus`, `node_memory_mib` as for create).
        """
        request = batch_pb2.UpdateComputeEnvironmentRequest(
            compute_environment_name=name,
            state=enum_value(types_pb2.EntityState, state, what="state") if state is not None else 0,
        )
        if min_vcpus is not None:
            request.min_vcpus = min_vcpus
        if desired_vcpus is not None:
            request.desired_vcpus = desired_vcpus
        if max_vcpus is not None:
            request.max_vcpus = max_vcpus
        spec = _provisioner(provisioner, provisioner_command, node_vcpus, node_memory_mib)
        if spec is not None:
            request.provisioner.CopyFrom(spec)
        return self._unary("UpdateComputeEnvironment", request, idempotent=False)

    def delete_compute_environment(self, name: str) -> None:
        """Delete a compute environment (refused while a queue uses it)."""
        request = batch_pb2.DeleteComputeEnvironmentRequest(compute_environment_name=name)
        self._unary("DeleteComputeEnvironment", request, idempotent=False)

    def describe_compute_environments(self, names: Iterable[str] = ()) -> list[types_pb2.ComputeEnvironment]:
        """The named compute environments, or every one."""
        request = batch_pb2.DescribeComputeEnvironmentsRequest(compute_environments=list(names))
        return list(self._unary("DescribeComputeEnvironments", request, idempotent=True).compute_environments)

    # --- cluster -----------------------------------------------------------------------------------

    def describe_cluster(self) -> batch_pb2.DescribeClusterResponse:
        """Which replica answered, which one leads, and whether it reaches etcd."""
        return self._unary("DescribeCluster", batch_pb2.DescribeClusterRequest(), idempotent=True)

    # --- nodes -------------------------------------------------------------------------------------

    def list_nodes(self, compute_environment: str = "") -> list[types_pb2.Node]:
        """Nodes known to the cluster (all, or one environment's), with status and capacity."""
        request = batch_pb2.ListNodesRequest(compute_environment=compute_environment)
        return list(self._unary("ListNodes", request, idempotent=True).nodes)

    def drain_node(
        self, node_id: str, *, interrupt: bool = False, deadline_seconds: int = 0, reason: str = ""
    ) -> types_pb2.Node:
        """Stop placing work on a node (like `scontrol update state=DRAIN`).

        Running jobs finish; with `deadline_seconds` the ones still running then are requeued;
        with `interrupt` they are requeued at once (as after a termination notice). Idempotent.
        """
        request = batch_pb2.DrainNodeRequest(
            node_id=node_id, interrupt=interrupt, deadline_seconds=deadline_seconds, reason=reason
        )
        return self._unary("DrainNode", request, idempotent=True).node

    def undrain_node(self, node_id: str) -> types_pb2.Node:
        """Let a DRAINING or DRAINED node take work again."""
        return self._unary("UndrainNode", batch_pb2.UndrainNodeRequest(node_id=node_id), idempotent=True).node

    def explain_job(self, job_id: str) -> batch_pb2.ExplainJobResponse:
        """Every reason a job is not running (`shoal why`), from the scheduler's own decisions."""
        return self._unary("ExplainJob", batch_pb2.ExplainJobRequest(job_id=job_id), idempotent=True)

    # --- scheduling policies -----------------------------------------------------------------------

    def create_scheduling_policy(
        self,
        name: str,
        shares: Mapping[str, float] | Iterable[types_pb2.ShareAttributes] = (),
        *,
        share_decay_seconds: int = 0,
        compute_reservation: int = 0,
        tags: Mapping[str, str] | None = None,
    ) -> types_pb2.SchedulingPolicy:
        """A fair-share policy. `shares`: shareIdentifier (or `prefix*`) -> weightFactor (lower
        gets more; unlisted identifiers weigh 1)."""
        request = batch_pb2.CreateSchedulingPolicyRequest(
            name=name,
            fairshare_policy=fairshare_policy(shares, share_decay_seconds, compute_reservation),
            tags=dict(tags or {}),
        )
        return self._unary("CreateSchedulingPolicy", request, idempotent=False)

    def update_scheduling_policy(
        self,
        name: str,
        shares: Mapping[str, float] | Iterable[types_pb2.ShareAttributes] = (),
        *,
        share_decay_seconds: int = 0,
        compute_reservation: int = 0,
    ) -> types_pb2.SchedulingPolicy:
        """Replace a policy's whole fairsharePolicy."""
        request = batch_pb2.UpdateSchedulingPolicyRequest(
            name=name, fairshare_policy=fairshare_policy(shares, share_decay_seconds, compute_reservation)
        )
        return self._unary("UpdateSchedulingPolicy", request, idempotent=False)

    def delete_scheduling_policy(self, name: str) -> None:
        """Delete a policy (refused while a queue names it)."""
        request = batch_pb2.DeleteSchedulingPolicyRequest(name=name)
        self._unary("DeleteSchedulingPolicy", request, idempotent=False)

    def describe_scheduling_policies(self, names: Iterable[str] = ()) -> list[types_pb2.SchedulingPolicy]:
        """The named policies, or every policy."""
        request = batch_pb2.DescribeSchedulingPoliciesRequest(names=list(names))
        return list(self._unary("DescribeSchedulingPolicies", request, idempotent=True).scheduling_policies)


def fairshare_policy(
    shares: Mapping[str, float] | Iterable[types_pb2.ShareAttributes],
    share_decay_seconds: int = 0,
    compute_reservation: int = 0,
) -> types_pb2.FairsharePolicy:
    """A FairsharePolicy from a {shareIdentifier: weightFactor} mapping (or ShareAttributes)."""
    if isinstance(shares, Mapping):
        entries = [types_pb2.ShareAttributes(share_identifier=k, weight_factor=v) for k, v in shares.items()]
    else:
        entries = list(shares)
    return types_pb2.FairsharePolicy(
        share_decay_seconds=share_decay_seconds, compute_reservation=compute_reservation, share_distribution=entries
    )


def build_submit_request(
    job_name: str,
    *,
    job_queue: str = "",
    job_definition: str = "",
    command: Sequence[str] | None = None,
    environment: Mapping[str, str] | Iterable[types_pb2.KeyValue] | None = None,
    vcpus: float | None = None,
    memory_mib: int | None = None,
    image: str = "",
    runtime: str = "",
    depends_on: Iterable[str | types_pb2.JobDependency] = (),
    array_size: int = 0,
    array_parallelism: int = 0,
    retry_strategy: types_pb2.RetryStrategy | int | None = None,
    timeout: types_pb2.JobTimeout | int | None = None,
    parameters: Mapping[str, str] | None = None,
    tags: Mapping[str, str] | None = None,
    gpus: int | None = None,
    share_identifier: str = "",
    scheduling_priority: int | None = None,
    num_nodes: int = 0,
    main_node: int = 0,
    node_properties: types_pb2.NodeProperties | None = None,
) -> batch_pb2.SubmitJobRequest:
    """The SubmitJobRequest `Client.submit_job` sends for these arguments (for `submit_jobs`)."""
    overrides = batch_pb2.ContainerOverrides(
        command=list(command or ()),
        environment=_as_environment(environment),
        image=image,
        runtime=runtime,
    )
    if vcpus is not None:
        overrides.vcpus = vcpus
    if memory_mib is not None:
        overrides.memory_mib = memory_mib
    if gpus is not None:
        overrides.gpus = gpus
    request = batch_pb2.SubmitJobRequest(
        job_name=job_name,
        job_queue=job_queue,
        job_definition=job_definition,
        container_overrides=overrides,
        depends_on=[_as_dependency(d) for d in depends_on],
        parameters=dict(parameters or {}),
        tags=dict(tags or {}),
        share_identifier=share_identifier,
    )
    if scheduling_priority is not None:
        request.scheduling_priority_override = scheduling_priority
    if array_size:
        request.array_properties.size = array_size
    if array_parallelism:
        request.array_properties.parallelism = array_parallelism
    retry = _as_retry(retry_strategy)
    if retry is not None:
        request.retry_strategy.CopyFrom(retry)
    job_timeout = _as_timeout(timeout)
    if job_timeout is not None:
        request.timeout.CopyFrom(job_timeout)
    if node_properties is not None:
        request.node_properties.CopyFrom(node_properties)
    if num_nodes:
        request.node_properties.num_nodes = num_nodes
        request.node_properties.main_node = main_node
    elif main_node:
        request.node_properties.main_node = main_node  # refused by the server without num_nodes
    return request
