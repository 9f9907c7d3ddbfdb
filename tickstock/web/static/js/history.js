// Pattern history: /api/patterns with the filters of the URL, paged with the API's cursor.
// The URL holds the filters and the current cursor, so every page can be bookmarked; Prev walks
// back through the cursors seen in this tab (kept in history.state).

import { api, showError, suggestion } from "./api.js";
import { startShell } from "./app.js";
import { cursorPager } from "./pager.js";
import { formatConfidence, h, priorityBadge, readQuery, timeElement, writeQuery } from "./format.js";

const FILTERS = ["tier", "symbols", "pattern", "confidence_min"];
const PAGE_SIZE = 50;

startShell();
const $ = (id) => document.getElementById(id);
const form = $("history-filters");

function fillForm() {
  const values = readQuery(FILTERS);
  for (const name of FILTERS) {
    const field = form.elements.namedItem(name);
    if (field) field.value = values[name] || "";
  }
  return values;
}

// The form submits by GET to /history: the browser puts the filters in the URL by itself.
// Empty fields are dropped so URLs stay short.
form.addEventListener("submit", (event) => {
  event.preventDefault();
  const values = {};
  for (const name of FILTERS) {
    const value = String(form.elements.namedItem(name).value || "").trim();
    values[name] = name === "symbols" ? value.toUpperCase().replace(/\s+/g, "") : value;
  }
  const params = new URLSearchParams(Object.entries(values).filter(([, v]) => v));
  const text = params.toString();
  location.assign(`/history${text ? `?${text}` : ""}`);
});

const pager = cursorPager(load);

/** Why the list is empty and what to change: the filters that narrow it, named. */
function emptyReason(filters) {
  if (readQuery(["cursor"]).cursor) return "No older detections: this is the end of the history.";
  const named = [
    filters.tier && `tier ${filters.tier}`,
    filters.symbols && `symbols ${filters.symbols}`,
    filters.pattern && `pattern “${filters.pattern}”`,
    filters.confidence_min && `confidence ≥ ${filters.confidence_min}`,
  ].filter(Boolean);
  if (!named.length) return `No detections stored yet. ${suggestion()}`.trim();
  return `No detections match ${named.join(", ")}: clear or widen one of them. ${suggestion()}`.trim();
}

async function load() {
  const filters = fillForm();
  const cursor = readQuery(["cursor"]).cursor || null;
  $("history-status").textContent = "Loading…";
  $("history-status").hidden = false;
  $("prev-page").disabled = true;
  $("next-page").disabled = true;
  try {
    const { data, meta } = await api("/api/patterns", { params: { ...filters, cursor, limit: PAGE_SIZE } });
    showError($("history-error"), null);
    $("history-rows").replaceChildren(...data.map(row));
    pager.setNext(meta.next_cursor);
    $("history-status").textContent = data.length ? "" : emptyReason(filters);
    $("history-status").hidden = data.length > 0;
    $("next-page").disabled = !pager.next;
    $("prev-page").disabled = !cursor;
    $("page-label").textContent = `Page ${pager.depth + 1}`;
  } catch (error) {
    $("history-status").hidden = true;
    showError($("history-error"), error, load);
    $("prev-page").disabled = !cursor;
  }
}

function row(item) {
  return h(
    "tr",
    { dataset: { id: `${item.tier}:${item.id}` } },
    h("td", { className: "time" }, timeElement(item.detected_at, { withDate: true })),
    h("td", { className: "sym" }, h("a", { href: `/symbols/${encodeURIComponent(item.symbol)}` }, item.symbol)),
    h("td", {}, item.pattern),
    h("td", { className: "num" }, formatConfidence(item.confidence)),
    h("td", {}, priorityBadge(item.confidence, item.priority)),
    h("td", {}, item.tier),
    h("td", {}, item.timeframe || "—"),
  );
}


async function loadPatternNames() {
  try {
    const { data } = await api("/api/pattern-definitions");
    $("pattern-names").replaceChildren(...data.map((d) => h("option", { value: d.name })));
  } catch {
    // Suggestions only: the field still takes any name.
  }
}

load();
loadPatternNames();
