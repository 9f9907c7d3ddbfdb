// Pattern analytics: /api/analytics/patterns with the URL's filters; a bar chart of hit rates
// with their 95% Wilson intervals at the chosen horizon, and a table sortable by any column.

import { api, showError } from "./api.js";
import { startShell } from "./app.js";
import { h, readQuery, writeQuery } from "./format.js";

const FILTERS = ["tier", "sector", "min_samples"];
startShell();
const $ = (id) => document.getElementById(id);
const form = $("analytics-filters");
let items = [];

function fillForm() {
  const values = readQuery([...FILTERS, "horizon", "sort"]);
  for (const name of [...FILTERS, "horizon"]) {
    const field = form.elements.namedItem(name);
    if (field) field.value = values[name] || (name === "horizon" ? "d5" : "");
  }
  return values;
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const values = {};
  for (const name of [...FILTERS, "horizon"]) values[name] = String(form.elements.namedItem(name).value || "").trim();
  const params = new URLSearchParams(Object.entries(values).filter(([, v]) => v));
  location.assign(`/analytics${params.size ? `?${params}` : ""}`);
});

const pct = (v) => (typeof v === "number" ? `${(v * 100).toFixed(1)}%` : "—");
const ret = (v) => (typeof v === "number" ? `${v > 0 ? "+" : ""}${v.toFixed(2)}` : "—");

function value(item, field, horizon) {
  if (field === "pattern" || field === "detections") return item[field];
  return item[horizon][field];
}

function sorted(horizon, sort) {
  const field = sort.replace(/^-/, "");
  const sign = sort.startsWith("-") ? -1 : 1;
  return [...items].sort((a, b) => {
    const x = value(a, field, horizon);
    const y = value(b, field, horizon);
    if (x === null || x === undefined) return 1;
    if (y === null || y === undefined) return -1;
    return (x < y ? -1 : x > y ? 1 : 0) * sign || a.pattern.localeCompare(b.pattern);
  });
}

for (const th of document.querySelectorAll("#analytics-table th[data-sort]")) {
  const field = th.dataset.sort;
  const button = h("button", { type: "button", className: "sort" }, th.textContent);
  th.replaceChildren(button);
  button.addEventListener("click", () => {
    const current = readQuery(["sort"]).sort || "-hit_rate";
    const first = field === "pattern" ? field : `-${field}`;
    const flipped = first.startsWith("-") ? field : `-${field}`;
    writeQuery({ sort: current === first ? flipped : first });
    render();
  });
}

function render() {
  const { horizon = "d5", sort = "-hit_rate" } = readQuery(["horizon", "sort"]);
  for (const th of document.querySelectorAll("#analytics-table th[data-sort]")) {
    const f = th.dataset.sort;
    const state = sort === f ? "ascending" : sort === `-${f}` ? "descending" : null;
    if (state) th.setAttribute("aria-sort", state);
    else th.removeAttribute("aria-sort");
  }
  const rows = sorted(horizon, sort);
  $("analytics-rows").replaceChildren(
    ...rows.map((item) => {
      const s = item[horizon];
      return h(
        "tr",
        { dataset: { pattern: item.pattern } },
        h("td", {}, item.pattern),
        h("td", { className: "num" }, item.detections),
        h("td", { className: "num" }, s.samples),
        h("td", { className: "num" }, pct(s.hit_rate)),
        h("td", { className: "num" }, s.hit_rate_low === null ? "—" : `${pct(s.hit_rate_low)} – ${pct(s.hit_rate_high)}`),
        h("td", { className: "num" }, ret(s.mean_return)),
        h("td", { className: "num" }, ret(s.median_return)),
      );
    }),
  );
  // The chart: one bar per pattern (same order as the table), the interval as a line over it.
  $("hit-chart").replaceChildren(
    ...rows.map((item) => {
      const s = item[horizon];
      const track = h("div", { className: "hit-track" });
      if (s.hit_rate !== null) {
        const bar = h("div", { className: `hit-bar ${s.hit_rate >= 0.5 ? "up" : "down"}` });
        bar.style.width = `${s.hit_rate * 100}%`;
        const interval = h("div", { className: "hit-interval" });
        interval.style.left = `${s.hit_rate_low * 100}%`;
        interval.style.width = `${(s.hit_rate_high - s.hit_rate_low) * 100}%`;
        track.append(bar, interval);
      }
      track.append(h("div", { className: "hit-half", "aria-hidden": "true" }));
      return h(
        "div",
        { className: "hit-row", dataset: { pattern: item.pattern, rate: s.hit_rate === null ? "" : s.hit_rate.toFixed(4) } },
        h("span", { className: "hit-label" }, item.pattern),
        track,
        h("span", { className: "hit-value num" }, `${pct(s.hit_rate)} (n=${s.samples})`),
      );
    }),
  );
  const status = emptyReason(horizon);
  $("analytics-status").hidden = !status;
  $("analytics-status").textContent = status;
}

const HORIZON_DAYS = { d1: 1, d5: 5, d30: 30 };

/** Why the view shows nothing (or only dashes), and what to change; "" when it has data. */
function emptyReason(horizon) {
  const filters = readQuery(FILTERS);
  if (!items.length) {
    const narrowed = [filters.sector && "the sector", filters.min_samples && "the minimum samples"].filter(Boolean);
    return (
      `No pattern has detections in ${filters.tier ? `the ${filters.tier} tier` : "any tier"}${filters.sector ? ` for ${filters.sector}` : ""}. ` +
      (narrowed.length ? `Clear ${narrowed.join(" or ")}, or choose another tier.` : "Choose another tier.")
    );
  }
  if (items.every((item) => !item[horizon] || !item[horizon].samples)) {
    const days = HORIZON_DAYS[horizon] || 5;
    return (
      `No detection has an outcome at +${days} trading day${days === 1 ? "" : "s"} yet: a detection counts once ${days}` +
      ` daily bar${days === 1 ? "" : "s"} follow it, and these are all more recent. Choose a shorter horizon, or a tier with older detections (weekly, monthly).`
    );
  }
  return "";
}

async function load() {
  const filters = fillForm();
  const params = Object.fromEntries(FILTERS.filter((k) => filters[k]).map((k) => [k, filters[k]]));
  $("analytics-export").href = `/api/analytics/patterns?${new URLSearchParams({ ...params, format: "csv" })}`;
  try {
    const { data } = await api("/api/analytics/patterns", { params });
    showError($("analytics-error"), null);
    items = data;
    render();
  } catch (error) {
    $("analytics-status").hidden = true;
    showError($("analytics-error"), error, load);
  }
}

load();
