// The live connection: a Socket.IO client with an honest state machine, the subscriptions the
// page wants, and the last offset per symbol so a reconnect (to any node) replays what was missed.
//
// States: "connecting" (first connect), "live", "reconnecting" (attempt n), "offline" (given up
// for now: the browser is offline, the session ended, or many attempts failed; retries go on
// in the background except when signed out).
//
// Events (CustomEvent on the instance):
//   state       {name, attempt, reason}
//   pattern     the ``data`` of a pattern_detected event, each event_id once
//   resubscribed {reconnect, replayed, notRecovered: [symbols], symbols}
//   failure     {message} (a subscription the server refused)
//   alert       the ``data`` of an ``alert`` event (one of the user's rules matched), each id once
//   indicator   the ``data`` of an ``indicator_update`` of a symbol subscribed by setIndicatorSymbols
//   system      {type, data} of ``critical_alert``, ``indicator_alert`` and ``system_health``

import { io } from "socket.io";
import { serverNow } from "./api.js";

const OFFLINE_AFTER_ATTEMPTS = 8;
const ACK_TIMEOUT_MS = 8000;
const SEEN_LIMIT = 20000;
// A symbol with no event yet gets a baseline offset this far before its subscription, so events
// published while the page was away are replayed even when none had arrived before.
const BASELINE_MARGIN_MS = 1500;

/** Compare two history offsets ``<ms>-<seq>``: negative, zero or positive. */
export function compareOffsets(a, b) {
  const [am, as] = a.split("-").map(Number);
  const [bm, bs] = b.split("-").map(Number);
  return am - bm || as - bs;
}

function validOffset(value) {
  return typeof value === "string" && /^\d+-\d+$/.test(value);
}

/** A bounded set of recently seen ids (oldest forgotten first). */
export class SeenSet {
  constructor(limit = SEEN_LIMIT) {
    this.limit = limit;
    this.ids = new Set();
  }

  has(id) {
    return this.ids.has(id);
  }

  add(id) {
    this.ids.add(id);
    if (this.ids.size > this.limit) this.ids.delete(this.ids.values().next().value);
  }
}

export class LiveConnection extends EventTarget {
  constructor({ url } = {}) {
    super();
    this.state = { name: "connecting", attempt: 0, reason: "" };
    this.wanted = new Set();
    this.wantedIndicators = new Set();
    this.activeIndicators = new Set();
    this.seenAlerts = new SeenSet(2000);
    this.active = new Set();
    this.offsets = new Map();
    this.baselines = new Map();
    this.seen = new SeenSet();
    this.everConnected = false;
    this.signedOut = false;
    this.attempt = 0;
    this.retryTimer = null;
    this.queue = Promise.resolve();
    this.socket = io(url, {
      path: "/socket.io/",
      transports: ["websocket"],
      reconnectionDelay: 500,
      reconnectionDelayMax: 5000,
      randomizationFactor: 0.5,
      timeout: 8000,
    });
    this.socket.on("connect", () => this.onConnect());
    this.socket.on("disconnect", (reason) => this.onDisconnect(reason));
    this.socket.on("connect_error", (error) => this.onConnectError(error));
    this.socket.on("pattern_detected", (message) => this.onPattern(message));
    this.socket.on("session_revoked", () => this.onSignedOut());
    this.socket.on("alert", (message) => this.onAlert(message));
    this.socket.on("indicator_update", (message) => {
      if (message?.data && typeof message.data.symbol === "string") this.emit("indicator", message.data);
    });
    for (const type of ["critical_alert", "indicator_alert", "system_health"]) {
      this.socket.on(type, (message) => {
        if (message?.data) this.emit("system", { type, data: message.data, timestamp: message.timestamp });
      });
    }
    for (const type of ["job_progress", "job_finished"]) {
      this.socket.on(type, (message) => this.emit("job", { type, message }));
    }
    this.socket.on("error", (body) => this.emit("failure", { message: body?.message || "subscription refused" }));
    this.socket.io.on("reconnect_attempt", () => this.setAttempt());
    window.addEventListener("offline", () => this.setState("offline", this.attempt, "the browser is offline"));
    window.addEventListener("online", () => {
      if (!this.socket.connected && !this.signedOut) this.retryNow();
    });
  }

  emit(name, detail) {
    this.dispatchEvent(new CustomEvent(name, { detail }));
  }

  setState(name, attempt = 0, reason = "") {
    this.state = { name, attempt, reason };
    this.emit("state", this.state);
  }

  setAttempt() {
    this.attempt += 1;
    const offline = this.attempt > OFFLINE_AFTER_ATTEMPTS || navigator.onLine === false;
    this.setState(offline ? "offline" : "reconnecting", this.attempt, offline ? "the server is not answering" : "");
  }

  onConnect() {
    const reconnect = this.everConnected;
    this.everConnected = true;
    this.attempt = 0;
    clearTimeout(this.retryTimer);
    this.active.clear();
    this.activeIndicators.clear();
    this.setState("live");
    this.enqueue(() => this.syncAll(reconnect));
    this.enqueue(() => this.syncIndicators());
  }

  onDisconnect(reason) {
    this.active.clear();
    this.activeIndicators.clear();
    if (this.signedOut) return;
    // "io server disconnect" (server shutdown, slow consumer) and "io client disconnect" are not
    // retried by Socket.IO itself; everything else is.
    if (!this.socket.active) this.scheduleRetry();
    this.setState("reconnecting", this.attempt, reason);
  }

  onConnectError(error) {
    if (error?.message === "unauthorized") {
      this.onSignedOut();
      return;
    }
    // Refused by the server (e.g. "unavailable"): Socket.IO does not retry those by itself.
    if (!this.socket.active) this.scheduleRetry();
  }

  onSignedOut() {
    this.signedOut = true;
    clearTimeout(this.retryTimer);
    this.socket.disconnect();
    this.setState("offline", 0, "signed out");
  }

  scheduleRetry() {
    clearTimeout(this.retryTimer);
    const delay = Math.min(5000, 500 * 2 ** Math.min(this.attempt, 4)) * (0.75 + Math.random() / 2);
    this.retryTimer = setTimeout(() => this.retryNow(), delay);
  }

  retryNow() {
    if (this.socket.connected || this.signedOut) return;
    this.setAttempt();
    this.socket.connect();
  }

  onPattern(message) {
    const data = message && message.data;
    if (!data || typeof data.symbol !== "string") return;
    if (validOffset(data.offset)) {
      const known = this.offsets.get(data.symbol);
      if (!known || compareOffsets(data.offset, known) > 0) this.offsets.set(data.symbol, data.offset);
    }
    const id = data.event_id || `${data.symbol}|${data.pattern}|${data.detected_at}`;
    if (this.seen.has(id)) return;
    this.seen.add(id);
    this.emit("pattern", { ...data, event_id: id, received_at_client: Date.now(), envelope_ts: message.timestamp });
  }

  onAlert(message) {
    const data = message && message.data;
    if (!data || data.id === undefined || data.id === null) return;
    if (this.seenAlerts.has(data.id)) return;
    this.seenAlerts.add(data.id);
    this.emit("alert", data);
  }

  enqueue(task) {
    this.queue = this.queue.then(task).catch((error) => {
      this.emit("failure", { message: error?.message || "subscription failed" });
    });
    return this.queue;
  }

  /** Subscribe exactly these symbols ("*" for all); the change is applied when connected. */
  setSymbols(symbols) {
    const next = new Set(symbols);
    const added = [...next].filter((s) => !this.wanted.has(s));
    const removed = [...this.wanted].filter((s) => !next.has(s));
    this.wanted = next;
    return this.enqueue(async () => {
      if (!this.socket.connected) return;
      if (removed.length) {
        await this.socket.timeout(ACK_TIMEOUT_MS).emitWithAck("unsubscribe_patterns", { symbols: removed });
        removed.forEach((s) => this.active.delete(s));
      }
      const toAdd = added.filter((s) => this.wanted.has(s) && !this.active.has(s));
      if (toAdd.length) await this.subscribe(toAdd, false);
    });
  }

  /** Receive ``indicator_update`` events of exactly these symbols (joined when connected). */
  setIndicatorSymbols(symbols) {
    this.wantedIndicators = new Set(symbols);
    return this.enqueue(() => this.syncIndicators());
  }

  async syncIndicators() {
    if (!this.socket.connected) return;
    const removed = [...this.activeIndicators].filter((s) => !this.wantedIndicators.has(s));
    const added = [...this.wantedIndicators].filter((s) => !this.activeIndicators.has(s));
    if (removed.length) {
      await this.socket.timeout(ACK_TIMEOUT_MS).emitWithAck("unsubscribe_indicators", { symbols: removed });
      removed.forEach((s) => this.activeIndicators.delete(s));
    }
    if (!added.length) return;
    const ack = await this.socket.timeout(ACK_TIMEOUT_MS).emitWithAck("subscribe_indicators", { symbols: added });
    if (!ack || ack.status !== "success") {
      this.emit("failure", { message: ack?.message || "indicator subscription refused" });
      return;
    }
    for (const symbol of ack.symbols) this.activeIndicators.add(symbol);
    this.emit("indicators-subscribed", { symbols: [...this.activeIndicators] });
  }

  isSubscribed(symbol) {
    return this.active.has(symbol);
  }

  async syncAll(reconnect) {
    const symbols = [...this.wanted];
    if (!symbols.length) {
      if (reconnect) this.emit("resubscribed", { reconnect, replayed: 0, notRecovered: [], symbols });
      return;
    }
    await this.subscribe(symbols, reconnect);
  }

  async subscribe(symbols, reconnect) {
    const since = {};
    if (reconnect) {
      for (const symbol of symbols) {
        if (symbol === "*") continue;
        const offset = this.offsets.get(symbol) || this.baselines.get(symbol);
        if (offset) since[symbol] = offset;
      }
    }
    const payload = Object.keys(since).length ? { symbols, since } : { symbols };
    const baseline = `${Math.max(0, Math.floor(serverNow() - BASELINE_MARGIN_MS))}-0`;
    const ack = await this.socket.timeout(ACK_TIMEOUT_MS).emitWithAck("subscribe_patterns", payload);
    if (!ack || ack.status !== "success") {
      this.emit("failure", { message: ack?.message || "subscription refused" });
      return;
    }
    for (const symbol of ack.symbols) {
      this.active.add(symbol);
      if (symbol !== "*" && !this.offsets.has(symbol) && !this.baselines.has(symbol)) {
        this.baselines.set(symbol, baseline);
      }
    }
    const notRecovered = Object.entries(ack.recovered || {})
      .filter(([symbol, ok]) => !ok && symbol !== "*")
      .map(([symbol]) => symbol);
    this.emit("resubscribed", {
      reconnect,
      replayed: Number(ack.replayed) || 0,
      notRecovered,
      symbols: ack.symbols,
    });
  }

  /** Drop the transport (for testing resilience by hand: ``tickstock.live.drop()``). */
  drop() {
    this.socket.io.engine?.close();
  }
}
