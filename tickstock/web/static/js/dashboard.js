// The live dashboard: watchlist, live feed and the selected symbol's chart.

import { api, boot, suggestion } from "./api.js";
import { onShortcut, startShell, toast } from "./app.js";
import { Feed } from "./feed.js";
import { readQuery, writeQuery } from "./format.js";
import { LiveIndicators } from "./indicators.js";
import { Watchlist } from "./watchlist.js";

const RELOAD_LIMIT = 20;

const { live } = startShell();
const $ = (id) => document.getElementById(id);

const feed = new Feed({
  tbody: $("feed-rows"),
  empty: $("feed-empty"),
  announcer: $("feed-announcer"),
  pauseButton: $("pause"),
  tierSelect: $("filter-tier"),
  confidenceInput: $("filter-conf"),
  settings: boot.settings || {},
});

const watchlist = new Watchlist({
  form: $("wl-add"),
  input: $("symbol-search"),
  datalist: $("symbol-options"),
  tbody: $("wl-rows"),
  status: $("wl-status"),
  error: $("wl-error"),
  allToggle: $("all-symbols"),
});

// "All symbols" is part of the view: reflected in the URL like the filters.
$("all-symbols").checked = readQuery(["all"]).all === "1";

onShortcut("/", () => watchlist.focusSearch());
onShortcut("p", () => feed.togglePause());

// ---- subscriptions follow the watchlist ("*" adds every symbol)

function refreshSubscribedMarks() {
  watchlist.markSubscribed((symbol) => live.isSubscribed(symbol) || live.isSubscribed("*"));
}

watchlist.addEventListener("change", async (event) => {
  const { symbols, all } = event.detail;
  writeQuery({ all: all ? "1" : "" });
  feed.setEmptyText(
    all ? "Waiting for patterns of any symbol…" : symbols.length ? "Waiting for patterns of your watchlist…" : `Add symbols to your watchlist to see their patterns here, or tick "All symbols". ${suggestion()}`.trim(),
  );
  await live.setSymbols(all ? [...symbols, "*"] : symbols);
  refreshSubscribedMarks();
  if (!symbolPanel.symbol || !symbols.includes(symbolPanel.symbol)) {
    symbolPanel.show(readQuery(["symbol"]).symbol || symbols[0] || null);
  }
});

live.addEventListener("pattern", (event) => {
  const item = event.detail;
  watchlist.count(item.symbol);
  feed.add(item);
  if (item.symbol === symbolPanel.symbol) symbolPanel.chart?.addDetection(item);
});

live.addEventListener("state", (event) => {
  if (event.detail.name !== "live") refreshSubscribedMarks();
});

live.addEventListener("resubscribed", async (event) => {
  const { reconnect, replayed, notRecovered } = event.detail;
  refreshSubscribedMarks();
  if (!reconnect) return;
  symbolPanel.retry();
  const note = $("feed-note");
  note.hidden = false;
  note.textContent = reconnectNote(replayed, notRecovered);
  if (notRecovered.length) await Promise.all(notRecovered.map(reloadSymbol));
});

/** One statement about the reconnect: what was recovered, and which symbols may have missed
 * events (their history no longer reached back) instead of "nothing was missed". */
function reconnectNote(replayed, notRecovered) {
  const recovered = `${replayed} missed event${replayed === 1 ? "" : "s"} recovered`;
  if (!notRecovered.length) return replayed > 0 ? `Reconnected: ${recovered}.` : "Reconnected: no events were missed.";
  const gap = `history did not reach back for ${notRecovered.join(", ")}, so events may have been missed there: reloading their recent patterns`;
  return replayed > 0 ? `Reconnected: ${recovered}; ${gap}.` : `Reconnected: ${gap}.`;
}

/** Live history no longer covers the gap: fetch the symbol's recent detections over REST. */
async function reloadSymbol(symbol) {
  try {
    const { data } = await api(`/api/patterns/${encodeURIComponent(symbol)}`, { params: { limit: RELOAD_LIMIT } });
    const added = feed.addFromHistory(data);
    if (added) toast(`${symbol}: ${added} recent pattern${added === 1 ? "" : "s"} reloaded from history.`);
  } catch (error) {
    toast(`${symbol}: could not reload recent patterns (${error.message})`);
  }
}

// ---- the selected symbol (bottom panel)

const indicators = new LiveIndicators({ live, container: $("sp-indicators"), marker: $("symbol-panel") });

const symbolPanel = {
  symbol: null,
  chart: null,
  // A load that failed (the server or its database was away) is tried again after a growing
  // delay, and at once when the socket has reconnected.
  retries: 0,
  retryTimer: null,
  async show(symbol, { force = false } = {}) {
    if (symbol === this.symbol && !force) return;
    if (symbol !== this.symbol) this.retries = 0;
    this.symbol = symbol;
    clearTimeout(this.retryTimer);
    indicators.show(symbol);
    const panel = $("symbol-panel");
    if (!symbol) {
      panel.hidden = true;
      delete panel.dataset.state;
      return;
    }
    panel.hidden = false;
    panel.dataset.state = "loading";
    $("sp-symbol").textContent = symbol;
    $("sp-open").href = `/symbols/${encodeURIComponent(symbol)}`;
    const container = $("sp-chart");
    if (!this.chart) {
      const { PriceChart } = await import("./chart.js");
      this.chart = this.chart || new PriceChart(container, { compact: true });
    }
    const chart = this.chart;
    try {
      const [bars, patterns, stored] = await Promise.all([
        api(`/api/symbols/${encodeURIComponent(symbol)}/ohlcv`, { params: { limit: 260 } }),
        api(`/api/patterns/${encodeURIComponent(symbol)}`, { params: { limit: 200 } }),
        api(`/api/indicators/${encodeURIComponent(symbol)}`, { params: { source: "daily" } }),
      ]);
      if (symbol !== this.symbol) return;
      chart.setBars(bars.data);
      chart.setDetections(patterns.data);
      indicators.seed(symbol, stored.data);
      panel.dataset.state = "ready";
      this.retries = 0;
    } catch (error) {
      if (symbol !== this.symbol) return;
      panel.dataset.state = "failed";
      const delay = Math.min(60, 5 * 2 ** this.retries++);
      this.retryTimer = setTimeout(() => this.retry(), delay * 1000);
      $("sp-indicators").textContent = `Could not load ${symbol} (${error.message}); trying again in ${delay} s.`;
    }
  },
  retry() {
    if (this.symbol && $("symbol-panel").dataset.state === "failed") this.show(this.symbol, { force: true });
  },
};

// Symbols link to their own page; the chart button shows one in the panel below.
watchlist.addEventListener("select", (event) => {
  const { symbol } = event.detail;
  writeQuery({ symbol });
  symbolPanel.show(symbol).then(() => $("symbol-panel").scrollIntoView({ block: "nearest" }));
});

watchlist.load();
