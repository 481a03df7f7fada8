// Talking to the controller: JSON reads, actions (with the session's CSRF token), and
// server-sent event streams that pages open and close with themselves.

export const session = { auth_required: false, logged_in: false, name: "", role: "", csrf: "" };

const ROLES = ["reader", "submitter", "admin"];

export function may(role) {
  return ROLES.indexOf(session.role) >= ROLES.indexOf(role);
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function parse(resp) {
  let body = null;
  try {
    body = await resp.json();
  } catch {
    body = null;
  }
  if (!resp.ok) {
    const message = (body && body.error) || `${resp.status} ${resp.statusText}`;
    if (resp.status === 401) window.dispatchEvent(new CustomEvent("shoal:logged-out"));
    throw new ApiError(resp.status, message);
  }
  return body;
}

export async function get(path, params = {}) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "" && v !== undefined && v !== null));
  const url = `/ui/api/${path}${query.size ? `?${query}` : ""}`;
  return parse(await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }));
}

export async function post(path, body = {}) {
  return parse(
    await fetch(`/ui/api/${path}`, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Shoal-CSRF": session.csrf },
      body: JSON.stringify(body),
    }),
  );
}

export async function loadSession() {
  Object.assign(session, await get("session"));
  return session;
}

export async function login(token) {
  Object.assign(session, await post("login", { token }));
  return session;
}

export async function logout() {
  await post("logout");
  Object.assign(session, { logged_in: false, name: "", role: "", csrf: "" });
}

// An event stream owned by a page: `handlers` maps event names to functions of the parsed
// data. The browser reconnects by itself after a network error; `ready` fires on every
// (re)connect, so a page reloads what the stream keeps up to date.
export function stream(path, params, handlers) {
  const query = new URLSearchParams(Object.entries(params || {}).filter(([, v]) => v !== "" && v != null));
  const source = new EventSource(`/ui/api/events/${path}${query.size ? `?${query}` : ""}`);
  for (const [name, fn] of Object.entries(handlers)) {
    source.addEventListener(name, (ev) => fn(JSON.parse(ev.data || "{}")));
  }
  source.addEventListener("failed", () => source.close());
  source.addEventListener("end", () => source.close());
  return () => source.close();
}
