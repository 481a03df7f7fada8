// A small SVG bar chart of jobs started and finished per minute (no library: the browser may
// have no network, and this is all the dashboard draws).
const NS = "http://www.w3.org/2000/svg";

function s(tag, attrs = {}, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function niceMax(n) {
  if (n <= 5) return 5;
  const p = 10 ** Math.floor(Math.log10(n));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= n) return m * p;
  return 10 * p;
}

export function perMinuteChart(points, { width = 1160, height = 240 } = {}) {
  const pad = { left: 44, right: 12, top: 12, bottom: 28 };
  const w = width - pad.left - pad.right;
  const hgt = height - pad.top - pad.bottom;
  const max = niceMax(Math.max(0, ...points.map((p) => Math.max(p.started, p.finished))));
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-label": "jobs started and finished per minute, last hour" });
  for (let i = 0; i <= 4; i++) {
    const y = pad.top + hgt - (hgt * i) / 4;
    svg.append(s("line", { x1: pad.left, x2: pad.left + w, y1: y, y2: y, class: "gridline" }));
    svg.append(s("text", { x: pad.left - 6, y: y + 4, class: "axis", "text-anchor": "end" }, String(Math.round((max * i) / 4))));
  }
  const slot = w / Math.max(1, points.length);
  const bar = Math.max(1, slot / 2 - 1);
  points.forEach((p, i) => {
    const x = pad.left + i * slot;
    const when = new Date(p.minute_start).toTimeString().slice(0, 5);
    for (const [key, dx, cls] of [["started", 0.5, "bar-started"], ["finished", 0.5 + bar, "bar-finished"]]) {
      const v = p[key];
      if (!v) continue;
      const bh = (hgt * v) / max;
      const r = s("rect", { x: x + dx, y: pad.top + hgt - bh, width: bar, height: bh, class: cls });
      r.append(s("title", {}, `${when}: ${v} ${key}`));
      svg.append(r);
    }
    const fromEnd = points.length - 1 - i;
    if (fromEnd % 10 === 0) {
      svg.append(s("text", { x: x + slot / 2, y: height - 8, class: "axis", "text-anchor": "middle" }, fromEnd ? `-${fromEnd} min` : "now"));
    }
  });
  svg.append(s("line", { x1: pad.left, x2: pad.left + w, y1: pad.top + hgt, y2: pad.top + hgt, class: "baseline" }));
  return svg;
}
