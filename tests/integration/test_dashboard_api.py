"""The dashboard's HTTP side against a real cluster, without a browser: the JSON the pages read
(and the API fields added for them: newest-first paging, per-queue/status counts, jobs per
minute, node heartbeat age and use, changes-only WatchJobs), its checks on bad input, and its
security (CSRF token, Origin, session cookie, roles)."""

from __future__ import annotations

import http.client
import http.cookiejar
import json
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from shoal import Client
from shoal.v1 import types_pb2
from tests.integration.conftest import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


class Browserish:
    """urllib with a cookie jar; POSTs carry an Origin (this page's, unless told otherwise)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.csrf = ""

    def request(self, method: str, path: str, body: dict | None = None, *, origin: str | None = None,
                csrf: str | None = None) -> tuple[int, dict, dict]:  # fmt: skip
        headers = {"Content-Type": "application/json"}
        if method == "POST":
            headers["Origin"] = self.base if origin is None else origin
            headers["X-Shoal-CSRF"] = self.csrf if csrf is None else csrf
        data = json.dumps(body).encode() if body is not None else (b"{}" if method == "POST" else None)
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with self.opener.open(req, timeout=30) as resp:
                raw = resp.read()
                is_json = resp.headers.get("Content-Type", "").startswith("application/json")
                return resp.status, json.loads(raw) if is_json else {"text": raw.decode()}, dict(resp.headers)
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}"), dict(err.headers)

    def get(self, path: str) -> tuple[int, dict]:
        status, body, _ = self.request("GET", path)
        return status, body

    def session(self) -> dict:
        status, body = self.get("/ui/api/session")
        assert status == 200, body
        self.csrf = body["csrf"]
        return body


def all_ids(page: Browserish, order: str) -> list[str]:
    ids, token = [], ""
    while True:
        status, body = page.get(f"/ui/api/jobs?limit=25&order={order}" + (f"&token={token}" if token else ""))
        assert status == 200, body
        ids += [j["job_id"] for j in body["jobs"]]
        token = body["next_token"]
        if not token:
            return ids


def sse_events(base: str, path: str):  # noqa: ANN201 - a generator of (event, data)
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    conn.request("GET", path)
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Content-Type", "").startswith("text/event-stream")
    event = ""
    try:
        while True:
            line = resp.readline().decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                yield event, json.loads(line[6:])
    finally:
        conn.close()


def test_pages_data_paging_counts_nodes_live_changes_and_csrf(cluster_factory) -> None:  # noqa: ANN001
    cluster = cluster_factory(http_port=0, agents=1)
    page = Browserish(cluster.http_url)
    with Client(cluster.address, timeout=30) as client:
        holder = client.submit_job("holder", command=["sleep", "60"], vcpus=2).job_id
        eventually(lambda: client.describe_jobs([holder])[0].status == types_pb2.JOB_STATUS_RUNNING, what="holder running")
        client.submit_job("sweep", command=["true"], array_size=25)
        for i in range(5):
            client.submit_job(f"single-{i}", command=["true"])

        def counts() -> dict[str, int]:
            status, body = page.get("/ui/api/overview")
            assert status == 200, body
            (default,) = [q for q in body["queues"] if q["job_queue"] == "default"]
            return default["counts"]

        # 1 + 1 array parent + 25 children + 5: all counted, from the view's counters.
        eventually(lambda: sum(counts().values()) == 32 and counts()["SUBMITTED"] == 0, what="every job counted")
        assert counts()["RUNNING"] == 1 and counts()["RUNNABLE"] >= 30
        _, overview = page.get("/ui/api/overview")
        assert len(overview["jobs_per_minute"]) == 60 and sum(m["started"] for m in overview["jobs_per_minute"][-2:]) >= 1
        (env,) = overview["environments"]
        assert env["name"] == "default" and env["nodes"] == {"READY": 1} and env["used_vcpus"] == 2 and env["vcpus"] == 2

        # Newest first is oldest first reversed, page by page, with nothing lost or repeated.
        oldest, newest = all_ids(page, "oldest"), all_ids(page, "newest")
        assert len(oldest) == 32 and len(set(oldest)) == 32
        assert newest == oldest[::-1] and oldest[0] == holder
        status, body = page.get("/ui/api/jobs?limit=25&status=RUNNING")
        assert [j["job_id"] for j in body["jobs"]] == [holder]
        status, body = page.get(f"/ui/api/jobs?limit=50&array={oldest[1]}&order=oldest")
        assert [j["job_id"] for j in body["jobs"]] == [f"{oldest[1]}:{i}" for i in range(25)]

        # Nodes: what runs there, what it holds, how fresh its heartbeat is.
        _, nodes = page.get("/ui/api/nodes")
        (node,) = nodes["nodes"]
        assert node["running_job_ids"] == [holder] and node["used_vcpus"] == 2 and node["used_memory_mib"] == 256
        assert node["heartbeat_age_ms"] is not None and 0 <= node["heartbeat_age_ms"] < 30_000

        # One job, with `why` for a waiting one.
        status, job = page.get(f"/ui/api/jobs/{oldest[-1]}")
        assert status == 200 and job["status"] == "RUNNABLE" and job["why"] and not job["why_error"]
        assert page.get("/ui/api/jobs/00000000-0000-4000-8000-000000000000")[0] == 404

        # Live: after "ready" only changes come (none of the 32 jobs as they are), then the new one.
        events = sse_events(cluster.http_url, "/ui/api/events/jobs")
        assert next(events) == ("ready", {})
        late = client.submit_job("late-comer", command=["true"]).job_id
        event, data = next(events)
        assert event == "jobs" and {j["job_id"] for j in data["jobs"]} == {late}
        events.close()

        # Bad input names the field.
        for query, field in (("status=BOGUS", "status"), ("after=yesterday", "after"), ("limit=7", "limit"), ("order=up", "order")):
            status, body = page.get(f"/ui/api/jobs?{query}")
            assert status == 400 and body["error"].startswith(f"{field}:"), (query, body)

        # Actions: no session/CSRF token, another Origin, a wrong body: refused, nothing done.
        assert page.request("POST", f"/ui/api/jobs/{holder}/terminate")[0] == 403
        page.session()
        status, body, _ = page.request("POST", f"/ui/api/jobs/{holder}/terminate", origin="http://attacker.example")
        assert status == 403 and "cross-origin" in body["error"]
        status, body, _ = page.request("POST", f"/ui/api/jobs/{holder}/terminate", csrf="forged")
        assert status == 403 and "X-Shoal-CSRF" in body["error"]
        status, body, _ = page.request("POST", "/ui/api/queues/default/state", {"state": "off"})
        assert status == 400 and body["error"].startswith("state:")
        assert client.describe_jobs([holder])[0].status == types_pb2.JOB_STATUS_RUNNING
        status, body, _ = page.request("POST", f"/ui/api/jobs/{holder}/terminate", {"reason": "from the test"})
        assert status == 200, body
        eventually(lambda: client.describe_jobs([holder])[0].status == types_pb2.JOB_STATUS_FAILED, what="holder terminated")
        assert client.describe_jobs([holder])[0].status_reason == "from the test"

        # Without authentication only IP addresses and localhost are answered (DNS rebinding).
        rebound = urllib.request.Request(cluster.http_url + "/ui/api/jobs", headers={"Host": "attacker.example:80"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(rebound, timeout=30)
        assert refused.value.code == 403 and "IP address or localhost" in json.loads(refused.value.read())["error"]

        status, _, headers = page.request("GET", "/ui/")
        assert status == 200 and "script-src 'self'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"


TOKENS = {"ops": ("admin-token-0123456789abcdef", "admin"), "viewer": ("reader-token-0123456789abcdef", "reader"),
          "ci": ("submitter-token-0123456789ab", "submitter")}  # fmt: skip


def test_login_session_cookie_roles_and_logout(cluster_factory, tmp_path: Path) -> None:  # noqa: ANN001
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text("".join(f"- {{name: {n}, token: {t}, role: {r}}}\n" for n, (t, r) in TOKENS.items()))
    admin, submitter = TOKENS["ops"][0], TOKENS["ci"][0]
    cluster = cluster_factory(http_port=0, agents=1, controller_args=["--tokens-file", str(tokens)], token=admin)
    with Client(cluster.address, token=admin, timeout=30) as ops, Client(cluster.address, token=submitter, timeout=30) as ci:
        theirs = ops.submit_job("ops-job", command=["sleep", "60"], vcpus=0.5).job_id
        mine = ci.submit_job("ci-job", command=["sleep", "60"], vcpus=0.5).job_id

        page = Browserish(cluster.http_url)
        assert page.session() == {"auth_required": True, "logged_in": False, "name": "", "role": "", "csrf": ""}
        assert page.get("/ui/api/jobs")[0] == 401
        status, body, _ = page.request("POST", "/ui/api/login", {"token": "not-a-token-0000000000"})
        assert status == 401 and body["error"] == "unknown token"
        status, body, _ = page.request("POST", "/ui/api/login", {"token": TOKENS["viewer"][0]}, origin="http://attacker.example")
        assert status == 403, "a login from another site"

        status, body, headers = page.request("POST", "/ui/api/login", {"token": TOKENS["viewer"][0]})
        assert status == 200 and body["role"] == "reader" and body["name"] == "viewer"
        cookie = headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKENS["viewer"][0] not in cookie
        page.session()
        assert page.get("/ui/api/jobs")[0] == 200
        status, body, _ = page.request("POST", "/ui/api/nodes/agent-1/drain")
        assert status == 403 and "DrainNode needs the admin role; 'viewer' is a reader" in body["error"]

        # A submitter stops its own jobs only (the job service's owner check, as on gRPC).
        ci_page = Browserish(cluster.http_url)
        assert ci_page.request("POST", "/ui/api/login", {"token": submitter})[0] == 200
        ci_page.session()
        status, body, _ = ci_page.request("POST", f"/ui/api/jobs/{theirs}/terminate")
        assert status == 403 and "not submitted by 'ci'" in body["error"]
        assert ci_page.request("POST", f"/ui/api/jobs/{mine}/terminate")[0] == 200
        eventually(lambda: ops.describe_jobs([mine])[0].status == types_pb2.JOB_STATUS_FAILED, what="ci's job terminated")
        assert ops.describe_jobs([mine])[0].status_reason == "Terminated from the dashboard by ci"
        assert ops.describe_jobs([theirs])[0].status != types_pb2.JOB_STATUS_FAILED

        # Logout ends the session on the server: the old cookie is worth nothing.
        stale = list(page.jar)
        assert page.request("POST", "/ui/api/logout")[0] == 200
        for c in stale:
            page.jar.set_cookie(c)
        assert page.get("/ui/api/jobs")[0] == 401
