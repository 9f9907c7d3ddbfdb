// Formatting and small DOM helpers shared by the pages.

/** CRITICAL ≥ 0.9, HIGH ≥ 0.8, MEDIUM ≥ 0.7, else LOW (as the API's ``priority``). */
export function priority(confidence) {
  if (confidence >= 0.9) return "CRITICAL";
  if (confidence >= 0.8) return "HIGH";
  if (confidence >= 0.7) return "MEDIUM";
  return "LOW";
}

const timeFormat = new Intl.DateTimeFormat(undefined, {
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
  hour12: false,
});
// One way to write a day everywhere (tables, chart hover, tips): the user's locale, day, short
// month and full year; with the time, the same day then hh:mm.
const DAY = { year: "numeric", month: "short", day: "2-digit" };
const dayFormat = new Intl.DateTimeFormat(undefined, DAY);
const dayUtcFormat = new Intl.DateTimeFormat(undefined, { ...DAY, timeZone: "UTC" });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, {
  ...DAY,
  hour: "2-digit",
  minute: "2-digit",
  hour12: false,
});
const priceFormat = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const compactFormat = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });
const plainFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });

export function toDate(value) {
  if (value instanceof Date) return value;
  if (typeof value === "number") return new Date(value < 1e12 ? value * 1000 : value);
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** A <time> element: local time (or date and time) as text, the UTC value on hover. */
export function timeElement(value, { withDate = false } = {}) {
  const date = toDate(value);
  const element = document.createElement("time");
  if (!date) {
    element.textContent = "—";
    return element;
  }
  element.dateTime = date.toISOString();
  element.textContent = (withDate ? dateTimeFormat : timeFormat).format(date);
  element.title = `${date.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z").replace("Z", " UTC")}`;
  return element;
}

/** A day as every page writes it. A trading day ("2026-01-28", a chart bar) is that calendar
 * day wherever the reader is; an instant is its local day. */
export function formatDay(value) {
  if (typeof value === "string" && /^\d{4}-\d{2}-\d{2}$/.test(value)) return dayUtcFormat.format(new Date(`${value}T00:00:00Z`));
  if (value && typeof value === "object" && "year" in value && "month" in value && "day" in value) {
    return dayUtcFormat.format(new Date(Date.UTC(value.year, value.month - 1, value.day)));
  }
  const date = toDate(value);
  return date ? dayFormat.format(date) : "—";
}

export function formatPrice(value) {
  return typeof value === "number" && Number.isFinite(value) ? priceFormat.format(value) : "—";
}

export function formatConfidence(value) {
  return typeof value === "number" && Number.isFinite(value) ? value.toFixed(2) : "—";
}

export function formatCompact(value) {
  return typeof value === "number" && Number.isFinite(value) ? compactFormat.format(value) : "—";
}

export function formatNumber(value) {
  return typeof value === "number" && Number.isFinite(value) ? plainFormat.format(value) : String(value ?? "—");
}

/** ``h("td", {className: "num"}, "1.00")``: an element with properties and children. */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "dataset") Object.assign(element.dataset, value);
    else if (key.startsWith("aria-") || key === "role" || key === "scope") element.setAttribute(key, value);
    else element[key] = value;
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

/** A priority badge: coloured, and the word itself so colour is never the only cue. */
export function priorityBadge(confidence, known) {
  const name = known || priority(confidence);
  return h("span", { className: `prio prio-${name.toLowerCase()}` }, name);
}

/** Read filters from the URL query: the named keys only, as strings. */
export function readQuery(keys) {
  const params = new URLSearchParams(location.search);
  const values = {};
  for (const key of keys) {
    const value = params.get(key);
    if (value !== null && value !== "") values[key] = value;
  }
  return values;
}

/** Reflect ``values`` in the URL (replacing, so the back button is not flooded). */
export function writeQuery(values, { push = false } = {}) {
  const params = new URLSearchParams(location.search);
  for (const [key, value] of Object.entries(values)) {
    if (value === undefined || value === null || value === "" || value === false) params.delete(key);
    else params.set(key, String(value));
  }
  const text = params.toString();
  const url = location.pathname + (text ? `?${text}` : "") + location.hash;
  if (push) history.pushState(history.state, "", url);
  else history.replaceState(history.state, "", url);
}

/** Whether a key event comes from a place where typing is expected. */
export function isTyping(event) {
  const target = event.target;
  if (!(target instanceof HTMLElement)) return false;
  return target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName);
}

/** A symbol as the API accepts it (upper-cased), or null. */
export function normaliseSymbol(raw) {
  const symbol = String(raw || "").trim().toUpperCase();
  return /^[A-Z0-9][A-Z0-9.-]{0,9}$/.test(symbol) ? symbol : null;
}
