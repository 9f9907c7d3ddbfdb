// The latest indicator values of one symbol, kept live: the stored values (REST) first, then each
// ``indicator_update`` of the symbol (socket.js ``setIndicatorSymbols``) replaces its indicator's
// value, briefly flashed. Used by the dashboard's symbol panel and the symbol page.

import { formatNumber, h, timeElement } from "./format.js";

// The lines of a multi-line indicator in the order traders read them, whatever order the JSON
// came in (stored values and live updates order their keys differently); others by name.
const LINE_ORDER = ["upper", "middle", "lower", "macd", "signal", "histogram", "k", "d", "value"];

function lineRank(key) {
  const rank = LINE_ORDER.indexOf(key.toLowerCase());
  return rank === -1 ? LINE_ORDER.length : rank;
}

/** A value as a trader reads it: ``71.25``, or ``macd 1.25, signal 0.5`` for several lines. */
export function formatIndicator(value) {
  if (value && typeof value === "object") {
    if ("value" in value && Object.keys(value).length === 1) return formatNumber(value.value);
    return Object.entries(value)
      .sort(([a], [b]) => lineRank(a) - lineRank(b) || a.localeCompare(b))
      .map(([key, v]) => `${key} ${formatNumber(v)}`)
      .join(", ");
  }
  return formatNumber(value);
}

export class LiveIndicators {
  /**
   * @param {object} options
   * @param {LiveConnection} options.live  the page's connection
   * @param {HTMLElement} options.container  where the values are shown
   * @param {HTMLElement} [options.marker]  gets ``data-live-indicators`` once updates flow
   * @param {"inline"|"list"} [options.layout]  name/value spans, or a ``<dl>`` with source and time
   * @param {boolean} [options.bySource]  one value per indicator and source (daily, intraday…)
   *   rather than per indicator; a live update's source is its tier
   * @param {string} [options.emptyText]
   */
  constructor({ live, container, marker = container, layout = "inline", bySource = false, emptyText = "no indicator values yet" }) {
    this.live = live;
    this.container = container;
    this.marker = marker;
    this.layout = layout;
    this.bySource = bySource;
    this.emptyText = emptyText;
    this.symbol = null;
    this.values = new Map();
    this.seeded = false;
    live.addEventListener("indicator", (event) => this.update(event.detail));
    live.addEventListener("indicators-subscribed", (event) => {
      this.marker.dataset.liveIndicators = String(event.detail.symbols.includes(this.symbol));
    });
  }

  key(name, source) {
    const key = String(name).toLowerCase();
    return this.bySource && source ? `${key}|${source}` : key;
  }

  /** Follow this symbol (or none): its live updates are subscribed, the values start empty. */
  show(symbol) {
    this.symbol = symbol;
    this.values = new Map();
    this.seeded = false;
    this.marker.dataset.liveIndicators = "false";
    this.live.setIndicatorSymbols(symbol ? [symbol] : []);
    this.render();
  }

  /** The stored latest values (GET /api/indicators/<symbol>) of the symbol shown. */
  seed(symbol, items) {
    if (symbol !== this.symbol) return;
    this.seeded = true;
    for (const item of items) {
      const key = this.key(item.indicator, item.source);
      // A live value that arrived meanwhile is newer than the stored one.
      if (this.values.has(key)) continue;
      this.values.set(key, { name: item.indicator, source: item.source, value: item.value, at: item.calculated_at, live: false });
    }
    this.render();
  }

  /** An indicator_update: for the symbol shown, its value replaces the last one. */
  update(data) {
    if (data.symbol !== this.symbol || !data.indicator) return;
    const value = data.value !== null && data.value !== undefined ? data.value : data.values;
    const key = this.key(data.indicator, data.tier);
    this.values.set(key, { name: data.indicator, source: data.tier, value, at: data.calculated_at, live: true });
    this.render(key);
  }

  entries() {
    return [...this.values.entries()].sort(([a], [b]) => a.localeCompare(b));
  }

  render(flashKey = null) {
    const items = this.entries();
    if (!items.length) {
      // "None" only once the stored values are known to be none.
      const empty = this.layout === "list" ? h("dd", { className: "muted" }, this.emptyText) : this.emptyText;
      this.container.replaceChildren(...(this.seeded ? [empty] : []));
      return;
    }
    const build = this.layout === "list" ? this.listItem : this.inlineItem;
    this.container.replaceChildren(...items.map(([key, item]) => build.call(this, item, key === flashKey)));
  }

  attributes(item, flash) {
    return {
      className: `ind${flash ? " flash" : ""}`,
      dataset: { indicator: String(item.name).toLowerCase(), source: item.source || "", live: String(item.live) },
    };
  }

  inlineItem(item, flash) {
    const at = timeElement(item.at);
    return h(
      "span",
      {
        ...this.attributes(item, flash),
        title: `${item.name}${item.source ? ` (${item.source})` : ""} at ${at.title || at.textContent}`,
      },
      h("span", { className: "ind-name" }, item.name),
      h("span", { className: "ind-value num" }, formatIndicator(item.value)),
    );
  }

  listItem(item, flash) {
    return h(
      "div",
      this.attributes(item, flash),
      h("dt", {}, `${item.name} `, h("span", { className: "muted" }, item.source || "")),
      h(
        "dd",
        { className: "num" },
        h("span", { className: "ind-value" }, formatIndicator(item.value)),
        " ",
        timeElement(item.at, { withDate: true }),
      ),
    );
  }
}
