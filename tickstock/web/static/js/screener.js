// The screener: /api/patterns/scan with the filters and the sort of the URL, paged with the API's
// cursor. Column headers sort (click again to reverse); the export link downloads the same rows.

import { api, showError } from "./api.js";
import { startShell } from "./app.js";
import { cursorPager } from "./pager.js";
import { formatConfidence, formatPrice, h, priorityBadge, readQuery, timeElement } from "./format.js";

const FILTERS = [
  "tier",
  "patterns",
  "sectors",
  "min_confidence",
  "rs_min",
  "rel_volume_min",
  "rsi_min",
  "rsi_max",
  "price_min",
  "price_max",
  "market_cap_min",
  "sort",
];
const PAGE_SIZE = 50;
const DEFAULT_SORT = "-confidence";

startShell();
const $ = (id) => document.getElementById(id);
const form = $("screener-filters");

function fillForm() {
  const values = readQuery(FILTERS);
  for (const name of FILTERS) {
    const field = form.elements.namedItem(name);
    if (field) field.value = values[name] || (name === "tier" ? "daily" : "");
  }
  return values;
}

function go(values) {
  const params = new URLSearchParams(Object.entries(values).filter(([, v]) => v));
  const text = params.toString();
  location.assign(`/screener${text ? `?${text}` : ""}`);
}

function formValues() {
  const values = {};
  for (const name of FILTERS) values[name] = String(form.elements.namedItem(name).value || "").trim();
  return values;
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  go(formValues());
});

// Sorting: numbers and times start descending (best first), the symbol ascending.
for (const th of document.querySelectorAll("#screener-table th[data-sort]")) {
  const field = th.dataset.sort;
  const button = h("button", { type: "button", className: "sort" }, th.textContent);
  th.replaceChildren(button);
  button.addEventListener("click", () => {
    const current = readQuery(["sort"]).sort || DEFAULT_SORT;
    const first = field === "symbol" ? field : `-${field}`;
    const flipped = first.startsWith("-") ? field : `-${field}`;
    go({ ...formValues(), sort: current === first ? flipped : first });
  });
}

function markSort(sort) {
  for (const th of document.querySelectorAll("#screener-table th[data-sort]")) {
    const field = th.dataset.sort;
    const state = sort === field ? "ascending" : sort === `-${field}` ? "descending" : null;
    if (state) th.setAttribute("aria-sort", state);
    else th.removeAttribute("aria-sort");
  }
}

const pager = cursorPager(load);

function fixed(value, digits) {
  return typeof value === "number" && Number.isFinite(value) ? value.toFixed(digits) : "—";
}

function row(item) {
  const change = item.change_pct;
  return h(
    "tr",
    { dataset: { symbol: item.symbol, id: String(item.id) }, className: "clickable" },
    h("td", { className: "sym" }, h("a", { href: `/symbols/${encodeURIComponent(item.symbol)}` }, item.symbol)),
    h("td", { className: "name", title: item.name || undefined }, item.name || "—"),
    h("td", {}, item.sector || "—"),
    h("td", {}, item.pattern),
    h("td", { className: "num" }, formatConfidence(item.confidence)),
    h("td", {}, priorityBadge(item.confidence, item.priority)),
    h("td", { className: "time" }, timeElement(item.detected_at, { withDate: true })),
    h("td", { className: "num" }, formatPrice(item.price)),
    h(
      "td",
      { className: `num ${change > 0 ? "up" : change < 0 ? "down" : ""}` },
      typeof change === "number" ? `${change > 0 ? "+" : ""}${change.toFixed(2)}` : "—",
    ),
    h("td", { className: "num" }, fixed(item.rs, 0)),
    h("td", { className: "num" }, fixed(item.rel_volume, 2)),
    h("td", { className: "num" }, fixed(item.rsi, 1)),
  );
}

// A click anywhere on a row opens the symbol (the symbol cell is a real link for keyboards).
$("screener-rows").addEventListener("click", (event) => {
  const tr = event.target.closest("tr[data-symbol]");
  if (!tr || event.target.closest("a")) return;
  location.assign(`/symbols/${encodeURIComponent(tr.dataset.symbol)}`);
});

/** Why the table is empty and what to change: the tier's window and the filters that narrow it. */
function emptyReason(filters, meta) {
  const hours = Math.round((meta.window_seconds || 0) / 3600);
  const window = hours >= 48 ? `${Math.round(hours / 24)} days` : `${hours} hours`;
  const narrowing = Object.entries(filters).filter(([key, value]) => value && !["tier", "sort"].includes(key));
  const where = `No ${meta.tier || filters.tier || "daily"} detections in the last ${window}`;
  if (!narrowing.length) return `${where}. Choose a tier with a longer window (weekly, monthly).`;
  const names = narrowing.map(([key]) => key.replace(/_/g, " ")).join(", ");
  return `${where} match these filters (${names}): widen or clear one, or choose a tier with a longer window.`;
}

async function load() {
  const filters = fillForm();
  markSort(filters.sort || DEFAULT_SORT);
  const cursor = readQuery(["cursor"]).cursor || null;
  const exportParams = new URLSearchParams({ ...filters, format: "csv" });
  $("screener-export").href = `/api/patterns/scan?${exportParams}`;
  $("screener-status").textContent = "Loading…";
  $("screener-status").hidden = false;
  $("prev-page").disabled = true;
  $("next-page").disabled = true;
  try {
    const { data, meta } = await api("/api/patterns/scan", { params: { ...filters, cursor, limit: PAGE_SIZE } });
    showError($("screener-error"), null);
    $("screener-rows").replaceChildren(...data.map(row));
    pager.setNext(meta.next_cursor);
    $("screener-status").textContent = data.length ? "" : emptyReason(filters, meta);
    $("screener-status").hidden = data.length > 0;
    $("next-page").disabled = !pager.next;
    $("prev-page").disabled = !cursor;
    $("page-label").textContent = `Page ${pager.depth + 1}`;
  } catch (error) {
    $("screener-status").hidden = true;
    showError($("screener-error"), error, load);
    $("prev-page").disabled = !cursor;
  }
}

async function loadPatternNames() {
  try {
    const { data } = await api("/api/pattern-definitions", { params: { enabled: true } });
    $("pattern-names").replaceChildren(...data.map((d) => h("option", { value: d.name })));
  } catch {
    // Suggestions only.
  }
}

load();
loadPatternNames();
