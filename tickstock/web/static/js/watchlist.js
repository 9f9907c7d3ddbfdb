// The watchlist: saved through PUT /api/user/watchlist, searched over /api/symbols?q=, followed
// live over Socket.IO; each row counts the events received since the page opened.

import { api, ApiError, boot, showError, suggestion } from "./api.js";
import { h, normaliseSymbol } from "./format.js";

const SEARCH_DELAY_MS = 150;

export class Watchlist extends EventTarget {
  constructor({ form, input, datalist, tbody, status, error, allToggle }) {
    super();
    this.form = form;
    this.input = input;
    this.datalist = datalist;
    this.tbody = tbody;
    this.status = status;
    this.error = error;
    this.allToggle = allToggle;
    this.symbols = [];
    this.counts = new Map();
    this.loaded = false;
    this.saving = Promise.resolve();
    this.searchTimer = null;
    this.searchAbort = null;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.addFromInput();
    });
    input.addEventListener("input", () => this.scheduleSearch());
    allToggle.addEventListener("change", () => this.emit());
  }

  emit() {
    this.dispatchEvent(new CustomEvent("change", { detail: { symbols: this.symbols, all: this.allToggle.checked } }));
  }

  focusSearch() {
    this.input.focus();
    this.input.select();
  }

  async load() {
    this.status.hidden = false;
    this.status.textContent = "Loading your watchlist…";
    try {
      const { data } = await api("/api/user/watchlist");
      this.symbols = Array.isArray(data?.symbols) ? data.symbols : [];
      this.loaded = true;
      showError(this.error, null);
      this.render();
      this.emit();
    } catch (error) {
      this.status.hidden = true;
      showError(this.error, error, () => this.load());
    }
  }

  // ---- search

  scheduleSearch() {
    clearTimeout(this.searchTimer);
    this.searchTimer = setTimeout(() => this.search(), SEARCH_DELAY_MS);
  }

  async search() {
    const q = this.input.value.trim();
    this.searchAbort?.abort();
    if (!q) {
      this.datalist.replaceChildren();
      return;
    }
    const controller = new AbortController();
    this.searchAbort = controller;
    try {
      const { data } = await api("/api/symbols", { params: { q, limit: 8 }, signal: controller.signal });
      this.datalist.replaceChildren(
        ...data.map((item) => h("option", { value: item.symbol }, `${item.symbol} — ${item.name}`)),
      );
    } catch (error) {
      // Suggestions are a convenience: a failed search leaves the typed text usable.
      if (error?.name !== "AbortError" && !(error instanceof ApiError)) console.warn(error);
    }
  }

  // ---- add / remove

  addFromInput() {
    // "AAPL — Apple Inc." from a suggestion, or a typed ticker.
    const raw = this.input.value.split(/\s+[—-]\s+/)[0];
    const symbol = normaliseSymbol(raw);
    if (!symbol) {
      this.showFormError(raw.trim() ? `"${raw.trim()}" is not a valid symbol (like AAPL or BRK.B).` : "Type a symbol to add.");
      return;
    }
    if (this.symbols.includes(symbol)) {
      this.showFormError(`${symbol} is already on your watchlist.`);
      return;
    }
    this.save([...this.symbols, symbol], { added: symbol });
  }

  remove(symbol) {
    this.save(
      this.symbols.filter((s) => s !== symbol),
      { removed: symbol },
    );
  }

  showFormError(message) {
    this.error.hidden = false;
    this.error.replaceChildren(message);
    this.input.setAttribute("aria-invalid", "true");
  }

  clearFormError() {
    showError(this.error, null);
    this.input.removeAttribute("aria-invalid");
  }

  save(next, { added, removed } = {}) {
    this.saving = this.saving.then(async () => {
      this.form.setAttribute("aria-busy", "true");
      try {
        const { data } = await api("/api/user/watchlist", { method: "PUT", body: { symbols: next } });
        this.symbols = data.symbols;
        this.clearFormError();
        if (added) {
          this.input.value = "";
          this.datalist.replaceChildren();
        }
        this.render();
        this.emit();
        if (removed) this.input.focus();
      } catch (error) {
        if (error instanceof ApiError && error.code === "unknown_symbols") {
          this.showFormError(`${added || "That symbol"} is not a known symbol.`);
        } else {
          showError(this.error, error, () => this.save(next, { added, removed }));
        }
      } finally {
        this.form.removeAttribute("aria-busy");
      }
    });
    return this.saving;
  }

  // ---- live counts

  count(symbol) {
    if (!this.counts.has(symbol) && !this.symbols.includes(symbol)) return;
    this.counts.set(symbol, (this.counts.get(symbol) || 0) + 1);
    const row = this.tbody.querySelector(`tr[data-symbol="${CSS.escape(symbol)}"]`);
    if (!row) return;
    row.querySelector(".count").textContent = String(this.counts.get(symbol));
    row.classList.remove("bump");
    // Restart the animation.
    void row.offsetWidth;
    row.classList.add("bump");
  }

  markSubscribed(isSubscribed) {
    for (const row of this.tbody.rows) {
      const on = isSubscribed(row.dataset.symbol);
      row.dataset.subscribed = String(on);
      row.querySelector(".live-dot").title = on ? "receiving live events" : "not subscribed yet";
    }
  }

  render() {
    const rows = this.symbols.map((symbol) =>
      h(
        "tr",
        { dataset: { symbol, subscribed: "false" } },
        h(
          "th",
          { scope: "row" },
          h("span", { className: "live-dot", "aria-hidden": "true" }),
          h("a", { href: `/symbols/${encodeURIComponent(symbol)}`, className: "wl-symbol", dataset: { symbol } }, symbol),
        ),
        h("td", { className: "num" }, h("span", { className: "count" }, String(this.counts.get(symbol) || 0)), h("span", { className: "up", "aria-hidden": "true" }, " ▲")),
        h(
          "td",
          { className: "actions" },
          h("button", {
            type: "button",
            className: "icon-button",
            "aria-label": `Chart ${symbol} below`,
            title: `Chart ${symbol} below`,
            onclick: () => this.dispatchEvent(new CustomEvent("select", { detail: { symbol } })),
          }, "◫"),
          h("button", {
            type: "button",
            className: "icon-button",
            "aria-label": `Remove ${symbol}`,
            title: `Remove ${symbol}`,
            onclick: () => this.remove(symbol),
          }, "×"),
        ),
      ),
    );
    this.tbody.replaceChildren(...rows);
    this.status.hidden = this.symbols.length > 0;
    const first = (boot.suggested_symbols || ["AAPL"]).slice(0, 3).join(", ");
    this.status.textContent = `Your watchlist is empty. Add a symbol (e.g. ${first}) to follow its patterns live. ${suggestion()}`.trim();
  }
}
