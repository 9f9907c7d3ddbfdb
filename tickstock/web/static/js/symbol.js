// One symbol: daily candles with its detections as markers, the latest indicators (updated live),
// and the detections table (older pages by cursor; live detections are added as they arrive).

import { api, boot, showError } from "./api.js";
import { startShell } from "./app.js";
import { PriceChart } from "./chart.js";
import { formatCompact, formatConfidence, formatDay, formatPrice, h, priorityBadge, timeElement } from "./format.js";
import { LiveIndicators } from "./indicators.js";
import { SeenSet } from "./socket.js";

const { live } = startShell();
const $ = (id) => document.getElementById(id);
const symbol = boot.symbol;
const path = encodeURIComponent(symbol);
const chart = new PriceChart($("chart"));
const seen = new SeenSet();
let detectionsCursor = null;

async function loadDetail() {
  try {
    const { data } = await api(`/api/symbols/${path}`);
    $("symbol-name").textContent = data.name || "";
    const facts = [data.exchange, data.sector, data.industry].filter(Boolean);
    if (data.market_cap) facts.push(`market cap ${formatCompact(data.market_cap)}`);
    if (data.last_bar) facts.push(`last close ${formatPrice(data.last_bar.close)} (${formatDay(data.last_bar.date)})`);
    $("symbol-facts").textContent = facts.join(" · ");
  } catch (error) {
    $("symbol-facts").textContent = error.message;
  }
}

async function loadChart() {
  try {
    const [bars, patterns] = await Promise.all([
      api(`/api/symbols/${path}/ohlcv`, { params: { limit: 260 } }),
      api(`/api/patterns/${path}`, { params: { limit: 500 } }),
    ]);
    chart.setBars(bars.data);
    chart.setDetections(patterns.data);
    showError($("chart-error"), null);
    $("chart").setAttribute(
      "aria-label",
      `${symbol}: ${bars.data.length} daily candles with ${$("chart").dataset.markers} pattern markers`,
    );
  } catch (error) {
    showError($("chart-error"), error, loadChart);
  }
}

const indicators = new LiveIndicators({
  live,
  container: $("indicators"),
  marker: $("indicators-panel"),
  layout: "list",
  bySource: true,
  emptyText: "No indicators for this symbol yet.",
});

async function loadIndicators() {
  try {
    const { data } = await api(`/api/indicators/${path}`);
    indicators.seed(symbol, data);
    showError($("indicators-error"), null);
  } catch (error) {
    showError($("indicators-error"), error, loadIndicators);
  }
}

function detectionRow(item, { live: isLive = false } = {}) {
  const price = typeof item.price === "number" ? item.price : null;
  return h(
    "tr",
    { className: isLive ? "flash" : "" },
    h("td", { className: "time" }, timeElement(item.detected_at, { withDate: true })),
    h("td", {}, item.pattern),
    h("td", { className: "num" }, formatConfidence(Number(item.confidence))),
    h("td", {}, priorityBadge(Number(item.confidence), item.priority)),
    h("td", {}, item.tier || item.timeframe || "—"),
    h("td", { className: "num" }, price === null ? "—" : formatPrice(price)),
  );
}

async function loadDetections({ more = false } = {}) {
  const button = $("more-detections");
  button.disabled = true;
  try {
    const { data, meta } = await api(`/api/patterns/${path}`, {
      params: { limit: 50, cursor: more ? detectionsCursor : undefined },
    });
    const rows = data.map((item) => detectionRow(item));
    if (more) $("detection-rows").append(...rows);
    else $("detection-rows").replaceChildren(...rows);
    detectionsCursor = meta.next_cursor || null;
    button.hidden = !detectionsCursor;
    $("detections-status").textContent = $("detection-rows").rows.length ? "" : "No detections recorded for this symbol.";
    showError($("detections-error"), null);
  } catch (error) {
    showError($("detections-error"), error, () => loadDetections({ more }));
  } finally {
    button.disabled = false;
  }
}

$("more-detections").addEventListener("click", () => loadDetections({ more: true }));

live.addEventListener("pattern", (event) => {
  const item = event.detail;
  if (item.symbol !== symbol || seen.has(item.event_id)) return;
  seen.add(item.event_id);
  $("detection-rows").prepend(detectionRow(item, { live: true }));
  $("detections-status").textContent = "";
  chart.addDetection(item);
});

function loadAll() {
  loadDetail();
  loadChart();
  loadIndicators();
  loadDetections();
}

live.setSymbols([symbol]);
indicators.show(symbol);
loadAll();
