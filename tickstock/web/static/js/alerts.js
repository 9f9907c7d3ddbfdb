// The Alerts page: the inbox (unread first, each part newest first; unread highlighted, mark
// read, filters, load more, live alerts added as they arrive), the browser's opt-ins, and the rules
// with their editor.

import { alertPrefs, describeAlert } from "./alerting.js";
import { api, showError } from "./api.js";
import { startShell, toast } from "./app.js";
import { formatConfidence, h, normaliseSymbol, readQuery, timeElement, writeQuery } from "./format.js";
import { RuleEditor } from "./rules.js";

const PAGE_SIZE = 50;

const { live, bell } = startShell();
const $ = (id) => document.getElementById(id);

// --------------------------------------------------------------------------- inbox

const inbox = {
  cursor: null,
  loading: null,
  ids: new Set(),
  filters: { unread: false, rule_id: "", symbol: "" },

  readFilters() {
    const q = readQuery(["unread", "rule_id", "symbol"]);
    this.filters = {
      unread: q.unread === "true",
      rule_id: /^\d+$/.test(q.rule_id || "") ? q.rule_id : "",
      symbol: normaliseSymbol(q.symbol) || "",
    };
    $("filter-unread").checked = this.filters.unread;
    $("filter-symbol").value = this.filters.symbol;
    // The rule options arrive with the rules; the value is applied then too.
    $("filter-rule").dataset.wanted = this.filters.rule_id;
    $("filter-rule").value = this.filters.rule_id;
  },

  onFilterChange() {
    const raw = $("filter-symbol").value.trim();
    const symbol = raw ? normaliseSymbol(raw) : "";
    $("filter-symbol").setAttribute("aria-invalid", String(symbol === null));
    if (symbol === null) return;
    this.filters = {
      unread: $("filter-unread").checked,
      rule_id: $("filter-rule").value,
      symbol,
    };
    $("filter-rule").dataset.wanted = this.filters.rule_id;
    writeQuery({ unread: this.filters.unread ? "true" : "", rule_id: this.filters.rule_id, symbol });
    this.load({ reset: true });
  },

  params(cursor) {
    return {
      order: "unread_first",
      unread: this.filters.unread ? "true" : "",
      rule_id: this.filters.rule_id,
      symbol: this.filters.symbol,
      limit: PAGE_SIZE,
      cursor: cursor || "",
    };
  },

  async load({ reset = false } = {}) {
    const cursor = reset ? null : this.cursor;
    const status = $("inbox-status");
    status.hidden = false;
    status.textContent = reset || !cursor ? "Loading your alerts…" : "Loading more…";
    $("load-more").disabled = true;
    const request = api("/api/user/alerts", { params: this.params(cursor) });
    this.loading = request;
    try {
      const { data, meta } = await request;
      if (this.loading !== request) return;
      showError($("inbox-error"), null);
      if (reset || !cursor) {
        $("inbox-rows").replaceChildren();
        this.ids.clear();
      }
      for (const alert of data) this.append(alert);
      this.cursor = meta.next_cursor || null;
      $("load-more").hidden = !this.cursor;
      if (typeof meta.unread === "number") bell.set(meta.unread);
      this.renderStatus();
    } catch (error) {
      if (this.loading !== request) return;
      status.hidden = true;
      showError($("inbox-error"), error, () => this.load({ reset: !cursor }));
    } finally {
      if (this.loading === request) this.loading = null;
      $("load-more").disabled = false;
    }
  },

  renderStatus() {
    const status = $("inbox-status");
    const count = $("inbox-rows").rows.length;
    const filtered = this.filters.unread || this.filters.rule_id || this.filters.symbol;
    status.hidden = count > 0;
    status.textContent = filtered
      ? "No alerts match the filters."
      : "No alerts yet. Create a rule and tickstock tells you here when it matches.";
  },

  matches(alert) {
    const { unread, rule_id: ruleId, symbol } = this.filters;
    if (unread && alert.read_at) return false;
    if (ruleId && String(alert.rule_id) !== ruleId) return false;
    if (symbol && describeAlert(alert).symbol !== symbol) return false;
    return true;
  },

  row(alert) {
    const { symbol, what, confidence, tier } = describeAlert(alert);
    const unread = !alert.read_at;
    const markButton = unread
      ? h("button", { type: "button", className: "mark-read", "aria-label": `Mark ${alert.rule_name} ${symbol} read` }, "Mark read")
      : "";
    if (markButton) markButton.addEventListener("click", () => this.markRead([alert.id]));
    return h(
      "tr",
      {
        className: unread ? "unread" : "",
        dataset: { alertId: String(alert.id), ruleId: String(alert.rule_id ?? ""), symbol },
      },
      h("td", {}, unread ? h("span", { className: "unread-dot", title: "unread" }, h("span", { className: "sr-only" }, "unread")) : ""),
      h("td", { className: "time" }, timeElement(alert.event?.timestamp || alert.created_at, { withDate: true })),
      h("td", { className: "rule" }, alert.rule_name || "—"),
      h("td", { className: "sym" }, symbol ? h("a", { href: `/symbols/${encodeURIComponent(symbol)}` }, symbol) : "—"),
      h("td", { className: "what" }, what),
      h("td", { className: "num" }, confidence === null ? "" : formatConfidence(confidence)),
      h("td", { className: "tier" }, tier),
      h("td", { className: "actions" }, markButton),
    );
  },

  append(alert) {
    if (this.ids.has(alert.id)) return;
    this.ids.add(alert.id);
    $("inbox-rows").append(this.row(alert));
  },

  /** A live alert: on top when it matches the filters. */
  addLive(alert) {
    if (this.ids.has(alert.id)) return;
    const full = { ...alert, symbol: alert.event?.data?.symbol || "", read_at: null };
    if (!this.matches(full)) return;
    this.ids.add(alert.id);
    const row = this.row(full);
    row.classList.add("flash");
    $("inbox-rows").prepend(row);
    this.renderStatus();
  },

  /** Marked rows stay where they are (un-highlighted) until the list is loaded again, so nothing
   * jumps under the pointer; with "Unread only" they leave the list. */
  async markRead(ids) {
    const body = ids === "all" ? { all: true } : { ids };
    try {
      const { data } = await api("/api/user/alerts/read", { method: "POST", body });
      const marked = new Set((data.marked || []).map(String));
      for (const row of [...$("inbox-rows").rows]) {
        if (ids !== "all" && !marked.has(row.dataset.alertId)) continue;
        if (this.filters.unread) {
          row.remove();
          this.ids.delete(Number(row.dataset.alertId));
          this.ids.delete(row.dataset.alertId);
          continue;
        }
        row.classList.remove("unread");
        row.cells[0].replaceChildren();
        row.querySelector(".mark-read")?.remove();
      }
      if (typeof data.unread === "number") bell.set(data.unread);
      this.renderStatus();
    } catch (error) {
      showError($("inbox-error"), error, () => this.markRead(ids));
    }
  },
};

bell.addEventListener("change", (event) => {
  $("inbox-unread").textContent = String(event.detail.unread);
  $("mark-all-read").disabled = event.detail.unread === 0;
});
$("inbox-unread").textContent = String(bell.count);

$("filter-unread").addEventListener("change", () => inbox.onFilterChange());
$("filter-rule").addEventListener("change", () => inbox.onFilterChange());
$("filter-symbol").addEventListener("change", () => inbox.onFilterChange());
$("inbox-filters").addEventListener("submit", (event) => {
  event.preventDefault();
  inbox.onFilterChange();
});
$("mark-all-read").addEventListener("click", () => inbox.markRead("all"));
$("load-more").addEventListener("click", () => inbox.load());

// --------------------------------------------------------------------------- this browser's opt-ins

function setUpOptions() {
  const notifyBox = $("opt-notify");
  const soundBox = $("opt-sound");
  const status = $("opt-status");
  soundBox.checked = alertPrefs.sound;
  if (!alertPrefs.notificationsSupported()) {
    notifyBox.disabled = true;
    status.textContent = "This browser cannot show notifications.";
  } else {
    notifyBox.checked = alertPrefs.notify;
    if (alertPrefs.notificationPermission() === "denied") {
      status.textContent = "Notifications are blocked for this site in the browser's settings.";
    }
  }
  notifyBox.addEventListener("change", async () => {
    const on = await alertPrefs.setNotify(notifyBox.checked);
    notifyBox.checked = on;
    if (notifyBox.checked !== on || (!on && alertPrefs.notificationPermission() === "denied")) {
      status.textContent = "Notifications are blocked for this site in the browser's settings.";
    } else {
      status.textContent = on ? "Notifications on: shown when this tab is in the background." : "Notifications off.";
    }
  });
  soundBox.addEventListener("change", () => {
    alertPrefs.setSound(soundBox.checked);
    status.textContent = soundBox.checked ? "Sound on: a short beep for each alert." : "Sound off.";
  });
}

setUpOptions();

// --------------------------------------------------------------------------- rules

const editor = new RuleEditor({
  tbody: $("rule-rows"),
  status: $("rules-status"),
  count: $("rules-count"),
  error: $("rules-error"),
  form: $("rule-form"),
  title: $("form-title"),
});

editor.addEventListener("rules", (event) => {
  // The rule filter of the inbox lists the rules (and keeps the chosen one).
  const select = $("filter-rule");
  const wanted = select.dataset.wanted || select.value;
  select.replaceChildren(
    h("option", { value: "" }, "all rules"),
    ...event.detail.rules.map((rule) => h("option", { value: String(rule.id) }, rule.name)),
  );
  if (wanted && ![...select.options].some((o) => o.value === wanted)) {
    select.append(h("option", { value: wanted }, `rule ${wanted} (deleted)`));
  }
  select.value = wanted;
});
// The patterns the producer knows, offered as choices (matched without regard to case).
api("/api/pattern-definitions", { params: { enabled: true } })
  .then(({ data }) => $("pattern-names").replaceChildren(...data.map((d) => h("option", { value: d.name }))))
  .catch(() => {}); // only suggestions: the field works without them

editor.addEventListener("saved", (event) => toast(`Rule "${event.detail.rule.name}" saved.`, { timeout: 3000 }));

live.addEventListener("alert", (event) => {
  inbox.addLive(event.detail);
  editor.fired(event.detail);
});

inbox.readFilters();
editor.load();
inbox.load({ reset: true });
