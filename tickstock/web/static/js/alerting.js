// Alerts in the page shell (every page): the bell with the unread count, a toast per live alert,
// the opt-in browser notification and sound, and the banner for a critical alert or an unhealthy
// producer.

import { api } from "./api.js";
import { formatConfidence, formatNumber, h, timeElement } from "./format.js";

const NOTIFY_KEY = "tickstock.alerts.notify";
const SOUND_KEY = "tickstock.alerts.sound";
const TOAST_MS = 8000;
const MAX_TOASTS = 5;
const MAX_CRITICAL_BANNERS = 3;
const SOUND_GAP_MS = 1000;
const HEALTHY = new Set(["ok", "healthy", "up", "running", "started"]);
// Other tabs of this browser hear about "marked read" and keep their bell right.
const CHANNEL_NAME = "tickstock.alerts";

// --------------------------------------------------------------------------- what an alert says

function formatValues(values) {
  return Object.entries(values || {})
    .map(([key, value]) => `${key} ${formatNumber(value)}`)
    .join(", ");
}

/** The parts of an alert a person reads: symbol, what happened, confidence (for patterns). */
export function describeAlert(alert) {
  const event = alert.event || {};
  const data = event.data || {};
  const symbol = alert.symbol || data.symbol || "";
  if (event.type === "indicator_update" || (!data.pattern && data.indicator)) {
    const shown = data.value !== null && data.value !== undefined ? formatNumber(data.value) : formatValues(data.values);
    return { symbol, what: `${data.indicator} ${shown}`.trim(), confidence: null, tier: data.tier || "" };
  }
  const confidence = typeof data.confidence === "number" ? data.confidence : null;
  return { symbol, what: data.pattern || event.type || "event", confidence, tier: data.tier || "" };
}

/** One line: "AAPL Breakout 0.93" or "MSFT rsi 72.4". */
export function alertLine(alert) {
  const { symbol, what, confidence } = describeAlert(alert);
  return [symbol, what, confidence === null ? "" : formatConfidence(confidence)].filter(Boolean).join(" ");
}

// --------------------------------------------------------------------------- stored choices

function readFlag(key) {
  try {
    return localStorage.getItem(key) === "1";
  } catch {
    return false;
  }
}

function writeFlag(key, on) {
  try {
    if (on) localStorage.setItem(key, "1");
    else localStorage.removeItem(key);
  } catch {
    // Private mode: the choice lasts for this page only.
  }
}

// --------------------------------------------------------------------------- sound

let audio = null;
let lastBeep = 0;

/** A short two-tone beep made with WebAudio (no file to load). */
function beep() {
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!Context) return false;
  const now = performance.now();
  if (now - lastBeep < SOUND_GAP_MS) return true;
  lastBeep = now;
  audio = audio || new Context();
  if (audio.state === "suspended") audio.resume().catch(() => {});
  const start = audio.currentTime + 0.01;
  for (const [offset, frequency] of [[0, 880], [0.14, 1175]]) {
    const oscillator = audio.createOscillator();
    const gain = audio.createGain();
    oscillator.type = "sine";
    oscillator.frequency.value = frequency;
    gain.gain.setValueAtTime(0.0001, start + offset);
    gain.gain.exponentialRampToValueAtTime(0.18, start + offset + 0.01);
    gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + 0.12);
    oscillator.connect(gain).connect(audio.destination);
    oscillator.start(start + offset);
    oscillator.stop(start + offset + 0.13);
  }
  return true;
}

// --------------------------------------------------------------------------- preferences

/** The user's opt-ins, remembered in this browser. Turning one on needs a click (a user gesture). */
export const alertPrefs = {
  notificationsSupported() {
    return "Notification" in window;
  },
  notificationPermission() {
    return this.notificationsSupported() ? Notification.permission : "unsupported";
  },
  get notify() {
    return readFlag(NOTIFY_KEY) && this.notificationPermission() === "granted";
  },
  get sound() {
    return readFlag(SOUND_KEY);
  },
  /** Call from a click handler only: asks for permission when needed. Resolves to the new state. */
  async setNotify(on) {
    if (!on) {
      writeFlag(NOTIFY_KEY, false);
      return false;
    }
    if (!this.notificationsSupported()) return false;
    let permission = Notification.permission;
    if (permission === "default") permission = await Notification.requestPermission();
    writeFlag(NOTIFY_KEY, permission === "granted");
    return permission === "granted";
  },
  /** Call from a click handler only (the audio starts on the gesture); plays a sample beep. */
  setSound(on) {
    writeFlag(SOUND_KEY, on);
    if (on) beep();
    return on;
  },
};

// --------------------------------------------------------------------------- the bell

export class Bell extends EventTarget {
  constructor(link) {
    super();
    this.link = link;
    this.badge = link?.querySelector(".bell-count") || null;
    this.count = 0;
    // Entries the shell adds besides unread alerts (finished jobs not yet seen: jobs.js).
    this.extra = 0;
    this.loading = null;
    this.bumpedWhileLoading = false;
    try {
      this.channel = new BroadcastChannel(CHANNEL_NAME);
      this.channel.addEventListener("message", (event) => {
        if (typeof event.data?.unread === "number") this.set(event.data.unread, { share: false });
      });
    } catch {
      this.channel = null;
    }
  }

  /** The unread count as the server knows it (GET /api/auth/me). */
  refresh() {
    if (this.loading) return this.loading;
    this.bumpedWhileLoading = false;
    this.loading = api("/api/auth/me")
      .then(({ meta }) => {
        const unread = Number(meta?.unread_alerts);
        if (Number.isFinite(unread)) this.set(unread, { share: false });
      })
      .catch(() => {
        // The header keeps the last count; the Alerts page shows errors in words.
      })
      .finally(() => {
        this.loading = null;
        // An alert arrived while the count was on its way: it may or may not include it.
        if (this.bumpedWhileLoading) this.refresh();
      });
    return this.loading;
  }

  bump() {
    if (this.loading) this.bumpedWhileLoading = true;
    this.set(this.count + 1, { share: false });
  }

  set(count, { share = true } = {}) {
    this.count = Math.max(0, Math.floor(count));
    this.render();
    if (share) this.channel?.postMessage({ unread: this.count });
    this.dispatchEvent(new CustomEvent("change", { detail: { unread: this.count } }));
  }

  setExtra(extra) {
    this.extra = Math.max(0, Math.floor(extra));
    this.render();
  }

  render() {
    if (!this.link) return;
    const total = this.count + this.extra;
    const text = total > 99 ? "99+" : String(total);
    this.link.dataset.unread = String(this.count);
    this.link.dataset.extra = String(this.extra);
    if (this.badge) {
      this.badge.textContent = text;
      this.badge.hidden = total === 0;
    }
    const jobs = this.extra ? `, ${this.extra} finished job${this.extra === 1 ? "" : "s"}` : "";
    this.link.setAttribute("aria-label", this.count || this.extra ? `Alerts: ${this.count} unread${jobs}` : "Alerts: none unread");
    this.link.title = this.count || this.extra ? `${this.count} unread alert${this.count === 1 ? "" : "s"}${jobs}` : "Alerts";
  }
}

// --------------------------------------------------------------------------- toasts

function removeToast(item) {
  clearTimeout(item._timer);
  item.remove();
}

function armToast(item, timeout) {
  clearTimeout(item._timer);
  item._timer = setTimeout(() => removeToast(item), timeout);
}

/** A toast for a live alert: rule name, symbol, pattern or indicator value, time. It opens the
 * symbol's page (as a feed row does), or the inbox for an alert without a symbol. */
export function alertToast(alert, { timeout = TOAST_MS } = {}) {
  const region = document.getElementById("toasts");
  if (!region) return null;
  const { symbol, what, confidence } = describeAlert(alert);
  const item = h(
    "a",
    {
      className: "toast toast-alert",
      href: symbol ? `/symbols/${encodeURIComponent(symbol)}` : "/alerts",
      dataset: { alertId: String(alert.id), symbol },
    },
    h("span", { className: "toast-title" }, alert.rule_name || "Alert"),
    h(
      "span",
      { className: "toast-body" },
      h("strong", {}, symbol),
      " ",
      what,
      confidence === null ? "" : h("span", { className: "num" }, ` ${formatConfidence(confidence)}`),
    ),
    timeElement(alert.event?.timestamp || alert.created_at),
  );
  // Hovering or focusing a toast keeps it until the pointer or focus leaves.
  item.addEventListener("mouseenter", () => clearTimeout(item._timer));
  item.addEventListener("mouseleave", () => armToast(item, timeout / 2));
  item.addEventListener("focus", () => clearTimeout(item._timer));
  item.addEventListener("blur", () => armToast(item, timeout / 2));
  region.append(item);
  const alerts = region.querySelectorAll(".toast-alert");
  for (let i = 0; i < alerts.length - MAX_TOASTS; i += 1) removeToast(alerts[i]);
  armToast(item, timeout);
  return item;
}

// --------------------------------------------------------------------------- notification, sound

function notify(alert) {
  if (!alertPrefs.notify || document.visibilityState === "visible") return;
  try {
    const notification = new Notification(`${alert.rule_name || "Alert"}: ${alertLine(alert)}`, {
      body: "Open tickstock to see your alerts.",
      // One notification per alert, however many tabs are open.
      tag: `tickstock-alert-${alert.id}`,
    });
    notification.addEventListener("click", () => {
      window.focus();
      location.assign("/alerts");
      notification.close();
    });
  } catch {
    // Some browsers allow notifications from a service worker only.
  }
}

/** Everything a live alert does in the shell. */
export function onLiveAlert(bell, alert) {
  bell.bump();
  alertToast(alert);
  notify(alert);
  if (alertPrefs.sound) beep();
}

// --------------------------------------------------------------------------- banners

function banner({ kind, text, at, key, counted = true }) {
  const region = document.getElementById("banners");
  if (!region) return null;
  const existing = [...region.children].find((child) => child.dataset.key === key);
  const item =
    existing ||
    h("div", { className: `banner banner-${kind}`, role: "alert", dataset: { kind, key } });
  const dismiss = h("button", { type: "button", className: "banner-dismiss", "aria-label": "Dismiss" }, "×");
  dismiss.addEventListener("click", () => {
    item.remove();
    if (kind === "health") dismissedHealth = key;
  });
  const count = counted ? Number(item.dataset.count || 0) + 1 : 1;
  item.dataset.count = String(count);
  item.replaceChildren(
    h("span", { className: "banner-text" }, text, count > 1 ? ` (×${count})` : ""),
    at ? timeElement(at) : "",
    dismiss,
  );
  if (!existing) region.prepend(item);
  return item;
}

let dismissedHealth = null;

function criticalBanner(data) {
  const subject = data.message || data.alert_type || "Critical alert";
  const parts = [data.symbol ? `${data.symbol}: ${subject}` : subject];
  if (data.indicator) parts.push(`${data.indicator}${data.value !== null && data.value !== undefined ? ` ${formatNumber(data.value)}` : ""}`);
  banner({
    kind: "critical",
    key: `critical|${data.symbol || ""}|${data.alert_type || ""}|${data.message || ""}`,
    text: `Critical: ${parts.join(" · ")}`,
    at: data.detected_at,
  });
  const region = document.getElementById("banners");
  const critical = region ? [...region.querySelectorAll(".banner-critical")] : [];
  critical.slice(MAX_CRITICAL_BANNERS).forEach((item) => item.remove());
}

function healthBanner(data) {
  const status = String(data.status || "unknown");
  const region = document.getElementById("banners");
  const current = region?.querySelector(".banner-health");
  if (HEALTHY.has(status.toLowerCase())) {
    // Resolved: the banner goes, and the next problem is shown even if the last was dismissed.
    current?.remove();
    dismissedHealth = null;
    return;
  }
  const key = `health|${status}`;
  if (dismissedHealth === key) return;
  if (current && current.dataset.key !== key) current.remove();
  const detail = data.metadata && typeof data.metadata.message === "string" ? ` — ${data.metadata.message}` : "";
  banner({ kind: "health", key, text: `Producer ${status}${detail}`, at: data.timestamp, counted: false });
}

/** ``critical_alert`` and unhealthy ``system_health`` events as dismissible banners. */
export function onSystemEvent({ type, data }) {
  if (type === "critical_alert") criticalBanner(data);
  else if (type === "system_health") healthBanner(data);
}
