// One job: status, reason, details, `shoal why`, dependencies, array children, attempts, and
// the logs of any attempt (live while it runs); Cancel / Terminate for those who may.
import { get, may, post, stream } from "../api.js";
import { flash } from "../app.js";
import { clear, confirmAction, duration, empty, h, jobLink, link, mib, num, section, statusBadge, table, time } from "../dom.js";

const FINAL = new Set(["SUCCEEDED", "FAILED"]);
const ACTIVE = new Set(["STARTING", "RUNNING"]);
const MAX_LOG_LINES = 5000;

export function render(main, [jobId]) {
  let job = null;
  let refreshTimer = null;
  let closeLogs = null;
  let logAttempt = 0; // 0 = the latest
  const head = h("div", { class: "page-head" }, h("h1", {}, "Job"));
  const body = h("div", { id: "job-body" }, h("p", { class: "muted" }, "Loading…"));
  const logs = h("div", { class: "log", id: "log-lines", role: "log", "aria-live": "polite" });
  const logState = h("span", { class: "muted", id: "log-state" });
  const attemptPicker = h("div", { class: "attempt-picker", id: "log-attempts" });
  const follow = h("input", { type: "checkbox", id: "log-follow", checked: true });
  follow.addEventListener("change", () => openLogs(logAttempt));
  const logCard = section("Logs", h("div", { class: "log-bar" }, attemptPicker, h("label", {}, follow, " follow"), logState), logs);
  clear(main, head, body, logCard);

  async function refresh() {
    try {
      job = await get(`jobs/${encodeURIComponent(jobId)}`);
      draw();
    } catch (err) {
      clear(body, h("p", { class: "error", id: "job-error" }, err.message));
    }
  }

  function later() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refresh, 300);
  }

  function actionButtons() {
    if (!job || FINAL.has(job.status) || !may("submitter")) return [];
    const out = [];
    const isParent = job.array_size > 0 && job.array_index === null;
    if (!ACTIVE.has(job.status) || isParent) out.push(h("button", { id: "job-cancel", class: "warn", onclick: () => act("cancel") }, "Cancel"));
    out.push(h("button", { id: "job-terminate", class: "danger", onclick: () => act("terminate") }, "Terminate"));
    return out;
  }

  async function act(verb) {
    const what = verb === "cancel" ? "Cancel" : "Terminate";
    const text = verb === "cancel" ? "It will not start; a job already running is left alone." : "A running attempt is killed (SIGTERM, then SIGKILL) and the job fails; it is not retried.";
    const reason = await confirmAction(`${what} job ${job.job_name}?`, text, { confirmLabel: what, danger: verb === "terminate" });
    if (reason === null) return;
    try {
      await post(`jobs/${encodeURIComponent(jobId)}/${verb}`, { reason });
      flash(`${what} requested for ${job.job_name}`, "ok");
      later();
    } catch (err) {
      flash(`${what} refused: ${err.message}`, "error");
    }
  }

  function draw() {
    const j = job;
    clear(head,
      h("div", {}, h("h1", {}, j.job_name, " ", statusBadge(j.status)), h("div", { class: "mono muted", id: "job-id" }, j.job_id)),
      h("div", { class: "actions" }, actionButtons()));
    const facts = [
      ["Status reason", j.status_reason || "—"],
      ["Queue", link(`#/jobs?queue=${encodeURIComponent(j.job_queue)}`, j.job_queue)],
      ["Definition", j.job_definition || "inline"],
      ["Created", time(j.created_at)], ["Started", time(j.started_at)], ["Stopped", time(j.stopped_at)],
      ["Node", j.node_id || "—"],
      ["Command", h("code", {}, j.command.join(" ") || "—")],
      ["Image", j.image || "— (process)"],
      ["Resources", `${num(j.vcpus)} vCPU · ${mib(j.memory_mib)}${j.gpus ? ` · ${j.gpus} GPU` : ""}`],
      ["Attempts", `${j.attempts + (j.current_attempt ? 1 : 0)} of ${j.retry_attempts}`],
      ["Timeout", j.timeout_seconds ? `${j.timeout_seconds} s per attempt` : "none"],
    ];
    if (j.terminate_reason) facts.push(["Terminating", j.terminate_reason]);
    if (j.tags["shoal:owner"]) facts.push(["Submitted by", j.tags["shoal:owner"]]);
    const parts = [h("div", { class: "card" }, h("dl", { class: "facts", id: "job-facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])))];
    if (!FINAL.has(j.status) && !ACTIVE.has(j.status)) {
      parts.push(section("Why it waits (shoal why)",
        j.why_error ? h("p", { class: "muted" }, j.why_error)
          : j.why.length ? h("ul", { id: "job-why" }, j.why.map((r) => h("li", {}, r))) : empty("Nothing holds it back.")));
    }
    if (j.depends_on.length || j.array_parent) {
      const items = j.depends_on.map((d) => h("li", {}, jobLink(d.job_id), " ", d.type !== "UNSPECIFIED" ? h("span", { class: "muted" }, d.type) : "", " ", statusBadge(j.related_status[d.job_id] || "")));
      if (j.array_parent) items.unshift(h("li", {}, "array parent ", jobLink(j.array_parent), " ", statusBadge(j.related_status[j.array_parent] || "")));
      parts.push(section("Depends on", h("ul", { id: "job-deps" }, items)));
    }
    if (j.array_size && j.array_index === null) {
      const counts = Object.entries(j.array_status_summary);
      parts.push(section(`Array children (${j.array_size}${j.array_parallelism ? `, at most ${j.array_parallelism} at once` : ""})`,
        h("div", { class: "chips", id: "job-children" },
          link(`#/jobs?array=${encodeURIComponent(j.job_id)}`, "all children"),
          counts.map(([st, n]) => link(`#/jobs?array=${encodeURIComponent(j.job_id)}&status=${st}`, [statusBadge(st), ` ${num(n)}`], { class: "chip" })))));
    }
    const rows = j.attempt_list.map((a) => h("tr", { "data-attempt": a.attempt },
      h("td", { class: "num" }, a.attempt), h("td", {}, a.node_id), h("td", { class: "num" }, a.exit_code ?? "—"),
      h("td", {}, a.reason), h("td", { class: "reason" }, a.status_reason, a.interrupted ? " (host interrupted)" : ""),
      h("td", { class: "nowrap" }, time(a.started_at)), h("td", { class: "num" }, duration(a.stopped_at && a.started_at ? a.stopped_at - a.started_at : null)),
      h("td", {}, h("button", { class: "link", onclick: () => openLogs(a.attempt) }, "logs"))));
    if (j.current_attempt) {
      rows.push(h("tr", { "data-attempt": j.current_attempt, class: "current" },
        h("td", { class: "num" }, j.current_attempt), h("td", {}, j.node_id), h("td", { class: "num" }, "—"), h("td", {}, ""),
        h("td", {}, statusBadge(j.status)), h("td", { class: "nowrap" }, time(j.started_at)),
        h("td", { class: "num" }, j.started_at ? duration(Date.now() - j.started_at) : "—"),
        h("td", {}, h("button", { class: "link", onclick: () => openLogs(j.current_attempt) }, "logs"))));
    }
    parts.push(section("Attempts", rows.length ? table(["#", "Node", "Exit", "Reason", "Status reason", "Started", "Duration", ""], rows, { id: "job-attempts" }) : empty("Not started yet.")));
    clear(body, parts);
    drawPicker();
  }

  function drawPicker() {
    const n = Math.max(job ? job.attempt_list.length : 0, job ? job.current_attempt : 0);
    const choices = [[0, "latest"]];
    for (let i = 1; i <= n; i++) choices.push([i, `attempt ${i}`]);
    clear(attemptPicker, choices.map(([i, label]) => h("button", { class: i === logAttempt ? "pill on" : "pill", onclick: () => openLogs(i) }, label)));
  }

  function openLogs(attempt) {
    if (closeLogs) closeLogs();
    logAttempt = attempt;
    if (job) drawPicker();
    clear(logs);
    logState.textContent = "connecting…";
    logs.dataset.state = "open";
    let count = 0;
    closeLogs = stream(`logs/${encodeURIComponent(jobId)}`, { attempt, follow: follow.checked ? "1" : "0" }, {
      ready: () => { clear(logs); count = 0; logState.textContent = follow.checked ? "following" : "reading"; },
      attempt: (d) => { logState.textContent = `attempt ${d.attempt} on ${d.node_id}${follow.checked ? " · following" : ""}`; },
      lines: (d) => {
        const stick = logs.scrollTop + logs.clientHeight >= logs.scrollHeight - 4;
        for (const [stamp, streamName, text] of d.lines) {
          logs.append(h("div", { class: `line ${streamName}` }, h("span", { class: "ts" }, stamp ? stamp.slice(11, 23) : ""), h("span", { class: "text" }, text)));
          count++;
        }
        while (logs.childElementCount > MAX_LOG_LINES) logs.firstElementChild.remove();
        if (stick) logs.scrollTop = logs.scrollHeight;
      },
      end: () => { logState.textContent = `end of output (${count} line${count === 1 ? "" : "s"})`; logs.dataset.state = "ended"; later(); },
      failed: (d) => { logState.textContent = d.error; logs.dataset.state = "failed"; },
    });
  }

  const closeJob = stream(`jobs/${encodeURIComponent(jobId)}`, {}, {
    ready: refresh,
    job: later,
    failed: (d) => clear(body, h("p", { class: "error", id: "job-error" }, d.error)),
  });
  openLogs(0);
  return () => {
    clearTimeout(refreshTimer);
    closeJob();
    if (closeLogs) closeLogs();
  };
}
