"""Which way the CLI talks to a controller: its HTTP edge (fast to start) or gRPC.

`--addr` / `$SHOAL_ADDR` is a comma-separated list whose entries are either `HOST:PORT`, a
controller's gRPC API, or `http://HOST:PORT` / `https://HOST:PORT`, its HTTP edge
(`controller --http-listen`; `shoal up` serves one and prints the line to export).

The job commands that scripts run in loops (submit, describe, jobs list, wait, cancel,
terminate) go through `Jobs`: over the HTTP entries when there are any (stdlib socket + JSON,
shoal/cli/wire.py), else, or when none of them answers as a shoal edge (connection refused, an
older controller without the native routes, another program on the port: nothing was applied
then), over gRPC with the SDK. A follower that refuses a leader-only call names the leader's gRPC
address; the call is retried there over gRPC, as the SDK does. Every other command uses the SDK
(`grpc_client`); given only HTTP entries, it asks the edge for its replica's gRPC address.

Both ways give the same dicts (proto3 JSON of the shoal.v1 messages, see shoal/cli/jobview.py)
and raise the same shoal.errors, so output, messages and exit codes do not depend on the path.
"""

from __future__ import annotations

import os

from shoal import errors
from shoal.cli.console import ADDRESS_ENV, DEFAULT_ADDRESS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from shoal.cli import wire
    from shoal.client import Client

Doc = dict  # a proto3 JSON object (see module docstring)
_UNREACHABLE = "cannot reach a controller at "


def addresses(args: Any) -> tuple[list[str], list[str]]:
    """(HTTP edge URLs, gRPC HOST:PORTs) of --addr, else $SHOAL_ADDR, else the default."""
    text = getattr(args, "addr", None) or os.environ.get(ADDRESS_ENV) or DEFAULT_ADDRESS
    http: list[str] = []
    grpc: list[str] = []
    for part in text.split(","):
        entry = part.strip()
        if not entry:
            continue
        lowered = entry.lower()
        if lowered.startswith(("http://", "https://")):
            http.append(entry.rstrip("/"))
        elif "://" in entry:
            raise errors.InvalidArgument(f"controller address {entry!r}: expected HOST:PORT or http(s)://HOST:PORT")
        else:
            grpc.append(entry)
    if not http and not grpc:
        raise errors.InvalidArgument("no controller address given (expected HOST:PORT[,HOST:PORT...])")
    return list(dict.fromkeys(http)), list(dict.fromkeys(grpc))


def _http_api(urls: list[str]) -> wire.HttpApi:
    from shoal import tls
    from shoal.cli import wire

    return wire.HttpApi(urls, token=tls.resolve_token(), ca=os.environ.get(tls.CA_ENV) or None)


def grpc_client(args: Any) -> Client:
    """An SDK Client for the gRPC entries; with HTTP entries only, the edge names its replica."""
    from shoal.client import Client

    http, grpc = addresses(args)
    if not grpc:
        from shoal.cli import wire

        try:
            cluster = _http_api(http).call("DescribeCluster", {}, idempotent=True)
        except wire.EdgeMissing as missing:
            raise errors.Unavailable(_UNREACHABLE + str(missing)) from None
        grpc = [a for a in (cluster.get("replicaAddress", ""), cluster.get("leaderAddress", "")) if a]
        if not grpc:
            raise errors.Unavailable(f"{http[0]} did not say where its gRPC API is; give HOST:PORT in --addr")
    return Client(grpc)


# --- the job calls both ways ---------------------------------------------------------------------


class _HttpJobs:
    def __init__(self, api: wire.HttpApi) -> None:
        self.api = api

    def submit_job(self, request: Doc) -> Doc:
        return self.api.call("SubmitJob", request, idempotent=False)

    def submit_jobs(self, requests: list[Doc]) -> list[Doc]:
        return list(self.api.call("SubmitJobs", {"jobs": requests}, idempotent=False).get("jobs", []))

    def describe_jobs(self, ids: list[str]) -> list[Doc]:
        jobs: list[Doc] = []
        for start in range(0, len(ids), 100):
            answer = self.api.call("DescribeJobs", {"jobIds": ids[start : start + 100]}, idempotent=True)
            jobs.extend(answer.get("jobs", []))
        return jobs

    def list_jobs(self, request: Doc) -> list[Doc]:
        found: list[Doc] = []
        while True:
            answer = self.api.call("ListJobs", request, idempotent=True)
            found.extend(answer.get("jobSummaryList", []))
            token = answer.get("nextToken", "")
            if not token:
                return found
            request = {**request, "nextToken": token}

    def stop_job(self, method: str, job_id: str, reason: str) -> None:
        self.api.call(method, {"jobId": job_id, "reason": reason}, idempotent=False)

    def wait(self, ids: list[str], timeout: float | None) -> dict[str, Doc]:
        from shoal.cli import jobview

        return _wait(self, lambda pending, remaining: (
            e.get("job", {}) for e in self.api.stream("WatchJobs", {"jobIds": pending}, timeout=remaining)
        ), jobview.is_final, ids, timeout, self.api.timeout)


class _GrpcJobs:
    def __init__(self, client: Client) -> None:
        self.client = client

    @staticmethod
    def _message(cls: Any, doc: Doc) -> Any:
        from google.protobuf import json_format

        return json_format.ParseDict(doc, cls())

    def submit_job(self, request: Doc) -> Doc:
        from shoal.cli.jobview import from_message
        from shoal.v1 import batch_pb2

        return from_message(self.client.submit_job(self._message(batch_pb2.SubmitJobRequest, request)))

    def submit_jobs(self, requests: list[Doc]) -> list[Doc]:
        from shoal.cli.jobview import from_message
        from shoal.v1 import batch_pb2

        messages = [self._message(batch_pb2.SubmitJobRequest, r) for r in requests]
        return [from_message(r) for r in self.client.submit_jobs(messages)]

    def describe_jobs(self, ids: list[str]) -> list[Doc]:
        from shoal.cli.jobview import from_message

        return [from_message(j) for j in self.client.describe_jobs(ids)]

    def list_jobs(self, request: Doc) -> list[Doc]:
        from shoal.cli.jobview import from_message

        summaries = self.client.list_jobs(
            queue=request.get("jobQueue", ""),
            status=request.get("jobStatus", ""),
            name_prefix=request.get("jobNamePrefix", ""),
        )
        return [from_message(s) for s in summaries]

    def stop_job(self, method: str, job_id: str, reason: str) -> None:
        if method == "CancelJob":
            self.client.cancel_job(job_id, reason)
        else:
            self.client.terminate_job(job_id, reason)

    def wait(self, ids: list[str], timeout: float | None) -> dict[str, Doc]:
        from shoal.cli.jobview import from_message

        try:
            final = self.client.wait(ids, timeout=timeout)
        except errors.WaitTimeout as err:
            raise errors.WaitTimeout(
                err.message,
                {i: from_message(j) for i, j in err.done.items()},
                {i: from_message(j) for i, j in err.pending.items()},
            ) from None
        return {i: from_message(j) for i, j in final.items()}

    def close(self) -> None:
        self.client.close()


def _wait(jobs: _HttpJobs, watch: Any, final: Any, ids: list[str], timeout: float | None, patience: float) -> dict[str, Doc]:
    """shoal.Client.wait's loop over dicts (same messages, same re-open rules)."""
    import time

    ids = list(dict.fromkeys(ids))
    deadline = None if timeout is None else time.monotonic() + timeout
    latest = {j.get("jobId", ""): j for j in jobs.describe_jobs(ids)}
    missing = [i for i in ids if i not in latest]
    if missing:
        raise errors.NotFound(
            f"job {missing[0]} not found" if len(missing) == 1 else f"jobs not found: {', '.join(missing)}"
        )

    def pending() -> list[str]:
        return [i for i in ids if not final(latest[i])]

    def timed_out() -> errors.WaitTimeout:
        from shoal.cli.jobview import status

        waiting = pending()
        states = ", ".join(f"{i} {status(latest[i])}" for i in waiting)
        return errors.WaitTimeout(
            f"timed out after {timeout:g}s waiting for {len(waiting)} of {len(ids)} job(s): {states}",
            {i: latest[i] for i in ids if i not in waiting},
            {i: latest[i] for i in waiting},
        )

    backoff = 0.2
    broken_since: float | None = None
    while pending():
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise timed_out()
        problem = "the server closed the job watch"
        events = None
        try:
            events = watch(pending(), remaining)
            for job in events:
                broken_since, backoff = None, 0.2
                if job.get("jobId") in latest:
                    latest[job["jobId"]] = job
                if not pending():
                    break
        except errors.DeadlineExceeded:
            if deadline is not None and time.monotonic() >= deadline - 0.05:
                raise timed_out() from None
            raise
        except errors.ShoalError as err:
            if err.code_name not in ("UNAVAILABLE", "INTERNAL", "UNKNOWN", "CANCELLED", "ABORTED", "RESOURCE_EXHAUSTED"):
                raise
            problem = err.message
        finally:
            if events is not None:
                events.close()
        if not pending():
            break
        now = time.monotonic()
        broken_since = broken_since if broken_since is not None else now
        if now - broken_since > patience:
            raise errors.Unavailable(f"lost the job watch and could not re-open it: {problem}")
        pause = backoff * 1.25
        if deadline is not None:
            pause = min(pause, max(0.0, deadline - now))
        time.sleep(pause)
        backoff = min(backoff * 2, 5.0)
    return {i: latest[i] for i in ids}


class Jobs:
    """The job calls of the CLI, over the HTTP edge when one is given, else over gRPC."""

    def __init__(self, args: Any) -> None:
        self.http_urls, self.grpc_addresses = addresses(args)
        self._http = _HttpJobs(_http_api(self.http_urls)) if self.http_urls else None
        self._grpc: _GrpcJobs | None = None
        self._missing: str = ""  # why the HTTP entries were passed over (for the error message)

    def __enter__(self) -> Jobs:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._grpc is not None:
            self._grpc.close()

    def _grpc_jobs(self, first: str = "") -> _GrpcJobs:
        from shoal.client import Client

        if self._grpc is None or first:
            addresses = list(dict.fromkeys([first, *self.grpc_addresses] if first else self.grpc_addresses))
            self._grpc = _GrpcJobs(Client(addresses))
        return self._grpc

    def _call(self, name: str, *args: Any) -> Any:
        from shoal.cli import wire

        if self._http is not None and not self._missing:
            try:
                return getattr(self._http, name)(*args)
            except wire.EdgeMissing as missing:
                if not self.grpc_addresses:
                    raise errors.Unavailable(_UNREACHABLE + str(missing)) from None
                self._missing = str(missing)
            except errors.NotLeader as refused:
                if not refused.leader:
                    raise
                return getattr(self._grpc_jobs(refused.leader), name)(*args)
        try:
            return getattr(self._grpc_jobs(), name)(*args)
        except errors.Unavailable as err:
            if self._missing and err.message.startswith(_UNREACHABLE):
                raise errors.Unavailable(
                    _UNREACHABLE + self._missing + "; " + err.message.removeprefix(_UNREACHABLE)
                ) from None
            raise

    def submit_job(self, request: Doc) -> Doc:
        return self._call("submit_job", request)

    def submit_jobs(self, requests: list[Doc]) -> list[Doc]:
        return self._call("submit_jobs", requests)

    def describe_jobs(self, ids: list[str]) -> list[Doc]:
        return self._call("describe_jobs", ids)

    def list_jobs(self, request: Doc) -> list[Doc]:
        return self._call("list_jobs", request)

    def cancel_job(self, job_id: str, reason: str) -> None:
        self._call("stop_job", "CancelJob", job_id, reason)

    def terminate_job(self, job_id: str, reason: str) -> None:
        self._call("stop_job", "TerminateJob", job_id, reason)

    def wait(self, ids: list[str], timeout: float | None) -> dict[str, Doc]:
        return self._call("wait", ids, timeout)
