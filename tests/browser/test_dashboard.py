"""The dashboard as a person uses it, in headless chromium against a real cluster: a submitted
job appears live, its page shows its logs (escaped), Terminate and Drain work from the page; with
--tokens-file a reader sees no buttons and its actions are refused by the server."""

from __future__ import annotations

from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from shoal import Client
from shoal.v1 import types_pb2
from tests.integration.conftest import eventually

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

WAIT = 45  # seconds: generous on a loaded machine; every wait ends as soon as the page shows it
XSS_LINE = "<script>window.__xss = 1</script>"
XSS_REASON = "<img src=x onerror=window.__xss=2> wrong input"


def wait(driver, condition, what: str):  # noqa: ANN001, ANN201
    from selenium.common.exceptions import StaleElementReferenceException

    # A condition reading an element the page just re-rendered is asked again, not failed.
    waiter = WebDriverWait(driver, WAIT, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,))
    return waiter.until(condition, message=f"waiting for {what}")


def css(driver, selector: str):  # noqa: ANN001, ANN201
    return driver.find_elements(By.CSS_SELECTOR, selector)


def text_of(driver, selector: str) -> str:  # noqa: ANN001
    """The text of the first match. The live pages re-render what changed, so an element found
    a moment ago may be replaced before its text is read: then the new one is read."""
    from selenium.common.exceptions import StaleElementReferenceException

    for _ in range(20):
        found = css(driver, selector)
        try:
            return found[0].text if found else ""
        except StaleElementReferenceException:
            continue
    raise AssertionError(f"{selector}: replaced on every read (20 times)")


def loaded(driver, count: int = 1):  # noqa: ANN001, ANN201
    """The current page finished loading its data `count` times (main[data-loaded])."""
    return lambda d: int(d.find_element(By.ID, "main").get_attribute("data-loaded") or 0) >= count


def confirm_dialog(driver, reason: str | None = None) -> None:  # noqa: ANN001
    wait(driver, lambda d: css(d, "#confirm-dialog[open]"), "the confirmation dialog")
    if reason is not None:
        css(driver, "#dialog-reason")[0].send_keys(reason)
    css(driver, "#dialog-confirm")[0].click()


def _populate(client: Client) -> dict[str, str]:
    """A little of everything, so that the pages (and the README's screenshots) show it."""
    client.create_job_queue("urgent", compute_environments=["default"], priority=10)
    ids = {
        "array": client.submit_job("ingest-logs", command=["sh", "-c", "echo part $SHOAL_JOB_ARRAY_INDEX"],
                                   array_size=12, array_parallelism=2, vcpus=0.5).job_id,
        "failed": client.submit_job("flaky-export", command=["sh", "-c", "echo connecting; exit 3"]).job_id,
        "big": client.submit_job("train-model", command=["true"], vcpus=64, job_queue="urgent").job_id,
    }  # fmt: skip
    for i in range(3):
        client.submit_job(f"report-daily-{i}", command=["sh", "-c", "echo report ready"], vcpus=0.5)
    ids["dependent"] = client.submit_job("publish-export", command=["true"], depends_on=[ids["failed"]]).job_id
    return ids


def test_dashboard_live_job_logs_terminate_and_drain(cluster_factory, browser, screenshot) -> None:  # noqa: ANN001
    cluster = cluster_factory(http_port=0, agents=2)
    driver = browser
    with Client(cluster.address, timeout=30) as client:
        ids = _populate(client)
        eventually(lambda: {j.status for j in client.describe_jobs([ids["array"], ids["dependent"]])} <= {
            types_pb2.JOB_STATUS_SUCCEEDED, types_pb2.JOB_STATUS_FAILED}, timeout=90, what="the array and the dependent job to end")  # fmt: skip

        # Jobs page first, then a job is submitted: it must show up without a reload.
        driver.get(cluster.http_url + "/ui/#/jobs")
        wait(driver, loaded(driver), "the jobs list")
        driver.execute_script("window.__sameDocument = 'yes'")
        probe = client.submit_job(
            "live-probe", job_queue="urgent",
            command=["sh", "-c", f"echo '{XSS_LINE}'; echo '<b>not bold</b>' >&2; echo 'step 1 of 3: loading input'; sleep 120"],
        ).job_id  # fmt: skip
        row = f'tr[data-job-id="{probe}"]'
        wait(driver, lambda d: css(d, row), "the new job's row to appear live")
        wait(driver, lambda d: "RUNNING" in text_of(d, row), "the new job to be shown RUNNING")
        assert driver.execute_script("return window.__sameDocument") == "yes", "the page was reloaded"
        screenshot(driver, "jobs")
        css(driver, 'th[data-key="job_name"]')[0].click()
        names = [e.text for e in css(driver, "#jobs-body td.name")]
        assert names == sorted(names) and len(names) == 20, names  # every job of the test
        # The CLI's filters: only the FAILED ones, then back to all (by the URL, as a link would).
        Select(css(driver, "#f-status")[0]).select_by_value("FAILED")
        css(driver, "#job-filters button[type=submit]")[0].click()
        wait(driver, lambda d: sorted(e.text for e in css(d, "#jobs-body td.name")) == ["flaky-export", "publish-export"],
             "the list filtered to the two FAILED jobs")  # fmt: skip
        assert {e.get_attribute("data-status") for e in css(driver, "#jobs-body .badge")} == {"FAILED"}
        driver.get(cluster.http_url + "/ui/#/jobs?prefix=live-")
        wait(driver, lambda d: [e.text for e in css(d, "#jobs-body td.name")] == ["live-probe"], "the name-prefix filter")

        # Its page: logs, live, with the job's HTML shown as text.
        css(driver, f"{row} a")[0].click()
        wait(driver, lambda d: XSS_LINE in text_of(d, "#log-lines"), "the job's output in the log view")
        wait(driver, lambda d: "step 1 of 3" in text_of(d, "#log-lines"), "the third line")
        assert "<b>not bold</b>" in text_of(driver, "#log-lines")
        assert not css(driver, "#log-lines script") and not css(driver, "#log-lines b")
        assert driver.execute_script("return window.__xss === undefined")
        assert probe in text_of(driver, "#job-id")
        screenshot(driver, "job")

        # Drain a node from the Nodes page.
        driver.get(cluster.http_url + "/ui/#/nodes")
        wait(driver, lambda d: css(d, 'tr[data-node-id="agent-2"] button.node-drain'), "agent-2's Drain button")
        assert css(driver, 'tr[data-node-id="agent-1"] td[data-heartbeat]')[0].get_attribute("data-heartbeat") != ""
        assert probe in [a.get_attribute("href").rpartition("/")[2] for a in css(driver, "td.jobs-cell a")]
        css(driver, 'tr[data-node-id="agent-2"] button.node-drain')[0].click()
        confirm_dialog(driver, "kernel upgrade")
        wait(driver, lambda d: css(d, 'tr[data-node-id="agent-2"][data-status^="DRAIN"] button.node-undrain'), "agent-2 shown draining")
        (node,) = [n for n in client.list_nodes() if n.node_id == "agent-2"]
        assert node.status in (types_pb2.NODE_STATUS_DRAINING, types_pb2.NODE_STATUS_DRAINED)
        assert node.status_reason == "kernel upgrade"
        screenshot(driver, "nodes")

        # The other pages, as the README shows them.
        driver.get(cluster.http_url + "/ui/#/overview")
        wait(driver, lambda d: css(d, '#queue-table tr[data-queue="default"] td[data-status="SUCCEEDED"] a'), "the overview's counts")
        assert text_of(driver, '#queue-table tr[data-queue="urgent"] td[data-status="RUNNABLE"]') == "1"
        assert text_of(driver, '#queue-table tr[data-queue="urgent"] td[data-status="RUNNING"]') == "1"
        wait(driver, lambda d: css(d, "#rate-chart rect.bar-finished"), "finished jobs in the per-minute chart")
        running = '#queue-table tr[data-queue="default"] td[data-status="RUNNING"]'
        assert text_of(driver, running) == "0"
        client.submit_job("overview-probe", command=["sleep", "120"])
        wait(driver, lambda d: text_of(d, running) == "1", "the overview to count the new job RUNNING, live")
        screenshot(driver, "overview")

        # An array parent: its children by status, linked to the Jobs page filtered to them.
        driver.get(cluster.http_url + f"/ui/#/job/{ids['array']}")
        wait(driver, lambda d: "SUCCEEDED 12" in text_of(d, "#job-children"), "the array's children summary")
        css(driver, "#job-children a.chip")[0].click()
        wait(driver, lambda d: len(css(d, "#jobs-body tr[data-job-id]")) == 12, "the array's 12 children listed")
        assert all(e.get_attribute("data-job-id").startswith(ids["array"] + ":") for e in css(driver, "#jobs-body tr[data-job-id]"))
        driver.get(cluster.http_url + "/ui/#/queues")
        wait(driver, lambda d: css(d, '#queues-table tr[data-queue="urgent"]'), "the queues table")
        screenshot(driver, "queues")

        # Back on its page: Terminate (the reason is HTML too: it must come back as text).
        driver.get(cluster.http_url + f"/ui/#/job/{probe}")
        wait(driver, lambda d: css(d, "#job-terminate"), "the Terminate button")
        css(driver, "#job-terminate")[0].click()
        confirm_dialog(driver, XSS_REASON)
        wait(driver, lambda d: css(d, '.page-head .badge[data-status="FAILED"]'), "the job to be shown FAILED")
        wait(driver, lambda d: XSS_REASON in text_of(d, "#job-facts"), "the terminate reason as text")
        assert not css(driver, "#job-facts img") and driver.execute_script("return window.__xss === undefined")
        (job,) = client.describe_jobs([probe])
        assert job.status == types_pb2.JOB_STATUS_FAILED and job.status_reason == XSS_REASON
        assert not css(driver, "#job-terminate"), "a finished job still offers Terminate"

TOKENS = {"ops": ("admin-token-0123456789abcdef", "admin"), "viewer": ("reader-token-0123456789abcdef", "reader")}


def _post_from_page(driver, path: str, *, csrf: bool = True) -> dict:  # noqa: ANN001
    """POST from inside the logged-in page (its cookie, its CSRF token): what a tampered page
    could send. Returns {status, error}."""
    return driver.execute_async_script(
        """
        const [path, withCsrf, done] = arguments;
        const s = await (await fetch('/ui/api/session')).json();
        const headers = {'Content-Type': 'application/json'};
        if (withCsrf) headers['X-Shoal-CSRF'] = s.csrf;
        const r = await fetch('/ui/api/' + path, {method: 'POST', headers, body: '{}'});
        done({status: r.status, error: (await r.json()).error || ''});
        """,
        path, csrf,
    )  # fmt: skip


def test_reader_token_sees_no_actions_and_is_refused(cluster_factory, browser, screenshot, tmp_path: Path) -> None:  # noqa: ANN001
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text("".join(f"- {{name: {n}, token: {t}, role: {r}}}\n" for n, (t, r) in TOKENS.items()))
    admin = TOKENS["ops"][0]
    cluster = cluster_factory(http_port=0, agents=1, controller_args=["--tokens-file", str(tokens)], token=admin)
    driver = browser
    with Client(cluster.address, token=admin, timeout=30) as client:
        job_id = client.submit_job("long-running", command=["sleep", "120"]).job_id
        eventually(lambda: client.describe_jobs([job_id])[0].status == types_pb2.JOB_STATUS_RUNNING, what="the job to run")

        driver.get(cluster.http_url + "/ui/#/nodes")
        wait(driver, lambda d: css(d, "#login-form"), "the login form")
        screenshot(driver, "login")
        css(driver, "#token")[0].send_keys("not-a-token-of-this-cluster")
        css(driver, "#login-submit")[0].click()
        wait(driver, lambda d: "unknown token" in text_of(d, "#login-error"), "the refusal of a wrong token")
        css(driver, "#token")[0].clear()
        css(driver, "#token")[0].send_keys(TOKENS["viewer"][0])
        css(driver, "#login-submit")[0].click()
        wait(driver, lambda d: text_of(d, "#who-role") == "reader", "the reader to be logged in")
        cookie = next(c for c in driver.get_cookies() if c["name"] == "shoal_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and TOKENS["viewer"][0] not in cookie["value"]

        # No buttons: nodes, queues, the job.
        wait(driver, lambda d: css(d, 'tr[data-node-id="agent-1"]'), "the nodes table")
        assert not css(driver, "button.node-drain") and not css(driver, "button.node-undrain")
        driver.get(cluster.http_url + "/ui/#/queues")
        wait(driver, lambda d: css(d, '#queues-table tr[data-queue="default"]'), "the queues table")
        assert not css(driver, "button.queue-toggle")
        driver.get(cluster.http_url + f"/ui/#/job/{job_id}")
        wait(driver, lambda d: css(d, '.page-head .badge[data-status="RUNNING"]'), "the job page")
        assert not css(driver, "#job-terminate") and not css(driver, "#job-cancel")

        # And the server refuses what a tampered page would send, with the role named.
        for path, role in ((f"jobs/{job_id}/terminate", "submitter"), (f"jobs/{job_id}/cancel", "submitter"),
                           ("nodes/agent-1/drain", "admin"), ("queues/default/state", "admin")):  # fmt: skip
            answer = _post_from_page(driver, path)
            assert answer["status"] == 403 and f"needs the {role} role" in answer["error"], (path, answer)
        answer = _post_from_page(driver, f"jobs/{job_id}/terminate", csrf=False)
        assert answer["status"] == 403 and "X-Shoal-CSRF" in answer["error"]

        (job,) = client.describe_jobs([job_id])
        assert job.status == types_pb2.JOB_STATUS_RUNNING
        assert [n.status for n in client.list_nodes()] == [types_pb2.NODE_STATUS_READY]
