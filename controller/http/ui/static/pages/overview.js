// Overview: jobs per queue and status, capacity per compute environment, jobs started and
// finished per minute over the last hour; all kept live by the overview event stream.
import { stream } from "../api.js";
import { perMinuteChart } from "../chart.js";
import { clear, empty, h, link, meter, mib, num, section, statusBadge, table } from "../dom.js";

export function render(main) {
  const status = h("div", { class: "status-line", id: "cluster-status" }, "Connecting…");
  const queues = h("div", { id: "queue-counts" });
  const envs = h("div", { class: "env-cards", id: "env-cards" });
  const chart = h("div", { class: "chart-box", id: "rate-chart" });
  clear(main,
    h("div", { class: "page-head" }, h("h1", {}, "Overview"), status),
    section("Jobs by queue and status", queues),
    section("Compute environments", envs),
    section("Jobs started and finished per minute (last hour)", chart,
      h("div", { class: "legend" }, h("span", { class: "swatch bar-started" }), "started ", h("span", { class: "swatch bar-finished" }), "finished")));

  function show(data) {
    const c = data.cluster;
    clear(status,
      h("span", { class: c.etcd_healthy ? "ok" : "bad" }, c.etcd_healthy ? "etcd healthy" : "etcd unreachable"), " · ",
      `replica ${c.replica_id}`, " · ",
      c.is_leader ? "leader" : `follower (leader: ${c.leader_address || "none"})`, " · ",
      `revision ${c.view_revision}`, " · ",
      h("span", { class: "live" }, "live"));
    const statuses = data.statuses;
    const rows = data.queues.map((q) => h("tr", { "data-queue": q.job_queue },
      h("td", {}, link(`#/jobs?queue=${encodeURIComponent(q.job_queue)}`, q.job_queue)),
      statuses.map((st) => {
        const n = q.counts[st] || 0;
        return h("td", { class: `num ${n ? "" : "zero"}`, "data-status": st },
          n ? link(`#/jobs?queue=${encodeURIComponent(q.job_queue)}&status=${st}`, num(n)) : "0");
      })));
    clear(queues, rows.length ? table(["Queue", ...statuses.map((st) => h("th", { class: "num" }, statusBadge(st)))], rows, { id: "queue-table" }) : empty("No job queues yet."));
    clear(envs, data.environments.length ? data.environments.map(envCard) : empty("No compute environments yet."));
    clear(chart, perMinuteChart(data.jobs_per_minute));
  }

  function envCard(e) {
    const nodeCounts = Object.entries(e.nodes).map(([st, n]) => `${n} ${st.toLowerCase()}`).join(", ") || "no nodes";
    const env = e.environment;
    return h("div", { class: "env-card", "data-env": e.name },
      h("div", { class: "env-title" }, h("strong", {}, e.name), env ? h("span", { class: "muted" }, ` ${env.type.toLowerCase()} · ${env.state.toLowerCase()}`) : ""),
      h("div", { class: "muted" }, link("#/nodes", nodeCounts), ` · ${e.running_jobs} running job${e.running_jobs === 1 ? "" : "s"}`),
      meter(e.used_vcpus, e.vcpus, `vCPU ${num(e.used_vcpus)} / ${num(e.vcpus)}`),
      meter(e.used_memory_mib, e.memory_mib, `memory ${mib(e.used_memory_mib)} / ${mib(e.memory_mib)}`),
      meter(e.used_gpus, e.gpus, `GPU ${e.used_gpus} / ${e.gpus}`));
  }

  return stream("overview", {}, {
    overview: show,
    failed: (d) => clear(status, h("span", { class: "bad" }, d.error)),
  });
}
