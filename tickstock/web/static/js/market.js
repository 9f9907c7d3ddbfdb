// The market page: breadth of the latest trading day, its series over time (lightweight-charts),
// sectors as a heat-map (advancing share and share above the 50-day average), movers, counts.

import { ColorType, createChart, HistogramSeries, LineSeries } from "lightweight-charts";
import { api, showError } from "./api.js";
import { startShell } from "./app.js";
import { formatDay, formatPrice, h, readQuery, writeQuery } from "./format.js";

startShell();
const $ = (id) => document.getElementById(id);

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

const percent = (share) => (typeof share === "number" ? `${(share * 100).toFixed(0)}%` : "—");

// ---------------------------------------------------------------- breadth chart

const chart = createChart($("breadth-chart"), {
  autoSize: true,
  layout: { attributionLogo: false },
  rightPriceScale: { borderVisible: false },
  leftPriceScale: { visible: true, borderVisible: false },
  timeScale: { borderVisible: false },
  localization: { timeFormatter: (time) => formatDay(time) },
});
const net = chart.addSeries(HistogramSeries, { priceScaleId: "left", priceLineVisible: false });
const above50 = chart.addSeries(LineSeries, { lineWidth: 2, priceLineVisible: false });
const above200 = chart.addSeries(LineSeries, { lineWidth: 2, priceLineVisible: false });
let series = [];

function paintChart() {
  chart.applyOptions({
    layout: { background: { type: ColorType.Solid, color: cssVar("--panel") }, textColor: cssVar("--muted") },
    grid: { vertLines: { color: cssVar("--grid") }, horzLines: { color: cssVar("--grid") } },
  });
  above50.applyOptions({ color: cssVar("--accent") });
  above200.applyOptions({ color: cssVar("--high") });
  const up = cssVar("--up");
  const down = cssVar("--down");
  net.setData(
    series.map((d) => ({ time: d.date, value: d.advancers - d.decliners, color: d.advancers >= d.decliners ? up : down })),
  );
  above50.setData(series.filter((d) => d.above_50d !== null).map((d) => ({ time: d.date, value: d.above_50d * 100 })));
  above200.setData(series.filter((d) => d.above_200d !== null).map((d) => ({ time: d.date, value: d.above_200d * 100 })));
  chart.timeScale().fitContent();
}
document.addEventListener("themechange", paintChart);

async function loadBreadth() {
  const days = readQuery(["days"]).days || "90";
  $("breadth-days").value = days;
  try {
    const { data } = await api("/api/market/breadth", { params: { days } });
    series = data;
    $("breadth-chart").dataset.points = String(data.length);
    paintChart();
  } catch (error) {
    showError($("market-error"), error, loadBreadth);
  }
}

$("breadth-days").addEventListener("change", (event) => {
  writeQuery({ days: event.target.value });
  loadBreadth();
});

// ---------------------------------------------------------------- overview

function stat(label, value, id) {
  return [h("dt", {}, label), h("dd", { className: "num", dataset: { stat: id } }, value)];
}

// Heat: 0 → down colour, 0.5 → neutral, 1 → up colour (mixed by the browser in CSS colour space).
function heat(cell, share) {
  if (typeof share !== "number") return cell;
  const colour = share >= 0.5 ? "--up" : "--down";
  const strength = Math.round(Math.min(1, Math.abs(share - 0.5) * 2) * 55);
  cell.style.backgroundColor = `color-mix(in srgb, var(${colour}) ${strength}%, transparent)`;
  cell.dataset.share = share.toFixed(3);
  return cell;
}

function moverRow(m) {
  return h(
    "tr",
    {},
    h("td", { className: "sym" }, h("a", { href: `/symbols/${encodeURIComponent(m.symbol)}` }, m.symbol)),
    h("td", { className: "name", title: m.name || undefined }, m.name || "—"),
    h("td", { className: "num" }, formatPrice(m.close)),
    h("td", { className: `num ${m.change_pct > 0 ? "up" : "down"}` }, `${m.change_pct > 0 ? "+" : ""}${m.change_pct.toFixed(2)}%`),
  );
}

async function loadOverview() {
  try {
    const { data } = await api("/api/market/overview");
    showError($("market-error"), null);
    $("market-date").textContent = data.date ? `· ${formatDay(data.date)}` : "· no bars yet";
    const m = data.market;
    if (m) {
      $("market-stats").replaceChildren(
        ...stat("Advancers", m.advancers, "advancers"),
        ...stat("Decliners", m.decliners, "decliners"),
        ...stat("Unchanged", m.unchanged, "unchanged"),
        ...stat("New 52w highs", m.new_highs, "new_highs"),
        ...stat("New 52w lows", m.new_lows, "new_lows"),
        ...stat("Above 50d avg", percent(m.above_50d), "above_50d"),
        ...stat("Above 200d avg", percent(m.above_200d), "above_200d"),
      );
    }
    const detections = new Map(data.detections_by_sector.map((c) => [c.key, c]));
    $("sector-rows").replaceChildren(
      ...data.sectors.map((s) => {
        const counted = s.advancers + s.decliners + s.unchanged;
        const share = counted ? s.advancers / counted : null;
        return h(
          "tr",
          { dataset: { sector: s.sector } },
          h("th", { scope: "row" }, s.sector),
          h("td", { className: "num" }, s.symbols),
          h("td", { className: "num" }, s.advancers),
          h("td", { className: "num" }, s.decliners),
          heat(h("td", { className: "num heat" }, percent(share)), share),
          h("td", { className: "num" }, s.new_highs),
          h("td", { className: "num" }, s.new_lows),
          heat(h("td", { className: "num heat" }, percent(s.above_50d)), s.above_50d),
          heat(h("td", { className: "num heat" }, percent(s.above_200d)), s.above_200d),
          h("td", { className: "num" }, detections.get(s.sector)?.last_7d ?? 0),
        );
      }),
    );
    $("gainers").tBodies[0].replaceChildren(...data.gainers.map(moverRow));
    $("losers").tBodies[0].replaceChildren(...data.losers.map(moverRow));
    $("tier-counts").tBodies[0].replaceChildren(
      ...data.detections_by_tier.map((c) =>
        h("tr", {}, h("td", {}, c.key), h("td", { className: "num" }, c.last_1d), h("td", { className: "num" }, c.last_7d), h("td", { className: "num" }, c.last_30d)),
      ),
    );
  } catch (error) {
    showError($("market-error"), error, loadOverview);
  }
}

loadOverview();
loadBreadth();
