// The live feed: pattern events newest first, bounded, filtered, pausable, never duplicated,
// announced to screen readers at a gentle rate. The user's settings give the row limit
// (feed_limit) and the initial filters (default_tier, min_confidence) when the URL has none.

import {
  formatConfidence,
  formatPrice,
  h,
  priority,
  priorityBadge,
  readQuery,
  timeElement,
  toDate,
  writeQuery,
} from "./format.js";
import { SeenSet } from "./socket.js";

export const MAX_ROWS = 500;
const FLASH_MS = 1600;
const ANNOUNCE_EVERY_MS = 5000;

/** The same detection from the live feed and from REST share this key. */
function detectionKey(item) {
  const date = toDate(item.detected_at);
  return `${item.symbol}|${item.pattern}|${date ? date.getTime() : item.detected_at}`;
}

export class Feed {
  constructor({ tbody, empty, announcer, pauseButton, tierSelect, confidenceInput, settings = {} }) {
    this.tbody = tbody;
    this.empty = empty;
    this.announcer = announcer;
    this.pauseButton = pauseButton;
    this.tierSelect = tierSelect;
    this.confidenceInput = confidenceInput;
    this.seen = new SeenSet();
    this.paused = false;
    this.pending = [];
    this.toAnnounce = [];
    this.announceTimer = null;
    this.filters = { tier: "", confidenceMin: 0 };
    const limit = Number(settings.feed_limit);
    this.maxRows = Number.isInteger(limit) && limit > 0 ? Math.min(limit, MAX_ROWS) : MAX_ROWS;
    this.defaults = {
      tier: typeof settings.default_tier === "string" ? settings.default_tier : "",
      confidenceMin: typeof settings.min_confidence === "number" ? settings.min_confidence : null,
    };
    this.readFilters();
    tierSelect.addEventListener("change", () => this.onFilterChange());
    confidenceInput.addEventListener("input", () => this.onFilterChange());
    pauseButton.addEventListener("click", () => this.togglePause());
  }

  // ---- filters (reflected in the URL so a view can be bookmarked)

  readFilters() {
    const query = readQuery(["tier", "confidence_min"]);
    const tier = query.tier ?? this.defaults.tier;
    const conf = query.confidence_min ?? (this.defaults.confidenceMin ? String(this.defaults.confidenceMin) : "");
    this.tierSelect.value = [...this.tierSelect.options].some((o) => o.value === tier) ? tier : "";
    const value = Number(conf);
    this.confidenceInput.value = conf !== "" && value >= 0 && value <= 1 ? String(value) : "";
    this.filters = this.currentFilters();
  }

  currentFilters() {
    const value = Number(this.confidenceInput.value);
    const valid = this.confidenceInput.value !== "" && Number.isFinite(value) && value >= 0 && value <= 1;
    this.confidenceInput.setAttribute("aria-invalid", String(this.confidenceInput.value !== "" && !valid));
    return { tier: this.tierSelect.value, confidenceMin: valid ? value : 0 };
  }

  onFilterChange() {
    this.filters = this.currentFilters();
    writeQuery({
      tier: this.filters.tier,
      confidence_min: this.filters.confidenceMin ? this.filters.confidenceMin : "",
    });
    for (const row of this.tbody.rows) row.hidden = !this.matches(row.dataset);
    this.renderEmpty();
  }

  matches(item) {
    const { tier, confidenceMin } = this.filters;
    if (tier && item.tier !== tier) return false;
    return Number(item.confidence) >= confidenceMin;
  }

  // ---- pause (events keep arriving and wait, bounded, until resume)

  togglePause() {
    this.paused = !this.paused;
    if (!this.paused) {
      const waiting = this.pending;
      this.pending = [];
      for (const item of waiting) this.insert(item);
    }
    this.renderPause();
  }

  renderPause() {
    this.pauseButton.setAttribute("aria-pressed", String(this.paused));
    const label = this.paused ? `Resume${this.pending.length ? ` (${this.pending.length} new)` : ""}` : "Pause";
    this.pauseButton.firstChild.textContent = `${label} `;
    this.pauseButton.closest(".feed")?.classList.toggle("is-paused", this.paused);
  }

  // ---- events

  /** A live event (already unique by event_id): shown now, or held while paused. */
  add(event) {
    const key = detectionKey(event);
    if (this.seen.has(event.event_id) || this.seen.has(key)) return false;
    this.seen.add(event.event_id);
    this.seen.add(key);
    const item = {
      id: event.event_id,
      symbol: event.symbol,
      pattern: event.pattern,
      confidence: Number(event.confidence),
      tier: event.tier || event.timeframe || "",
      timeframe: event.timeframe || "",
      price: typeof event.price === "number" ? event.price : null,
      detectedAt: event.detected_at,
      offset: event.offset || "",
      source: "live",
    };
    if (this.paused) {
      this.pending.push(item);
      if (this.pending.length > this.maxRows) this.pending.shift();
      this.renderPause();
    } else {
      this.insert(item);
    }
    return true;
  }

  /** Detections reloaded over REST (history did not reach back): merged, never duplicated. */
  addFromHistory(items) {
    const fresh = [];
    for (const raw of items) {
      const key = detectionKey(raw);
      if (this.seen.has(key)) continue;
      this.seen.add(key);
      fresh.push({
        id: `db:${raw.tier}:${raw.id}`,
        symbol: raw.symbol,
        pattern: raw.pattern,
        confidence: Number(raw.confidence),
        tier: raw.tier,
        timeframe: raw.timeframe || "",
        price: typeof raw.price === "number" ? raw.price : null,
        detectedAt: raw.detected_at,
        offset: "",
        source: "history",
      });
    }
    // Oldest first, so the newest ends on top.
    fresh.sort((a, b) => (toDate(a.detectedAt)?.getTime() || 0) - (toDate(b.detectedAt)?.getTime() || 0));
    for (const item of fresh) this.insert(item);
    return fresh.length;
  }

  insert(item) {
    const row = this.row(item);
    row.hidden = !this.matches(row.dataset);
    // Newest first by detection time, not by arrival: producers deliver slightly out of order.
    const at = toDate(item.detectedAt)?.getTime() || Date.now();
    row.dataset.at = String(at);
    let before = null;
    for (const other of this.tbody.rows) {
      if (Number(other.dataset.at) <= at) {
        before = other;
        break;
      }
    }
    this.tbody.insertBefore(row, before);
    while (this.tbody.rows.length > this.maxRows) this.tbody.lastElementChild.remove();
    setTimeout(() => row.classList.remove("flash"), FLASH_MS);
    this.renderEmpty();
    if (!row.hidden) this.announce(item);
  }

  row(item) {
    const name = priority(item.confidence);
    return h(
      "tr",
      {
        className: `flash prio-row-${name.toLowerCase()}${item.source === "history" ? " from-history" : ""}`,
        dataset: {
          eventId: item.id,
          symbol: item.symbol,
          tier: item.tier,
          confidence: String(item.confidence),
          offset: item.offset,
        },
      },
      h("td", { className: "time" }, timeElement(item.detectedAt)),
      h("td", { className: "sym" }, h("a", { href: `/symbols/${encodeURIComponent(item.symbol)}` }, item.symbol)),
      h("td", { className: "pattern" }, item.pattern),
      h("td", { className: "num" }, formatConfidence(item.confidence)),
      h("td", {}, priorityBadge(item.confidence)),
      h("td", { className: "tier", title: item.timeframe && item.timeframe !== item.tier ? `timeframe ${item.timeframe}` : undefined }, item.tier),
      h("td", { className: "num" }, item.price === null ? "—" : formatPrice(item.price)),
    );
  }

  renderEmpty() {
    const visible = [...this.tbody.rows].some((row) => !row.hidden);
    this.empty.hidden = visible;
    if (!visible && this.tbody.rows.length) this.empty.textContent = "No events match the filters.";
  }

  setEmptyText(text) {
    if (!this.tbody.rows.length) this.empty.textContent = text;
  }

  // ---- screen readers: one polite summary at most every few seconds

  announce(item) {
    this.toAnnounce.push(item);
    if (this.announceTimer) return;
    this.announceTimer = setTimeout(() => {
      const items = this.toAnnounce;
      this.toAnnounce = [];
      this.announceTimer = null;
      const named = items
        .slice(-3)
        .reverse()
        .map((i) => `${i.symbol} ${i.pattern} ${formatConfidence(i.confidence)} ${priority(i.confidence)}`);
      const more = items.length > 3 ? `, and ${items.length - 3} more` : "";
      this.announcer.textContent = `${items.length} new pattern${items.length === 1 ? "" : "s"}: ${named.join("; ")}${more}`;
    }, ANNOUNCE_EVERY_MS);
  }
}
