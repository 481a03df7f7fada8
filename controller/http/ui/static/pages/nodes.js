// Nodes: status, heartbeat age, capacity and use, running jobs; Drain / Undrain for admins.
// Refreshed every few seconds and whenever a job changes (the overview stream's numbers).
import { get, may, post, stream } from "../api.js";
import { flash } from "../app.js";
import { clear, confirmAction, duration, empty, h, jobLink, meter, mib, num, statusBadge } from "../dom.js";

const REFRESH_MS = 3000;

export function render(main) {
  const tbody = h("tbody", { id: "nodes-body" });
  const error = h("p", { class: "error", hidden: true });
  const admin = may("admin");
  const headers = ["Node", "Environment", "Status", "Heartbeat", "vCPU", "Memory", "GPU", "Running jobs", ...(admin ? [""] : [])];
  clear(main,
    h("div", { class: "page-head" }, h("h1", {}, "Nodes"), h("span", { class: "live" }, "live")), error,
    h("div", { class: "card flush" }, h("table", { class: "grid", id: "nodes-table" }, h("thead", {}, h("tr", {}, headers.map((x) => h("th", {}, x)))), tbody)));

  async function load() {
    try {
      const { nodes } = await get("nodes");
      error.hidden = true;
      clear(tbody, nodes.length ? nodes.map(row) : h("tr", {}, h("td", { colspan: headers.length }, empty("No nodes have registered yet."))));
      main.dataset.loaded = String(Number(main.dataset.loaded || 0) + 1);
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    }
  }

  function row(n) {
    const beat = n.heartbeat_age_ms === null ? (n.status === "LOST" ? "lost" : "—") : `${duration(n.heartbeat_age_ms)} ago`;
    const jobs = n.running_job_ids.slice(0, 6).map((id) => h("div", {}, jobLink(id, id.length > 13 ? `${id.slice(0, 8)}…${id.includes(":") ? id.slice(id.indexOf(":")) : ""}` : id)));
    if (n.running_job_ids.length > 6) jobs.push(h("div", { class: "muted" }, `and ${n.running_job_ids.length - 6} more`));
    const cells = [
      h("td", {}, h("strong", {}, n.node_id), h("div", { class: "muted small" }, n.hostname, n.runtimes.length ? ` · ${n.runtimes.join(", ")}` : "")),
      h("td", {}, n.compute_environment),
      h("td", {}, statusBadge(n.status), n.status_reason ? h("div", { class: "muted small" }, n.status_reason) : ""),
      h("td", { class: "nowrap", "data-heartbeat": n.heartbeat_age_ms ?? "" }, beat),
      h("td", {}, meter(n.used_vcpus, n.vcpus, `${num(n.used_vcpus)} / ${num(n.vcpus)}`)),
      h("td", {}, meter(n.used_memory_mib, n.memory_mib, `${mib(n.used_memory_mib)} / ${mib(n.memory_mib)}`)),
      h("td", { class: "num" }, n.gpus ? `${n.used_gpus} / ${n.gpus}` : "—"),
      h("td", { class: "jobs-cell" }, jobs.length ? jobs : h("span", { class: "muted" }, "none")),
    ];
    if (admin) {
      const draining = n.status === "DRAINING" || n.status === "DRAINED";
      cells.push(h("td", {}, n.status === "LOST" ? "" : draining
        ? h("button", { class: "node-undrain", "data-node": n.node_id, onclick: () => act(n, "undrain") }, "Undrain")
        : h("button", { class: "node-drain warn", "data-node": n.node_id, onclick: () => act(n, "drain") }, "Drain")));
    }
    return h("tr", { "data-node-id": n.node_id, "data-status": n.status }, cells);
  }

  async function act(n, verb) {
    let body = {};
    if (verb === "drain") {
      const reason = await confirmAction(`Drain ${n.node_id}?`, "No new jobs are placed on it; its running jobs finish.", { confirmLabel: "Drain" });
      if (reason === null) return;
      body = { reason };
    }
    try {
      await post(`nodes/${encodeURIComponent(n.node_id)}/${verb}`, body);
      flash(`${verb === "drain" ? "Draining" : "Undrained"} ${n.node_id}`, "ok");
    } catch (err) {
      flash(`${verb} refused: ${err.message}`, "error");
    }
    load();
  }

  load();
  const timer = setInterval(load, REFRESH_MS);
  let last = 0;
  const close = stream("overview", {}, {
    overview: () => {
      if (Date.now() - last > 1000) {
        last = Date.now();
        load();
      }
    },
  });
  return () => {
    clearInterval(timer);
    close();
  };
}
