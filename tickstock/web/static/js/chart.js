// Daily candles with pattern markers, drawn by TradingView's lightweight-charts.

import {
  CandlestickSeries,
  ColorType,
  createChart,
  createSeriesMarkers,
  HistogramSeries,
} from "lightweight-charts";
import { formatDay, priority, toDate } from "./format.js";


function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function palette() {
  return {
    background: cssVar("--panel"),
    text: cssVar("--muted"),
    grid: cssVar("--grid"),
    up: cssVar("--up"),
    down: cssVar("--down"),
    CRITICAL: cssVar("--critical"),
    HIGH: cssVar("--high"),
    MEDIUM: cssVar("--medium"),
    LOW: cssVar("--low"),
  };
}

function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

export class PriceChart {
  constructor(container, { compact = false } = {}) {
    this.container = container;
    this.compact = compact;
    this.bars = [];
    this.detections = [];
    this.chart = createChart(container, {
      autoSize: true,
      layout: { attributionLogo: false },
      rightPriceScale: { borderVisible: false },
      timeScale: { borderVisible: false, rightOffset: 3 },
      crosshair: { mode: 1 },
      // Days written as the tables write them (the crosshair's label and the tip alike).
      localization: { timeFormatter: (time) => formatDay(time) },
    });
    this.candles = this.chart.addSeries(CandlestickSeries, { priceLineVisible: !compact });
    this.volume = this.chart.addSeries(HistogramSeries, {
      priceScaleId: "volume",
      priceFormat: { type: "volume" },
      lastValueVisible: false,
      priceLineVisible: false,
    });
    this.chart.priceScale("volume").applyOptions({ scaleMargins: { top: 0.82, bottom: 0 } });
    this.candles.priceScale().applyOptions({ scaleMargins: { top: 0.08, bottom: 0.22 } });
    this.markers = createSeriesMarkers(this.candles, []);
    this.byDay = new Map();
    // Labels never pile up: markers carry no text (neighbouring counts ran together, "4644");
    // a bar with several detections gets a bigger marker, and the names show on hover.
    this.tip = document.createElement("div");
    this.tip.className = "chart-tip";
    this.tip.hidden = true;
    this.tip.setAttribute("role", "tooltip");
    container.append(this.tip);
    this.chart.subscribeCrosshairMove((param) => this.showTip(param));
    container.priceChart = this; // a handle for the browser tests and the console
    this.onTheme = () => this.applyTheme();
    document.addEventListener("themechange", this.onTheme);
    this.applyTheme();
  }

  applyTheme() {
    const colors = palette();
    this.colors = colors;
    this.chart.applyOptions({
      layout: { background: { type: ColorType.Solid, color: colors.background }, textColor: colors.text },
      grid: { vertLines: { color: colors.grid }, horzLines: { color: colors.grid } },
    });
    this.candles.applyOptions({
      upColor: colors.up,
      downColor: colors.down,
      borderUpColor: colors.up,
      borderDownColor: colors.down,
      wickUpColor: colors.up,
      wickDownColor: colors.down,
    });
    this.renderBars();
    this.renderMarkers();
  }

  /** Daily bars ``{date, open, high, low, close, volume}``, oldest first. */
  setBars(bars) {
    this.bars = bars.filter((b) => b && b.date);
    this.renderBars();
    this.renderMarkers();
    this.chart.timeScale().fitContent();
    this.container.dataset.bars = String(this.bars.length);
    this.container.querySelector(".chart-note")?.remove();
    if (!this.bars.length) {
      const note = document.createElement("p");
      note.className = "chart-note";
      note.textContent = "No daily bars for this symbol yet.";
      this.container.append(note);
    }
  }

  renderBars() {
    if (!this.colors) return;
    this.candles.setData(
      this.bars.map((b) => ({ time: b.date, open: b.open, high: b.high, low: b.low, close: b.close })),
    );
    this.volume.setData(
      this.bars.map((b) => ({
        time: b.date,
        value: b.volume,
        color: `${b.close >= b.open ? this.colors.up : this.colors.down}55`,
      })),
    );
  }

  /** Detections ``{detected_at, pattern, confidence}`` to mark on their trading day. */
  setDetections(items) {
    this.detections = items.slice();
    this.renderMarkers();
  }

  addDetection(item) {
    this.detections.push(item);
    this.renderMarkers();
  }

  renderMarkers() {
    if (!this.colors || !this.markers) return;
    const days = this.bars.map((b) => b.date);
    // One marker per trading day: the strongest detection, with how many more there were.
    const byDay = new Map();
    let marked = 0;
    if (days.length) {
      for (const item of this.detections) {
        const date = toDate(item.detected_at);
        const day = date && this.snap(days, isoDay(date));
        if (!day) continue;
        marked += 1;
        const confidence = Number(item.confidence);
        const entry = byDay.get(day) || { time: day, count: 0, confidence: -1, pattern: "", names: [] };
        entry.count += 1;
        entry.names.push(`${item.pattern} ${Math.round(confidence * 100)}%`);
        if (confidence > entry.confidence) Object.assign(entry, { confidence, pattern: item.pattern });
        byDay.set(day, entry);
      }
    }
    const markers = [...byDay.values()].sort((a, b) => (a.time < b.time ? -1 : 1));
    this.byDay = byDay;
    this.markers.setMarkers(
      markers.map((m) => {
        const name = priority(m.confidence);
        return {
          time: m.time,
          position: "aboveBar",
          shape: name === "CRITICAL" || name === "HIGH" ? "arrowDown" : "circle",
          color: this.colors[name],
          text: "",
          size: Math.min(2, (name === "CRITICAL" ? 1.4 : 1) + 0.2 * (m.count - 1)),
        };
      }),
    );
    this.container.dataset.markers = String(markers.length);
    this.container.dataset.detections = String(marked);
  }

  /** The detections of the hovered bar, beside the cursor. */
  showTip(param) {
    const entry = param && param.time && param.point ? this.byDay.get(param.time) : null;
    if (!entry) {
      this.tip.hidden = true;
      return;
    }
    const shown = entry.names.slice(0, 6);
    const what = entry.count === 1 ? "1 detection" : `${entry.count} detections`;
    this.tip.textContent = `${formatDay(entry.time)} · ${what}: ${shown.join(", ")}${entry.names.length > shown.length ? ` +${entry.names.length - shown.length} more` : ""}`;
    this.tip.hidden = false;
    const width = this.container.clientWidth;
    // Kept inside the chart: near the right edge the tip opens to the left of the cursor.
    const left = param.point.x + 12 + this.tip.offsetWidth > width ? Math.max(0, param.point.x - 12 - this.tip.offsetWidth) : param.point.x + 12;
    this.tip.style.left = `${left}px`;
    this.tip.style.top = `${Math.max(0, param.point.y - 36)}px`;
  }

  /** The x coordinate of a marked day (for tests and keyboard focus). */
  markerX(day) {
    return this.chart.timeScale().timeToCoordinate(day);
  }

  /** The latest bar day on or before ``day`` (a detection on a weekend marks Friday). */
  snap(days, day) {
    if (day < days[0]) return null;
    let low = 0;
    let high = days.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (days[mid] <= day) low = mid;
      else high = mid - 1;
    }
    return days[low];
  }

  destroy() {
    document.removeEventListener("themechange", this.onTheme);
    this.chart.remove();
  }
}
