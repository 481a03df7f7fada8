// The dashboard's shell: session, login, navigation between the pages (hash routes), and the
// flash line for action results and errors.
import { loadSession, logout, session } from "./api.js";
import { clear, h } from "./dom.js";
import * as jobPage from "./pages/job.js";
import * as jobsPage from "./pages/jobs.js";
import * as loginPage from "./pages/login.js";
import * as nodesPage from "./pages/nodes.js";
import * as overviewPage from "./pages/overview.js";
import * as queuesPage from "./pages/queues.js";

const routes = [
  [/^#\/overview$/, overviewPage, "overview"],
  [/^#\/jobs(?:\?(.*))?$/, jobsPage, "jobs"],
  [/^#\/job\/([^?]+)$/, jobPage, "jobs"],
  [/^#\/nodes$/, nodesPage, "nodes"],
  [/^#\/queues$/, queuesPage, "queues"],
];

let cleanup = null;
const main = document.getElementById("main");

export function flash(text, kind = "info") {
  const el = document.getElementById("flash");
  clear(el, h("span", {}, text), h("button", { class: "link", onclick: () => (el.hidden = true), "aria-label": "dismiss" }, "×"));
  el.className = `flash ${kind}`;
  el.hidden = false;
  el.dataset.kind = kind;
}

function renderWho() {
  const who = document.getElementById("who");
  if (!session.auth_required) {
    clear(who, h("span", { class: "muted" }, "no authentication (loopback)"));
    return;
  }
  if (!session.logged_in) {
    clear(who);
    return;
  }
  clear(who,
    h("span", { id: "who-name" }, session.name), " ",
    h("span", { class: `role role-${session.role}`, id: "who-role" }, session.role), " ",
    h("button", { class: "link", id: "logout", onclick: async () => { await logout(); route(); } }, "Log out"));
}

function route() {
  if (cleanup) {
    cleanup();
    cleanup = null;
  }
  renderWho();
  document.getElementById("flash").hidden = true;
  document.getElementById("nav").hidden = session.auth_required && !session.logged_in;
  if (session.auth_required && !session.logged_in) {
    setActive("");
    cleanup = loginPage.render(main, { onLogin: () => route() }) || null;
    return;
  }
  const hash = location.hash || "#/overview";
  for (const [pattern, page, nav] of routes) {
    const m = hash.match(pattern);
    if (m) {
      setActive(nav);
      clear(main);
      cleanup = page.render(main, m.slice(1).map((x) => (x === undefined ? "" : decodeURIComponent(x)))) || null;
      return;
    }
  }
  location.hash = "#/overview";
}

function setActive(name) {
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.page === name);
}

window.addEventListener("hashchange", route);
window.addEventListener("shoal:logged-out", async () => {
  if (!session.logged_in) return; // e.g. a refused login: the login page shows why
  await loadSession();
  if (session.auth_required && !session.logged_in) route();
});

loadSession()
  .then(route)
  .catch((err) => clear(main, h("p", { class: "error" }, `Cannot reach the controller: ${err.message}`)));
