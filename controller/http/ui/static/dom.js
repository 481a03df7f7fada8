// Building the page: every piece of text from the cluster goes in as a text node (never as
// HTML), so a job named `<script>` or printing markup shows exactly those characters.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function link(href, text, attrs = {}) {
  return h("a", { href, ...attrs }, text);
}

export function jobLink(jobId, text) {
  return link(`#/job/${encodeURIComponent(jobId)}`, text ?? jobId, { class: "mono", title: jobId });
}

export function statusBadge(status) {
  return h("span", { class: `badge s-${(status || "none").toLowerCase()}`, "data-status": status }, status || "—");
}

export function time(ms) {
  if (!ms) return "—";
  const d = new Date(Number(ms));
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function duration(ms) {
  if (ms === null || ms === undefined || ms < 0) return "—";
  const s = ms / 1000;
  if (s < 1) return `${Math.round(ms)} ms`;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.floor(s % 60)} s`;
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return `${hrs} h ${m % 60} min`;
  return `${Math.floor(hrs / 24)} d ${hrs % 24} h`;
}

export function ago(ms, now = Date.now()) {
  return ms ? `${duration(now - ms)} ago` : "—";
}

export function mib(n) {
  if (!n) return "0";
  return n >= 1024 ? `${(n / 1024).toFixed(n % 1024 ? 1 : 0)} GiB` : `${n} MiB`;
}

export function num(n) {
  return Number(n || 0).toLocaleString("en-US", { maximumFractionDigits: 2 });
}

// A bar showing used of total (vCPUs, memory, GPUs).
export function meter(used, total, label) {
  const pct = total > 0 ? Math.min(100, (used / total) * 100) : 0;
  const level = pct >= 90 ? "high" : pct >= 60 ? "mid" : "low";
  const fill = h("div", { class: `meter-fill ${level}` });
  fill.style.width = `${pct.toFixed(1)}%`; // through the CSSOM: the CSP allows no style attributes
  return h("div", { class: "meter", title: `${label}: ${pct.toFixed(0)}%` },
    h("div", { class: "meter-track" }, fill),
    h("span", { class: "meter-text" }, label));
}

export function table(headers, rows, attrs = {}) {
  return h("table", { class: "grid", ...attrs },
    h("thead", {}, h("tr", {}, headers.map((x) => (x instanceof Node ? x : h("th", {}, x))))),
    h("tbody", {}, rows));
}

export function section(title, ...children) {
  return h("section", { class: "card" }, h("h2", {}, title), ...children);
}

export function empty(text) {
  return h("p", { class: "muted empty" }, text);
}

// A modal asking to confirm an action, with an optional reason; resolves to the reason ("" if
// none) or null when dismissed.
export function confirmAction(title, text, { confirmLabel = "Confirm", danger = false, reason = true } = {}) {
  return new Promise((resolve) => {
    const input = reason ? h("input", { id: "dialog-reason", placeholder: "reason (optional)", maxlength: 1024 }) : null;
    const dialog = h("dialog", { class: "confirm", id: "confirm-dialog" },
      h("form", { method: "dialog" },
        h("h3", {}, title), h("p", {}, text), input,
        h("div", { class: "dialog-buttons" },
          h("button", { value: "cancel", id: "dialog-cancel", type: "submit" }, "Back"),
          h("button", { value: "ok", id: "dialog-confirm", class: danger ? "danger" : "primary", type: "submit" }, confirmLabel))));
    dialog.addEventListener("close", () => {
      const ok = dialog.returnValue === "ok";
      dialog.remove();
      resolve(ok ? (input ? input.value.trim() : "") : null);
    });
    document.body.append(dialog);
    dialog.showModal();
    (input || dialog.querySelector("#dialog-confirm")).focus();
  });
}
