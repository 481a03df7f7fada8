// Queues and compute environments: their settings, jobs per status per queue, and enabling or
// disabling a queue (admins).
import { get, may, post } from "../api.js";
import { flash } from "../app.js";
import { clear, confirmAction, empty, h, link, mib, num, section, statusBadge, table, time } from "../dom.js";

export function render(main) {
  const queues = h("div", { id: "queues" });
  const envs = h("div", { id: "envs" });
  const error = h("p", { class: "error", hidden: true });
  clear(main, h("div", { class: "page-head" }, h("h1", {}, "Queues and compute environments")), error,
    section("Job queues", queues), section("Compute environments", envs));
  const admin = may("admin");

  async function load() {
    try {
      const d = await get("queues");
      error.hidden = true;
      const order = ["RUNNABLE", "RUNNING", "SUCCEEDED", "FAILED"];
      clear(queues, d.queues.length ? table(
        ["Queue", "State", "Priority", "Compute environments", "Waiting", ...order.map((s) => h("th", { class: "num" }, statusBadge(s))), "Created", ...(admin ? [""] : [])],
        d.queues.map((q) => {
          const waiting = (q.counts.SUBMITTED || 0) + (q.counts.PENDING || 0) + (q.counts.RUNNABLE || 0);
          return h("tr", { "data-queue": q.job_queue_name, "data-state": q.state },
            h("td", {}, link(`#/jobs?queue=${encodeURIComponent(q.job_queue_name)}`, q.job_queue_name)),
            h("td", {}, h("span", { class: `state ${q.state.toLowerCase()}` }, q.state)),
            h("td", { class: "num" }, q.priority),
            h("td", {}, q.compute_environments.join(" → ")),
            h("td", { class: "num" }, num(waiting)),
            order.map((s) => h("td", { class: "num" }, num(q.counts[s] || 0))),
            h("td", { class: "nowrap" }, time(q.created_at)),
            admin ? h("td", {}, h("button", { class: q.state === "ENABLED" ? "queue-toggle warn" : "queue-toggle", "data-queue": q.job_queue_name, onclick: () => toggle(q) }, q.state === "ENABLED" ? "Disable" : "Enable")) : "");
        }), { id: "queues-table" }) : empty("No job queues."));
      clear(envs, d.environments.length ? table(
        ["Environment", "Type", "State", "min / desired / max vCPUs", "Provisioner", "Node size", "Created"],
        d.environments.map((e) => h("tr", { "data-env": e.compute_environment_name },
          h("td", {}, e.compute_environment_name), h("td", {}, e.type), h("td", {}, h("span", { class: `state ${e.state.toLowerCase()}` }, e.state)),
          h("td", { class: "num" }, e.type === "MANAGED" ? `${e.min_vcpus} / ${e.desired_vcpus} / ${e.max_vcpus}` : "—"),
          h("td", {}, e.provisioner || "—"),
          h("td", {}, e.node_vcpus ? `${num(e.node_vcpus)} vCPU · ${mib(e.node_memory_mib)}` : "—"),
          h("td", { class: "nowrap" }, time(e.created_at)))), { id: "envs-table" }) : empty("No compute environments."));
      main.dataset.loaded = String(Number(main.dataset.loaded || 0) + 1);
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    }
  }

  async function toggle(q) {
    const state = q.state === "ENABLED" ? "DISABLED" : "ENABLED";
    if (state === "DISABLED") {
      const ok = await confirmAction(`Disable queue ${q.job_queue_name}?`, "It accepts no new jobs; the jobs already in it wait until it is enabled again.", { confirmLabel: "Disable", reason: false });
      if (ok === null) return;
    }
    try {
      await post(`queues/${encodeURIComponent(q.job_queue_name)}/state`, { state });
      flash(`Queue ${q.job_queue_name} ${state.toLowerCase()}`, "ok");
    } catch (err) {
      flash(`Refused: ${err.message}`, "error");
    }
    load();
  }

  load();
  const timer = setInterval(load, 5000);
  return () => clearInterval(timer);
}
