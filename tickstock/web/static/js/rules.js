// Alert rules: the list (enable/disable, edit, delete with a confirmation) and the form that
// creates or edits one, with the server's field errors shown next to their fields and a preview
// of how often the rule would have matched.

import { api, ApiError, showError } from "./api.js";
import { formatConfidence, h, timeElement, toDate } from "./format.js";

const RULES = "/api/user/alerts/rules";
const OPS = {
  above: "above",
  below: "below",
  crosses_above: "crosses above",
  crosses_below: "crosses below",
};

/** "watchlist", "all symbols" or the list, for the rules table. */
export function describeScope(symbols) {
  if (symbols === "watchlist") return "my watchlist";
  if (symbols === "*") return "all symbols";
  return Array.isArray(symbols) ? symbols.join(", ") : String(symbols);
}

/** What a rule looks for, in a few words. */
export function describeCondition(rule) {
  if (rule.indicator) {
    const { type, op, value } = rule.indicator;
    return `${type} ${OPS[op] || op} ${value}`;
  }
  const parts = [rule.patterns?.length ? rule.patterns.join(", ") : "any pattern"];
  if (rule.tiers?.length) parts.push(rule.tiers.join("/"));
  if (rule.min_confidence) parts.push(`≥ ${formatConfidence(rule.min_confidence)}`);
  return parts.join(" · ");
}

/** When a rule last fired: the time when it was today, else the date and time. */
function lastFired(value) {
  const date = toDate(value);
  const today = date && date.toDateString() === new Date().toDateString();
  return timeElement(value, { withDate: !today });
}

function splitList(text, { upper = false } = {}) {
  return String(text || "")
    .split(upper ? /[\s,;]+/ : /[,;]+/)
    .map((item) => (upper ? item.trim().toUpperCase() : item.trim()))
    .filter(Boolean);
}

/**
 * Field errors of a 400: the server's message is ``"name: ...; indicator.value: ..."`` (the
 * field path first) or names a ``field``. Returns ``{field: message}`` and what names no field.
 */
export function fieldErrors(error, known) {
  const errors = {};
  const rest = [];
  const text = error.serverMessage || error.message || "";
  for (const part of text.split(/;\s+/)) {
    const match = /^([A-Za-z_][\w]*)(?:\.[\w.]+)?:\s*(.+)$/.exec(part.trim());
    const field = match && known.includes(match[1]) ? match[1] : error.field && known.includes(error.field) ? error.field : null;
    if (field) {
      const message = match && match[1] === field ? match[2] : part.trim();
      const sentence = message.charAt(0).toUpperCase() + message.slice(1);
      errors[field] = errors[field] ? `${errors[field]} ${sentence}` : sentence;
    } else if (part.trim()) {
      rest.push(part.trim());
    }
  }
  return { errors, rest: rest.join("; ") };
}

export class RuleEditor extends EventTarget {
  constructor({ tbody, status, count, error, form, title }) {
    super();
    this.tbody = tbody;
    this.status = status;
    this.count = count;
    this.error = error;
    this.form = form;
    this.title = title;
    this.rules = [];
    this.max = null;
    this.editing = null;
    this.el = (name) => form.querySelector(`#${name}`);
    this.fields = [...form.querySelectorAll(".field-error")].map((p) => p.dataset.field);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.save();
    });
    form.querySelectorAll('input[name="scope"]').forEach((radio) => radio.addEventListener("change", () => this.syncControls()));
    this.el("rule-use-indicator").addEventListener("change", () => this.syncControls());
    this.el("rule-preview").addEventListener("click", () => this.preview());
    this.el("rule-cancel").addEventListener("click", () => this.reset());
    document.getElementById("new-rule")?.addEventListener("click", () => {
      this.reset();
      this.el("rule-name").focus();
    });
    this.syncControls();
  }

  emit(name, detail) {
    this.dispatchEvent(new CustomEvent(name, { detail }));
  }

  // ---- the list

  async load() {
    try {
      const { data, meta } = await api(RULES);
      showError(this.error, null);
      this.rules = data;
      this.max = meta.max ?? null;
      this.render();
      this.emit("rules", { rules: this.rules });
    } catch (error) {
      this.status.hidden = true;
      showError(this.error, error, () => this.load());
    }
  }

  render() {
    this.tbody.replaceChildren(...this.rules.map((rule) => this.row(rule)));
    this.status.hidden = this.rules.length > 0;
    this.status.textContent = "No rules yet: create one below.";
    this.count.textContent = this.max ? `${this.rules.length} of ${this.max}` : String(this.rules.length);
    document.getElementById("new-rule").disabled = this.max !== null && this.rules.length >= this.max;
  }

  row(rule) {
    const toggle = h("input", {
      type: "checkbox",
      className: "rule-enabled",
      checked: rule.enabled,
      "aria-label": `Rule ${rule.name} enabled`,
    });
    toggle.addEventListener("change", () => this.setEnabled(rule, toggle));
    const edit = h("button", { type: "button", className: "rule-edit", "aria-label": `Edit rule ${rule.name}` }, "Edit");
    edit.addEventListener("click", () => this.edit(rule));
    const remove = h("button", { type: "button", className: "rule-delete", "aria-label": `Delete rule ${rule.name}` }, "Delete");
    const actions = h("td", { className: "actions" }, edit, " ", remove);
    remove.addEventListener("click", () => this.confirmDelete(rule, actions, remove));
    return h(
      "tr",
      { className: rule.enabled ? "" : "rule-disabled", dataset: { ruleId: String(rule.id), enabled: String(rule.enabled) } },
      h(
        "td",
        { className: "name" },
        h("strong", {}, rule.name),
        h("div", { className: "muted" }, describeCondition(rule)),
        // Over the per-user alert rate: no alerts from it until then (or until it is edited).
        rule.paused
          ? h(
              "div",
              { className: "rule-paused", title: "Too many alerts a minute: it resumes by itself, or when you edit it" },
              `Alerts paused for this rule until ${new Date(rule.paused_until).toLocaleTimeString()}`,
            )
          : null,
      ),
      h("td", { className: "scope", title: describeScope(rule.symbols) }, describeScope(rule.symbols)),
      this.firedCell(rule),
      h("td", {}, toggle),
      actions,
    );
  }

  /** How many alerts the rule has made and when the last one was ("never" until it fires). */
  firedCell(rule) {
    const count = rule.alerts || 0;
    if (!count) return h("td", { className: "fired num muted", dataset: { alerts: "0" } }, "never");
    return h(
      "td",
      { className: "fired num", dataset: { alerts: String(count) } },
      h("span", { className: "fired-count" }, `${count}×`),
      h("div", { className: "muted", title: "the last one" }, lastFired(rule.last_alert_at)),
    );
  }

  /** A live alert from these rules (every rule of the user that matched its event): their counts
   * and last times move on. */
  fired(alert) {
    const ids = alert.rule_ids?.length ? alert.rule_ids : [alert.rule_id];
    for (const rule of this.rules.filter((r) => ids.includes(r.id))) {
      rule.alerts = (rule.alerts || 0) + 1;
      rule.last_alert_at = alert.created_at;
      const row = this.tbody.querySelector(`tr[data-rule-id="${rule.id}"]`);
      row?.querySelector("td.fired")?.replaceWith(this.firedCell(rule));
    }
  }

  async setEnabled(rule, toggle) {
    toggle.disabled = true;
    try {
      const { data } = await api(`${RULES}/${rule.id}`, { method: "PATCH", body: { enabled: toggle.checked } });
      this.replace(data);
    } catch (error) {
      toggle.checked = rule.enabled;
      showError(this.error, error);
    } finally {
      toggle.disabled = false;
    }
  }

  confirmDelete(rule, cell, button) {
    const yes = h("button", { type: "button", className: "rule-delete-confirm" }, "Delete");
    const no = h("button", { type: "button", className: "rule-delete-cancel" }, "Keep");
    const box = h("span", { className: "confirm", role: "group", "aria-label": `Delete rule ${rule.name}?` }, `Delete "${rule.name}"?`, yes, no);
    const before = [...cell.childNodes];
    cell.replaceChildren(box);
    no.addEventListener("click", () => {
      cell.replaceChildren(...before);
      button.focus();
    });
    yes.addEventListener("click", () => this.remove(rule, yes));
    no.focus();
  }

  async remove(rule, button) {
    button.disabled = true;
    try {
      await api(`${RULES}/${rule.id}`, { method: "DELETE" });
      this.rules = this.rules.filter((r) => r.id !== rule.id);
      if (this.editing?.id === rule.id) this.reset();
      this.render();
      this.emit("rules", { rules: this.rules });
    } catch (error) {
      button.disabled = false;
      if (error instanceof ApiError && error.status === 404) {
        this.load();
        return;
      }
      showError(this.error, error);
    }
  }

  replace(rule) {
    const index = this.rules.findIndex((r) => r.id === rule.id);
    if (index >= 0) this.rules[index] = rule;
    else this.rules.push(rule);
    this.render();
    this.emit("rules", { rules: this.rules });
  }

  // ---- the form

  syncControls() {
    const scope = this.form.querySelector('input[name="scope"]:checked')?.value;
    this.el("rule-symbols").disabled = scope !== "list";
    const indicator = this.el("rule-use-indicator").checked;
    for (const id of ["rule-ind-type", "rule-ind-op", "rule-ind-value"]) this.el(id).disabled = !indicator;
    // An indicator rule has no patterns.
    this.el("rule-patterns").disabled = indicator;
  }

  /** The request body from the form (the server validates; nothing is silently dropped). */
  body() {
    const scope = this.form.querySelector('input[name="scope"]:checked')?.value || "watchlist";
    const symbols = scope === "list" ? splitList(this.el("rule-symbols").value, { upper: true }) : scope;
    const indicator = this.el("rule-use-indicator").checked
      ? {
          type: this.el("rule-ind-type").value.trim(),
          op: this.el("rule-ind-op").value,
          value: this.el("rule-ind-value").value === "" ? null : Number(this.el("rule-ind-value").value),
        }
      : null;
    const body = {
      name: this.el("rule-name").value.trim(),
      symbols,
      patterns: indicator ? [] : splitList(this.el("rule-patterns").value),
      tiers: [...this.form.querySelectorAll('input[name="tiers"]:checked')].map((box) => box.value),
      indicator,
      enabled: this.el("rule-enabled").checked,
    };
    const confidence = this.el("rule-confidence").value;
    body.min_confidence = confidence === "" ? 0 : Number(confidence);
    const cooldown = this.el("rule-cooldown").value;
    if (cooldown !== "") body.cooldown_seconds = Number(cooldown);
    return body;
  }

  clearErrors() {
    for (const p of this.form.querySelectorAll(".field-error")) p.textContent = "";
    for (const input of this.form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
    const general = this.el("rule-form-error");
    general.hidden = true;
    general.textContent = "";
  }

  showErrors(error) {
    if (!(error instanceof ApiError) || error.status !== 400) {
      const general = this.el("rule-form-error");
      general.hidden = false;
      general.textContent =
        error instanceof ApiError && error.code === "rule_limit_reached"
          ? `${error.message} Delete a rule to make room.`
          : error instanceof ApiError
            ? error.message
            : "Something went wrong. Please try again.";
      return;
    }
    const { errors, rest } = fieldErrors(error, this.fields);
    let first = null;
    for (const [field, message] of Object.entries(errors)) {
      const p = this.form.querySelector(`.field-error[data-field="${field}"]`);
      p.textContent = message;
      const input = this.inputFor(field);
      if (input) {
        input.setAttribute("aria-invalid", "true");
        first = first || input;
      }
    }
    if (rest || !Object.keys(errors).length) {
      const general = this.el("rule-form-error");
      general.hidden = false;
      general.textContent = rest ? `${rest.charAt(0).toUpperCase()}${rest.slice(1)}` : error.message;
    }
    first?.focus();
  }

  inputFor(field) {
    return {
      name: this.el("rule-name"),
      symbols: this.el("rule-symbols").disabled ? null : this.el("rule-symbols"),
      patterns: this.el("rule-patterns"),
      min_confidence: this.el("rule-confidence"),
      cooldown_seconds: this.el("rule-cooldown"),
      indicator: this.el("rule-ind-type").disabled ? null : this.el("rule-ind-type"),
    }[field];
  }

  async save() {
    this.clearErrors();
    const body = this.body();
    const button = this.el("rule-save");
    button.disabled = true;
    try {
      const { data } = this.editing
        ? await api(`${RULES}/${this.editing.id}`, { method: "PATCH", body })
        : await api(RULES, { method: "POST", body });
      this.replace(data);
      this.reset();
      this.emit("saved", { rule: data });
    } catch (error) {
      this.showErrors(error);
    } finally {
      button.disabled = false;
    }
  }

  async preview() {
    this.clearErrors();
    const result = this.el("preview-result");
    const body = this.body();
    if (!body.name) delete body.name;
    result.textContent = "Counting…";
    try {
      const { data } = await api(`${RULES}/preview`, { method: "POST", body });
      const n = Number(data.matches) || 0;
      result.textContent = `Would have matched ${n} event${n === 1 ? "" : "s"} in the last ${data.days || 30} days.`;
      result.dataset.matches = String(n);
    } catch (error) {
      result.textContent = "";
      this.showErrors(error);
    }
  }

  edit(rule) {
    this.reset();
    this.editing = rule;
    this.title.textContent = `Edit rule: ${rule.name}`;
    this.el("rule-save").textContent = "Save changes";
    this.el("rule-cancel").hidden = false;
    this.el("rule-id").value = String(rule.id);
    this.el("rule-name").value = rule.name;
    const scope = rule.symbols === "watchlist" || rule.symbols === "*" ? rule.symbols : "list";
    this.form.querySelector(`input[name="scope"][value="${scope}"]`).checked = true;
    this.el("rule-symbols").value = Array.isArray(rule.symbols) ? rule.symbols.join(", ") : "";
    this.el("rule-patterns").value = (rule.patterns || []).join(", ");
    for (const box of this.form.querySelectorAll('input[name="tiers"]')) box.checked = (rule.tiers || []).includes(box.value);
    this.el("rule-confidence").value = String(rule.min_confidence ?? 0);
    this.el("rule-use-indicator").checked = Boolean(rule.indicator);
    this.el("rule-ind-type").value = rule.indicator?.type || "";
    this.el("rule-ind-op").value = rule.indicator?.op || "above";
    this.el("rule-ind-value").value = rule.indicator ? String(rule.indicator.value) : "";
    this.el("rule-cooldown").value = String(rule.cooldown_seconds ?? 300);
    this.el("rule-enabled").checked = rule.enabled;
    this.syncControls();
    this.form.scrollIntoView({ block: "nearest" });
    this.el("rule-name").focus();
  }

  reset() {
    this.editing = null;
    this.form.reset();
    this.el("rule-id").value = "";
    this.title.textContent = "New rule";
    this.el("rule-save").textContent = "Create rule";
    this.el("rule-cancel").hidden = true;
    this.el("preview-result").textContent = "";
    this.clearErrors();
    this.syncControls();
  }
}
