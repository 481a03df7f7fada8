// Jobs: the list with the CLI's filters (status, queue, name prefix, created after/before),
// one page of ListJobs at a time (newest first by default), sortable, and live: changes stream
// in over server-sent events; new jobs that match appear at the top of the first page.
import { get, stream } from "../api.js";
import { clear, duration, empty, h, jobLink, statusBadge, time } from "../dom.js";

const ACTIVE = new Set(["STARTING", "RUNNING"]);
const STATUSES = ["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"];
const COLUMNS = [
  ["job_id", "Job ID"], ["job_name", "Name"], ["job_queue", "Queue"], ["status", "Status"],
  ["status_reason", "Reason"], ["created_at", "Created"], ["runtime", "Run time"],
  ["exit_code", "Exit"], ["node_id", "Node"], ["attempts", "Attempts"],
];

function toLocalInput(ms) {
  if (!ms) return "";
  const d = new Date(Number(ms));
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

function runtime(j, now) {
  if (!j.started_at) return null;
  return (j.stopped_at || now) - j.started_at;
}

export function render(main, [query]) {
  const params = new URLSearchParams(query || "");
  const filters = {
    status: params.get("status") || "", queue: params.get("queue") || "", prefix: params.get("prefix") || "",
    after: params.get("after") || "", before: params.get("before") || "", array: params.get("array") || "",
    order: params.get("order") || "newest", limit: params.get("limit") || "50",
  };
  const tokens = [""]; // page tokens: tokens[i] loads page i
  let pageIndex = 0;
  let nextToken = "";
  let rows = new Map(); // job id -> summary, in display order
  let sortKey = "created_at";
  let sortDesc = filters.order === "newest";
  let reloadTimer = null;

  const status = h("select", { id: "f-status", name: "status" }, h("option", { value: "" }, "any status"), STATUSES.map((st) => h("option", { value: st, selected: st === filters.status }, st)));
  const queue = h("input", { id: "f-queue", name: "queue", value: filters.queue, placeholder: "any queue", list: "queue-names", size: 12 });
  const prefix = h("input", { id: "f-prefix", name: "prefix", value: filters.prefix, placeholder: "name prefix", size: 14 });
  const after = h("input", { id: "f-after", name: "after", type: "datetime-local", value: toLocalInput(filters.after) });
  const before = h("input", { id: "f-before", name: "before", type: "datetime-local", value: toLocalInput(filters.before) });
  const limit = h("select", { id: "f-limit", name: "limit" }, ["25", "50", "100", "200"].map((n) => h("option", { value: n, selected: n === filters.limit }, `${n} per page`)));
  const queueNames = h("datalist", { id: "queue-names" });
  const form = h("form", { class: "filters", id: "job-filters" },
    h("label", {}, "Status ", status), h("label", {}, "Queue ", queue), h("label", {}, "Name ", prefix),
    h("label", {}, "Created after ", after), h("label", {}, "before ", before), limit,
    h("button", { type: "submit", class: "primary" }, "Apply"),
    h("button", { type: "button", class: "link", onclick: () => (location.hash = "#/jobs") }, "Reset"), queueNames);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const next = new URLSearchParams();
    const put = (k, v) => v && next.set(k, v);
    put("status", status.value); put("queue", queue.value.trim()); put("prefix", prefix.value.trim());
    put("after", after.value ? String(new Date(after.value).getTime()) : "");
    put("before", before.value ? String(new Date(before.value).getTime()) : "");
    put("array", filters.array);
    if (filters.order !== "newest") next.set("order", filters.order);
    if (limit.value !== "50") next.set("limit", limit.value);
    location.hash = `#/jobs${next.size ? `?${next}` : ""}`;
  });

  const tbody = h("tbody", { id: "jobs-body" });
  const headRow = h("tr", {});
  const info = h("span", { class: "muted", id: "jobs-info" });
  const prev = h("button", { id: "page-prev", disabled: true, onclick: () => load(pageIndex - 1) }, "← Newer");
  const next = h("button", { id: "page-next", disabled: true, onclick: () => load(pageIndex + 1) }, "Older →");
  const error = h("p", { class: "error", hidden: true, id: "jobs-error" });
  const arrayNote = filters.array ? h("p", {}, "Children of array job ", jobLink(filters.array), " · ", h("a", { href: "#/jobs" }, "all jobs")) : "";
  clear(main,
    h("div", { class: "page-head" }, h("h1", {}, "Jobs"), h("span", { class: "live", id: "jobs-live" }, "live")),
    arrayNote, form, error,
    h("div", { class: "card flush" }, h("table", { class: "grid", id: "jobs-table" }, h("thead", {}, headRow), tbody)),
    h("div", { class: "pager" }, prev, info, next));
  if (filters.order === "oldest") {
    prev.textContent = "← Older";
    next.textContent = "Newer →";
  }

  function header() {
    clear(headRow, COLUMNS.map(([key, label]) => {
      const mark = key === sortKey ? (sortDesc ? " ▼" : " ▲") : "";
      return h("th", { class: "sortable", "data-key": key, title: key === "created_at" ? "order of the whole list" : "sort this page", onclick: () => sortBy(key) }, label + mark);
    }));
  }

  function sortBy(key) {
    if (key === "created_at") {
      // The whole list's order: ask the controller for the other end.
      const p = new URLSearchParams(query || "");
      if (filters.order === "newest") p.set("order", "oldest"); else p.delete("order");
      location.hash = `#/jobs${p.size ? `?${p}` : ""}`;
      return;
    }
    sortDesc = key === sortKey ? !sortDesc : false;
    sortKey = key;
    draw();
  }

  function value(j, key, now) {
    if (key === "runtime") return runtime(j, now) ?? -1;
    if (key === "attempts") return j.attempts + (ACTIVE.has(j.status) ? 1 : 0);
    const v = j[key];
    return v === null || v === undefined ? "" : v;
  }

  function draw() {
    header();
    const now = Date.now();
    let list = [...rows.values()];
    if (sortKey !== "created_at") {
      list.sort((a, b) => {
        const x = value(a, sortKey, now);
        const y = value(b, sortKey, now);
        const c = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
        return sortDesc ? -c : c;
      });
    }
    clear(tbody, list.map((j) => h("tr", { "data-job-id": j.job_id, class: matches(j) ? "" : "stale" },
      h("td", {}, jobLink(j.job_id, j.job_id.length > 13 ? `${j.job_id.slice(0, 8)}…${j.job_id.includes(":") ? j.job_id.slice(j.job_id.indexOf(":")) : ""}` : j.job_id)),
      h("td", { class: "name" }, j.job_name),
      h("td", {}, j.job_queue),
      h("td", {}, statusBadge(j.status)),
      h("td", { class: "reason" }, j.status_reason),
      h("td", { class: "nowrap" }, time(j.created_at)),
      h("td", { class: "num" }, duration(runtime(j, now))),
      h("td", { class: "num" }, j.exit_code ?? ""),
      h("td", {}, j.node_id),
      h("td", { class: "num" }, j.attempts + (ACTIVE.has(j.status) ? 1 : 0)))));
    if (!rows.size) tbody.append(h("tr", {}, h("td", { colspan: COLUMNS.length }, empty("No jobs match."))));
    info.textContent = `page ${pageIndex + 1} · ${rows.size} job${rows.size === 1 ? "" : "s"}`;
    prev.disabled = pageIndex === 0;
    next.disabled = !nextToken;
  }

  function matches(j) {
    return (!filters.status || j.status === filters.status) && (!filters.queue || j.job_queue === filters.queue) &&
      (!filters.prefix || j.job_name.startsWith(filters.prefix)) && (!filters.array || j.job_id.startsWith(`${filters.array}:`)) &&
      (!filters.after || j.created_at >= Number(filters.after)) && (!filters.before || j.created_at < Number(filters.before));
  }

  let loading = 0;
  async function load(index) {
    const mine = ++loading;
    try {
      const page = await get("jobs", { ...filters, token: tokens[index] });
      if (mine !== loading) return;
      pageIndex = index;
      nextToken = page.next_token;
      tokens[index + 1] = page.next_token;
      rows = new Map(page.jobs.map((j) => [j.job_id, j]));
      error.hidden = true;
      main.dataset.loaded = String(Number(main.dataset.loaded || 0) + 1);
      draw();
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    }
  }

  function changed(jobs) {
    let dirty = false;
    const firstPage = pageIndex === 0 && filters.order === "newest";
    for (const j of jobs) {
      if (rows.has(j.job_id)) {
        rows.set(j.job_id, j);
        dirty = true;
      } else if (firstPage && matches(j)) {
        rows = new Map([[j.job_id, j], ...rows]);
        dirty = true;
      }
    }
    if (firstPage && rows.size > Number(filters.limit)) {
      rows = new Map([...rows].slice(0, Number(filters.limit)));
    }
    if (dirty) draw();
  }

  header();
  get("queues").then((d) => clear(queueNames, d.queues.map((q) => h("option", { value: q.job_queue_name })))).catch(() => {});
  const close = stream("jobs", { queue: filters.queue, prefix: filters.prefix, array: filters.array }, {
    ready: () => load(pageIndex),
    error: () => main.dataset.loaded || load(pageIndex), // no stream (e.g. refused): still show the list
    jobs: (d) => changed(d.jobs),
    resync: () => {
      clearTimeout(reloadTimer);
      reloadTimer = setTimeout(() => load(pageIndex), 1000);
    },
  });
  return () => {
    clearTimeout(reloadTimer);
    close();
  };
}
