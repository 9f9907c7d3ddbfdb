// The Backtest page (SPEC §13): the form, the user's jobs with live progress and Cancel, and a
// finished job's result (metric tiles, equity curve with its drawdown, per-pattern table, trades).
// Admins also get the data-load form and everyone's jobs.

import { BaselineSeries, ColorType, createChart, LineSeries } from "lightweight-charts";
import { api, ApiError, boot, showError } from "./api.js";
import { startShell, toast } from "./app.js";
import { h, normaliseSymbol, readQuery, writeQuery } from "./format.js";
import { ACTIVE, fraction, jobOf, jobTitle } from "./jobs.js";
import { fieldErrors } from "./rules.js";

const { live } = startShell();
const $ = (id) => document.getElementById(id);
const isAdmin = boot.user?.role === "admin";
const TRADES_PER_PAGE = 25;
const MAX_SYMBOLS = 50;
// Form fields shown as percents; the API takes fractions.
const PERCENT_FIELDS = ["commission_rate", "slippage_rate", "max_position_size", "stop_loss_pct", "take_profit_pct"];
const PARAMETERS = ["initial_capital", ...PERCENT_FIELDS, "max_hold_days"];

// --------------------------------------------------------------------------- formatting

const pct = (v, digits = 1) => (typeof v === "number" ? `${v > 0 ? "+" : ""}${(v * 100).toFixed(digits)}%` : "—");
const plainPct = (v) => (typeof v === "number" ? `${(v * 100).toFixed(1)}%` : "—");
const ratio = (v) => (typeof v === "number" ? v.toFixed(2) : "—");
const money = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const price = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const signClass = (v) => (typeof v === "number" ? (v > 0 ? "up" : v < 0 ? "down" : "") : "");

function elapsed(job) {
  const start = Date.parse(job.started_at || job.created_at || "");
  if (Number.isNaN(start)) return "";
  const end = job.finished_at ? Date.parse(job.finished_at) : Date.now();
  const seconds = Math.max(0, Math.round((end - start) / 1000));
  const m = Math.floor(seconds / 60);
  return m ? `${m} min ${seconds % 60} s` : `${seconds} s`;
}

// --------------------------------------------------------------------------- the form

const form = $("bt-form");

function symbolList(text) {
  return [...new Set(String(text || "").split(/[\s,;]+/).map((s) => s.trim().toUpperCase()).filter(Boolean))];
}

function addSymbols(symbols) {
  const merged = [...new Set([...symbolList(form.elements.namedItem("symbols").value), ...symbols])];
  form.elements.namedItem("symbols").value = merged.join(", ");
}

function setDefaults() {
  const { first, last } = boot.bars || {};
  if (last) form.elements.namedItem("end_date").value = last;
  if (first) form.elements.namedItem("start_date").value = first;
}

async function loadPatterns() {
  const box = $("bt-patterns");
  try {
    const { data } = await api("/api/pattern-definitions", { params: { enabled: true } });
    const names = data.map((d) => d.name).filter(Boolean);
    box.replaceChildren(
      ...names.map((name) =>
        h("label", { className: "check" }, h("input", { type: "checkbox", name: "patterns", value: name, checked: true }), ` ${name}`),
      ),
    );
    if (!names.length) box.replaceChildren(h("span", { className: "muted" }, "No pattern definitions are stored."));
  } catch (error) {
    box.replaceChildren();
    showError(box, error, loadPatterns);
  }
}

function checkAll(on) {
  for (const input of form.querySelectorAll('input[name="patterns"]')) input.checked = on;
}

async function useWatchlist() {
  try {
    const { data } = await api("/api/user/watchlist");
    if (!data.symbols.length) toast("Your watchlist is empty: add symbols on the Live page.");
    addSymbols(data.symbols);
  } catch (error) {
    toast(`Watchlist: ${error.message}`);
  }
}

let searchTimer = null;
function searchSymbols() {
  clearTimeout(searchTimer);
  const q = $("bt-search").value.trim();
  if (!q) return;
  searchTimer = setTimeout(async () => {
    try {
      const { data } = await api("/api/symbols", { params: { q, limit: 10 } });
      $("bt-search-list").replaceChildren(...data.map((item) => h("option", { value: item.symbol }, item.name || "")));
    } catch {
      // The datalist keeps its last suggestions; typing the ticker still works.
    }
  }, 200);
}

function addSearched() {
  const symbol = normaliseSymbol($("bt-search").value);
  if (!symbol) {
    showFieldErrors(form, { symbols: "Type a ticker such as AAPL to add it." });
    return;
  }
  addSymbols([symbol]);
  $("bt-search").value = "";
}

function clearFieldErrors(target) {
  for (const p of target.querySelectorAll(".field-error")) p.textContent = "";
  for (const input of target.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
}

function showFieldErrors(target, errors) {
  clearFieldErrors(target);
  let first = null;
  for (const [field, message] of Object.entries(errors)) {
    const p = target.querySelector(`.field-error[data-field="${field}"]`);
    if (p) p.textContent = message;
    const input = target.elements.namedItem(field);
    const element = input instanceof RadioNodeList ? input[0] : input;
    if (element) {
      element.setAttribute("aria-invalid", "true");
      first = first || element;
    }
  }
  first?.focus();
}

/** The 400 of the API, beside its field: ``parameters.stop_loss_pct`` shows at stop_loss_pct. */
function showApiError(target, errorBox, error, known) {
  if (!(error instanceof ApiError) || error.status !== 400) {
    clearFieldErrors(target);
    showError(errorBox, error);
    return;
  }
  const text = (error.serverMessage || error.message).replace(/\bparameters\./g, "");
  const field = error.field ? error.field.replace(/^parameters\./, "").split(/[.[]/)[0] : null;
  const { errors, rest } = fieldErrors({ ...error, serverMessage: text, field }, known);
  showFieldErrors(target, errors);
  showError(errorBox, rest && !Object.keys(errors).length ? new ApiError(rest, { status: 400 }) : null);
}

function formBody() {
  const number = (name) => {
    const raw = form.elements.namedItem(name).value;
    return raw === "" ? null : Number(raw);
  };
  const parameters = {};
  for (const name of PARAMETERS) {
    const value = number(name);
    parameters[name] = value !== null && PERCENT_FIELDS.includes(name) ? Number((value / 100).toPrecision(12)) : value;
  }
  return {
    symbols: symbolList(form.elements.namedItem("symbols").value),
    patterns: [...form.querySelectorAll('input[name="patterns"]:checked')].map((input) => input.value),
    start_date: form.elements.namedItem("start_date").value,
    end_date: form.elements.namedItem("end_date").value,
    parameters,
  };
}

async function submitBacktest(event) {
  event.preventDefault();
  const body = formBody();
  const local = {};
  if (!body.symbols.length) local.symbols = "Add at least one symbol.";
  else if (body.symbols.length > MAX_SYMBOLS) local.symbols = `At most ${MAX_SYMBOLS} symbols (${body.symbols.length} given).`;
  else if (body.symbols.some((s) => !normaliseSymbol(s))) local.symbols = `Not a ticker: ${body.symbols.find((s) => !normaliseSymbol(s))}.`;
  if (!body.patterns.length) local.patterns = "Choose at least one pattern.";
  if (Object.keys(local).length) {
    showFieldErrors(form, local);
    return;
  }
  const button = $("bt-submit");
  button.disabled = true;
  try {
    const { data } = await api("/api/jobs/backtests", { method: "POST", body });
    clearFieldErrors(form);
    showError($("bt-form-error"), null);
    const job = jobOf(data);
    if (job) jobs.upsert(job, { first: true });
  } catch (error) {
    showApiError(form, $("bt-form-error"), error, ["symbols", "patterns", "start_date", "end_date", ...PARAMETERS]);
  } finally {
    button.disabled = false;
  }
}

async function submitDataLoad(event) {
  event.preventDefault();
  const target = event.currentTarget;
  const symbols = symbolList(target.elements.namedItem("symbols").value);
  const body = {
    symbols: symbols.length ? symbols : "universe",
    years: Number(target.elements.namedItem("years").value),
    timeframes: [...target.querySelectorAll('input[name="timeframes"]:checked')].map((input) => input.value),
  };
  const button = $("dl-submit");
  button.disabled = true;
  try {
    const { data } = await api("/api/admin/jobs/data-loads", { method: "POST", body });
    clearFieldErrors(target);
    showError($("dl-form-error"), null);
    const job = jobOf(data);
    if (job) jobs.upsert(job, { first: true });
  } catch (error) {
    showApiError(target, $("dl-form-error"), error, ["symbols", "years", "timeframes"]);
  } finally {
    button.disabled = false;
  }
}

// --------------------------------------------------------------------------- the jobs list

class JobList {
  constructor() {
    this.list = $("bt-jobs");
    this.items = new Map();
    this.everyone = false;
    this.cursor = null;
    setInterval(() => this.tick(), 1000);
  }

  path() {
    return this.everyone ? "/api/admin/jobs" : "/api/jobs";
  }

  async load({ more = false } = {}) {
    try {
      const { data, meta } = await api(this.path(), { params: { cursor: more ? this.cursor : undefined, limit: 20 } });
      showError($("bt-jobs-error"), null);
      if (!more) {
        this.items.clear();
        this.list.replaceChildren();
      }
      for (const raw of data) {
        const job = jobOf(raw);
        if (job) this.upsert(job);
      }
      this.cursor = meta.next_cursor || null;
      $("bt-jobs-more").hidden = !this.cursor;
      this.renderEmpty();
    } catch (error) {
      showError($("bt-jobs-error"), error, () => this.load());
    }
  }

  renderEmpty() {
    $("bt-jobs-empty").hidden = this.items.size > 0;
  }

  /** Put ``job`` in the list (newest first), unless what is shown is already newer. */
  upsert(update, { first = false } = {}) {
    const known = this.items.get(update.id);
    if (known) {
      if (typeof known.job.seq === "number" && typeof update.seq === "number" && update.seq < known.job.seq) return known.job;
      known.job = { ...known.job, ...update };
      this.render(known);
      return known.job;
    }
    if (this.everyone === false && update.user_id !== undefined && boot.user && update.user_id !== boot.user.id) return update;
    const entry = { job: update, element: h("li", { className: "bt-job", dataset: { jobId: update.id } }) };
    this.items.set(update.id, entry);
    if (first) this.list.prepend(entry.element);
    else this.list.append(entry.element);
    this.render(entry);
    this.renderEmpty();
    return entry.job;
  }

  render(entry) {
    const { job, element } = entry;
    const value = job.status === "completed" ? 1 : fraction(job.progress);
    const active = ACTIVE.has(job.status);
    element.dataset.status = job.status;
    const bar = h("div", {
      className: "bt-progress",
      role: "progressbar",
      "aria-valuemin": "0",
      "aria-valuemax": "100",
      "aria-valuenow": String(Math.round(value * 100)),
      "aria-label": `${jobTitle(job)} progress`,
    }, h("span", { className: "bt-progress-fill" }));
    // CSSOM, not a style attribute: the page's Content-Security-Policy allows no inline style.
    bar.firstChild.style.width = `${(value * 100).toFixed(1)}%`;
    const actions = [];
    if (active && (!job.user_id || !boot.user || job.user_id === boot.user.id)) {
      const cancel = h("button", { type: "button", className: "bt-cancel" }, "Cancel");
      cancel.addEventListener("click", () => this.cancel(job.id, cancel));
      actions.push(cancel);
    }
    if (job.status === "completed" && job.kind !== "data_load") {
      const open = h("a", { className: "button-link bt-open", href: `/backtest?job=${encodeURIComponent(job.id)}` }, "View result");
      open.addEventListener("click", (event) => {
        event.preventDefault();
        openResult(job.id, { push: true });
      });
      actions.push(open);
    }
    const detail = [];
    if (active && job.current_symbol) detail.push(h("span", { className: "bt-symbol" }, job.current_symbol));
    if (job.status === "failed" && job.error) detail.push(h("span", { className: "bt-error" }, job.error));
    else if (job.message && job.kind === "data_load") detail.push(h("span", { className: "muted" }, job.message));
    element.replaceChildren(
      h(
        "div",
        { className: "bt-job-head" },
        h("strong", { className: "bt-job-title" }, jobTitle(job)),
        job.username ? h("span", { className: "muted" }, ` · ${job.username}`) : "",
        h("span", { className: `bt-status bt-status-${job.status}` }, job.status),
      ),
      bar,
      h(
        "div",
        { className: "bt-job-foot" },
        h("span", { className: "num bt-percent" }, `${Math.round(value * 100)}%`),
        ...detail,
        h("span", { className: "muted bt-elapsed num" }, elapsed(job)),
        ...actions,
      ),
    );
  }

  tick() {
    for (const entry of this.items.values()) {
      if (ACTIVE.has(entry.job.status)) {
        const span = entry.element.querySelector(".bt-elapsed");
        if (span) span.textContent = elapsed(entry.job);
      }
    }
  }

  async cancel(id, button) {
    button.disabled = true;
    try {
      const { data } = await api(`/api/jobs/${encodeURIComponent(id)}/cancel`, { method: "POST" });
      const job = jobOf(data);
      if (job) this.upsert(job);
    } catch (error) {
      button.disabled = false;
      toast(`Cancel: ${error.message}`);
    }
  }
}

const jobs = new JobList();

// --------------------------------------------------------------------------- the result view

let chart = null;
let trades = [];
let sort = { field: "entry_date", sign: 1 };
let page = 0;
let openId = null;

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/** ``#rrggbb`` with an alpha, as the chart library reads colours (it has no color-mix). */
function withAlpha(hex, alpha) {
  const match = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
  if (!match) return hex;
  const [r, g, b] = match.slice(1).map((part) => parseInt(part, 16));
  return `rgba(${r}, ${g}, ${b}, ${alpha})`;
}

function drawEquity(curve) {
  const container = $("bt-equity");
  if (!chart) {
    chart = createChart(container, {
      autoSize: true,
      layout: { attributionLogo: false },
      rightPriceScale: { borderVisible: false },
      timeScale: { borderVisible: false },
    });
    chart.equity = chart.addSeries(LineSeries, { lineWidth: 2, priceLineVisible: false });
    // Filled between 0 and the (negative) drawdown: the shading hangs from its own zero line.
    chart.drawdown = chart.addSeries(BaselineSeries, {
      priceScaleId: "drawdown",
      baseValue: { type: "price", price: 0 },
      lineWidth: 1,
      priceLineVisible: false,
      lastValueVisible: false,
      priceFormat: { type: "percent" },
    });
    chart.priceScale("drawdown").applyOptions({ scaleMargins: { top: 0.75, bottom: 0 } });
    chart.equity.priceScale().applyOptions({ scaleMargins: { top: 0.05, bottom: 0.3 } });
    const theme = () => {
      chart.applyOptions({
        layout: { background: { type: ColorType.Solid, color: cssVar("--panel") }, textColor: cssVar("--muted") },
        grid: { vertLines: { color: cssVar("--grid") }, horzLines: { color: cssVar("--grid") } },
      });
      chart.equity.applyOptions({ color: cssVar("--accent") });
      const down = cssVar("--down");
      chart.drawdown.applyOptions({
        topLineColor: down,
        topFillColor1: withAlpha(down, 0),
        topFillColor2: withAlpha(down, 0),
        bottomLineColor: down,
        bottomFillColor1: withAlpha(down, 0.15),
        bottomFillColor2: withAlpha(down, 0.5),
      });
    };
    document.addEventListener("themechange", theme);
    theme();
    container.equityChart = chart; // a handle for the browser tests and the console
  }
  let peak = -Infinity;
  const equity = [];
  const drawdown = [];
  for (const [time, value] of curve) {
    peak = Math.max(peak, value);
    equity.push({ time, value });
    drawdown.push({ time, value: peak > 0 ? -((peak - value) / peak) * 100 : 0 });
  }
  chart.equity.setData(equity);
  chart.drawdown.setData(drawdown);
  chart.timeScale().fitContent();
}

function tile(label, value, cls = "") {
  return h("div", { className: "bt-tile" }, h("span", { className: "bt-tile-label" }, label), h("span", { className: `bt-tile-value num ${cls}` }, value));
}

function renderResult(job) {
  const results = job.results || {};
  const m = results.metrics || {};
  const params = job.params || {};
  $("bt-result-title").textContent = `Result: ${jobTitle(job)}`;
  const p = params.parameters || {};
  $("bt-result-summary").textContent = [
    params.start_date && params.end_date ? `${params.start_date} to ${params.end_date}` : "",
    typeof p.initial_capital === "number" ? `capital ${money.format(p.initial_capital)}` : "",
    typeof p.stop_loss_pct === "number" ? `stop ${plainPct(p.stop_loss_pct)}` : "",
    typeof p.take_profit_pct === "number" ? `target ${plainPct(p.take_profit_pct)}` : "",
    typeof p.max_hold_days === "number" ? `hold ≤ ${p.max_hold_days} days` : "",
  ].filter(Boolean).join(" · ");
  $("bt-tiles").replaceChildren(
    tile("Total return", pct(m.total_return), signClass(m.total_return)),
    tile("Annual return", pct(m.annualized_return), signClass(m.annualized_return)),
    tile("Trades", typeof m.total_trades === "number" ? String(m.total_trades) : "—"),
    tile("Win rate", plainPct(m.win_rate)),
    tile("Profit factor", m.profit_factor === null && m.losing_trades === 0 && m.total_trades ? "∞ (no loss)" : ratio(m.profit_factor)),
    tile("Max drawdown", plainPct(m.max_drawdown), m.max_drawdown ? "down" : ""),
    tile("Sharpe", ratio(m.sharpe_ratio)),
    tile("Exposure", plainPct(m.exposure)),
  );
  drawEquity(results.equity_curve || []);
  const perPattern = Object.entries(results.pattern_metrics || {}).sort(([a], [b]) => a.localeCompare(b));
  $("bt-pattern-rows").replaceChildren(
    ...perPattern.map(([name, x]) =>
      h(
        "tr",
        {},
        h("th", { scope: "row" }, name),
        h("td", { className: "num" }, String(x.total_trades ?? "—")),
        h("td", { className: "num" }, plainPct(x.win_rate)),
        h("td", { className: "num up" }, pct(x.avg_win)),
        h("td", { className: "num down" }, pct(x.avg_loss)),
        h("td", { className: "num" }, ratio(x.profit_factor)),
        h("td", { className: `num ${signClass(x.total_return)}` }, pct(x.total_return, 2)),
        h("td", { className: "num" }, plainPct(x.max_drawdown)),
        h("td", { className: "num" }, ratio(x.sharpe_ratio)),
      ),
    ),
  );
  if (!perPattern.length) $("bt-pattern-rows").replaceChildren(h("tr", {}, h("td", { colSpan: 9, className: "muted" }, "No pattern was traded.")));
  trades = results.trades || [];
  page = 0;
  $("bt-csv").href = `/api/jobs/${encodeURIComponent(job.id)}/trades?format=csv`;
  renderTrades();
  const total = results.trades_total;
  if (typeof total === "number" && total > trades.length) {
    $("bt-page").dataset.note = `${trades.length} of ${total} trades shown; the CSV has them all.`;
  } else {
    delete $("bt-page").dataset.note;
  }
}

function renderTrades() {
  const { field, sign } = sort;
  const rows = [...trades].sort((a, b) => {
    const x = a[field];
    const y = b[field];
    if (x === y) return 0;
    if (x === null || x === undefined) return 1;
    if (y === null || y === undefined) return -1;
    return (x < y ? -1 : 1) * sign;
  });
  const pages = Math.max(1, Math.ceil(rows.length / TRADES_PER_PAGE));
  page = Math.min(page, pages - 1);
  const shown = rows.slice(page * TRADES_PER_PAGE, (page + 1) * TRADES_PER_PAGE);
  $("bt-trade-rows").replaceChildren(
    ...shown.map((t) =>
      h(
        "tr",
        {},
        h("th", { scope: "row" }, h("a", { href: `/symbols/${encodeURIComponent(t.symbol)}` }, t.symbol)),
        h("td", {}, t.pattern || "—"),
        h("td", { className: "mono" }, t.entry_date || "—"),
        h("td", { className: "num" }, typeof t.entry_price === "number" ? price.format(t.entry_price) : "—"),
        h("td", { className: "mono" }, t.exit_date || "—"),
        h("td", { className: "num" }, typeof t.exit_price === "number" ? price.format(t.exit_price) : "—"),
        h("td", {}, (t.exit_reason || "—").replaceAll("_", " ")),
        h("td", { className: `num ${signClass(t.return)}` }, pct(t.return, 2)),
      ),
    ),
  );
  if (!rows.length) $("bt-trade-rows").replaceChildren(h("tr", {}, h("td", { colSpan: 8, className: "muted" }, "No trades: no detection of the chosen patterns was followed by a session in the period.")));
  const note = $("bt-page").dataset.note;
  $("bt-page").textContent = `Page ${page + 1} of ${pages} · ${rows.length} trades${note ? ` · ${note}` : ""}`;
  $("bt-prev").disabled = page === 0;
  $("bt-next").disabled = page >= pages - 1;
  for (const th of document.querySelectorAll("#bt-trades th[data-sort]")) {
    th.setAttribute("aria-sort", th.dataset.sort === field ? (sign > 0 ? "ascending" : "descending") : "none");
  }
}

function setUpTradeTable() {
  for (const th of document.querySelectorAll("#bt-trades th[data-sort]")) {
    const button = h("button", { type: "button", className: "sort" }, th.textContent);
    th.replaceChildren(button);
    button.addEventListener("click", () => {
      const field = th.dataset.sort;
      sort = { field, sign: sort.field === field ? -sort.sign : 1 };
      page = 0;
      renderTrades();
    });
  }
  $("bt-prev").addEventListener("click", () => {
    page = Math.max(0, page - 1);
    renderTrades();
  });
  $("bt-next").addEventListener("click", () => {
    page += 1;
    renderTrades();
  });
}

async function openResult(id, { push = false } = {}) {
  openId = id;
  if (push) writeQuery({ job: id }, { push: true });
  const section = $("bt-result");
  section.hidden = false;
  try {
    const { data } = await api(`/api/jobs/${encodeURIComponent(id)}`);
    const job = jobOf(data);
    if (openId !== id || !job) return;
    showError($("bt-result-error"), null);
    if (job.status !== "completed") {
      $("bt-result-title").textContent = `Result: ${jobTitle(job)}`;
      $("bt-result-summary").textContent =
        job.status === "failed" ? `This job failed: ${job.error || "no reason given"}.` : job.status === "cancelled" ? "This job was cancelled." : "Still running: the result opens here when it finishes.";
      section.dataset.state = job.status;
      return;
    }
    section.dataset.state = "completed";
    renderResult(job);
    section.scrollIntoView({ block: "start", behavior: "smooth" });
  } catch (error) {
    showError($("bt-result-error"), error, () => openResult(id));
  }
}

function closeResult(event) {
  event?.preventDefault();
  openId = null;
  $("bt-result").hidden = true;
  writeQuery({ job: null }, { push: true });
}

// --------------------------------------------------------------------------- wiring

live.addEventListener("job", (event) => {
  const job = jobOf(event.detail.message);
  if (!job) return;
  const shown = jobs.upsert(job, { first: true });
  if (event.detail.type === "job_finished" && openId === job.id) openResult(job.id);
  else if (event.detail.type === "job_finished" && shown.status === "completed" && !openId) {
    toast(`${jobTitle(shown)} finished.`);
  }
});
// A reconnecting page gets the current state from the API (events missed while away).
live.addEventListener("state", (event) => {
  if (event.detail.name === "live") jobs.load();
});
window.addEventListener("popstate", () => {
  const { job } = readQuery(["job"]);
  if (job) openResult(job);
  else {
    openId = null;
    $("bt-result").hidden = true;
  }
});

form.addEventListener("submit", submitBacktest);
$("bt-add").addEventListener("click", addSearched);
$("bt-search").addEventListener("input", searchSymbols);
$("bt-search").addEventListener("keydown", (event) => {
  if (event.key === "Enter") {
    event.preventDefault();
    addSearched();
  }
});
$("bt-watchlist").addEventListener("click", useWatchlist);
$("bt-all").addEventListener("click", () => checkAll(true));
$("bt-none").addEventListener("click", () => checkAll(false));
$("bt-close").addEventListener("click", closeResult);
$("bt-jobs-more").addEventListener("click", () => jobs.load({ more: true }));
if (isAdmin) {
  $("dl-form")?.addEventListener("submit", submitDataLoad);
  $("bt-everyone")?.addEventListener("change", (event) => {
    jobs.everyone = event.currentTarget.checked;
    jobs.load();
  });
}
setDefaults();
setUpTradeTable();
loadPatterns();
jobs.load();
const initial = readQuery(["job"]).job;
if (initial) openResult(initial);
