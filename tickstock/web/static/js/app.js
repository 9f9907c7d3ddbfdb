// The page shell shared by every page: theme, user menu and logout, the connection indicator,
// the events-per-minute counter, toasts, keyboard shortcuts, and alerts (bell, toasts, banners).

import { Bell, onLiveAlert, onSystemEvent } from "./alerting.js";
import { api, ApiError, boot, csrfHeaders } from "./api.js";
import { isTyping } from "./format.js";
import { attachJobsToBell, onJobEvent } from "./jobs.js";
import { LiveConnection } from "./socket.js";

const THEME_KEY = "tickstock.theme";
const RATE_WINDOW_MS = 60_000;

// --------------------------------------------------------------------------- theme

function currentTheme() {
  return document.documentElement.dataset.theme === "light" ? "light" : "dark";
}

function applyTheme(theme) {
  document.documentElement.dataset.theme = theme;
  const toggle = document.getElementById("theme-toggle");
  if (toggle) toggle.textContent = theme === "dark" ? "Switch to light theme" : "Switch to dark theme";
  document.dispatchEvent(new CustomEvent("themechange", { detail: { theme } }));
}

async function saveTheme(theme) {
  try {
    localStorage.setItem(THEME_KEY, theme);
  } catch {
    // Private mode: the server copy below is enough.
  }
  try {
    // PUT replaces the settings object: keep the other keys.
    const { data } = await api("/api/user/settings");
    await api("/api/user/settings", { method: "PUT", body: { ...(data || {}), theme } });
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 404) {
      toast(`Theme kept in this browser only: ${error.message || "could not save it"}`);
    }
  }
}

function setUpTheme() {
  applyTheme(currentTheme());
  document.getElementById("theme-toggle")?.addEventListener("click", () => {
    const next = currentTheme() === "dark" ? "light" : "dark";
    applyTheme(next);
    saveTheme(next);
  });
}

// --------------------------------------------------------------------------- user menu, logout

function setUpUserMenu() {
  const menu = document.getElementById("user-menu");
  document.addEventListener("click", (event) => {
    if (menu?.open && !menu.contains(event.target)) menu.open = false;
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && menu?.open) {
      menu.open = false;
      menu.querySelector("summary")?.focus();
    }
  });
  const form = document.getElementById("logout-form");
  form?.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await fetch("/logout", {
        method: "POST",
        headers: csrfHeaders(),
        credentials: "same-origin",
        redirect: "manual",
      });
    } finally {
      location.assign("/login");
    }
  });
}

// --------------------------------------------------------------------------- toasts

/** A short-lived note in the corner (also read by screen readers: the region is polite). */
export function toast(message, { timeout = 6000 } = {}) {
  const region = document.getElementById("toasts");
  if (!region) return;
  const item = document.createElement("div");
  item.className = "toast";
  item.textContent = message;
  region.append(item);
  setTimeout(() => item.remove(), timeout);
}

// --------------------------------------------------------------------------- connection

const STATE_LABELS = {
  connecting: () => "connecting…",
  live: () => "live",
  reconnecting: (s) => (s.attempt ? `reconnecting (attempt ${s.attempt})` : "reconnecting…"),
  offline: (s) => (s.reason === "signed out" ? "offline — signed out" : `offline${s.attempt ? ` (attempt ${s.attempt})` : ""}`),
};

function showConnection(state) {
  const element = document.getElementById("conn");
  if (!element) return;
  element.dataset.state = state.name;
  element.dataset.attempt = String(state.attempt || 0);
  element.querySelector(".conn-label").textContent = STATE_LABELS[state.name](state);
  element.title = state.reason ? `${state.name}: ${state.reason}` : state.name;
}

/** Counts events over a sliding minute for the header. */
class RateCounter {
  constructor(element) {
    this.element = element;
    this.times = [];
    setInterval(() => this.render(), 1000);
  }

  add() {
    this.times.push(performance.now());
    this.render();
  }

  render() {
    const cutoff = performance.now() - RATE_WINDOW_MS;
    let drop = 0;
    while (drop < this.times.length && this.times[drop] < cutoff) drop += 1;
    if (drop) this.times.splice(0, drop);
    if (this.element) this.element.textContent = String(this.times.length);
  }
}

// --------------------------------------------------------------------------- shortcuts

const shortcuts = new Map();

/** Register a single-key shortcut (ignored while typing in a field). */
export function onShortcut(key, handler) {
  shortcuts.set(key, handler);
}

function setUpShortcuts() {
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || isTyping(event)) return;
    const handler = shortcuts.get(event.key);
    if (handler) {
      event.preventDefault();
      handler(event);
    }
  });
}

// --------------------------------------------------------------------------- start

let shell = null;

/** Start the shell once per page; returns ``{live, boot, bell}``. */
export function startShell() {
  if (shell) return shell;
  setUpTheme();
  setUpUserMenu();
  setUpShortcuts();
  const live = new LiveConnection();
  const counter = new RateCounter(document.getElementById("ev-rate"));
  live.addEventListener("state", (event) => showConnection(event.detail));
  live.addEventListener("pattern", () => counter.add());
  live.addEventListener("failure", (event) => toast(`Live updates: ${event.detail.message}`));
  showConnection(live.state);
  const bell = new Bell(document.getElementById("bell"));
  bell.refresh();
  live.addEventListener("alert", (event) => onLiveAlert(bell, event.detail));
  live.addEventListener("system", (event) => onSystemEvent(event.detail));
  attachJobsToBell(bell, boot.page);
  live.addEventListener("job", (event) => onJobEvent(bell, boot.page, event.detail));
  shell = { live, boot, bell };
  // A handle for people poking at the page from the console (and for the browser tests).
  window.tickstock = shell;
  return shell;
}
