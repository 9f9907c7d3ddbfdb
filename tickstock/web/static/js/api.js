// The REST client of the dashboard: one fetch wrapper that unwraps the SPEC §5 envelope and turns
// every failure into an ApiError whose message is plain words (never raw JSON or a stack).

const bootElement = document.getElementById("boot");

/** Server-provided page data: page name, user, CSRF header and token, page extras. */
export const boot = bootElement ? JSON.parse(bootElement.textContent) : {};

/** The symbols an empty view suggests: the ones the demo producer publishes. */
export function suggestion() {
  const symbols = boot.suggested_symbols || [];
  if (!symbols.length) return "";
  return `The demo producer publishes ${symbols.join(", ")}.`;
}

/**
 * An API failure: ``status`` (0 when the server was not reached), ``code``, a readable message,
 * and ``serverMessage``, the server's own text ("name: ..." names the field of a 400).
 */
export class ApiError extends Error {
  constructor(message, { status = 0, code = "network_error", retryAfter = null, serverMessage = "", field = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
    this.serverMessage = serverMessage;
    this.field = field;
  }
}

const FALLBACK_MESSAGES = {
  0: "Cannot reach the server. Check your connection.",
  400: "The request was not accepted.",
  401: "Your session has ended. Please sign in again.",
  403: "You do not have access to this.",
  404: "Not found.",
  409: "That conflicts with the current state.",
  413: "That is too large to send.",
  429: "Too many requests. Please wait a moment.",
  500: "The server had a problem. Please try again.",
  502: "The server is not answering right now.",
  503: "The service is temporarily unavailable. Please try again shortly.",
  504: "The server took too long to answer.",
};

function fallbackMessage(status) {
  return FALLBACK_MESSAGES[status] ?? (status >= 500 ? FALLBACK_MESSAGES[500] : FALLBACK_MESSAGES[400]);
}

// Estimated (server clock - this browser's clock) in ms, from the Date header of API responses.
// Date has one-second resolution, so the estimate is within about half a second.
let clockSkew = 0;
let clockKnown = false;

function noteServerDate(response) {
  const header = response.headers.get("Date");
  const serverMs = header ? Date.parse(header) : NaN;
  if (Number.isNaN(serverMs)) return;
  const estimate = serverMs + 500 - Date.now();
  clockSkew = clockKnown ? (clockSkew + estimate) / 2 : estimate;
  clockKnown = true;
}

/** The server's current time in epoch ms, as well as this page can tell. */
export function serverNow() {
  return Date.now() + clockSkew;
}

/** Headers that authorise a state-changing request made with the session cookie. */
export function csrfHeaders() {
  return boot.csrf ? { [boot.csrf.header]: boot.csrf.token } : {};
}

/** Query string from an object, skipping empty values. */
export function query(params = {}) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/**
 * Call the API: resolves to ``{data, meta}`` of a success envelope, rejects with an ApiError.
 * ``body`` is sent as JSON; state-changing methods carry the CSRF token.
 */
export async function api(path, { method = "GET", params, body, signal, timeout = 15000 } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD") Object.assign(headers, csrfHeaders());
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DOMException("timeout", "TimeoutError")), timeout);
  signal?.addEventListener("abort", () => controller.abort(signal.reason), { once: true });
  let response;
  try {
    response = await fetch(path + query(params), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      signal: controller.signal,
    });
  } catch (error) {
    if (signal?.aborted) throw error;
    const timedOut = controller.signal.reason?.name === "TimeoutError";
    throw new ApiError(timedOut ? FALLBACK_MESSAGES[504] : FALLBACK_MESSAGES[0], {
      code: timedOut ? "timeout" : "network_error",
    });
  } finally {
    clearTimeout(timer);
  }
  noteServerDate(response);
  let payload = null;
  if ((response.headers.get("Content-Type") || "").includes("json")) {
    try {
      payload = await response.json();
    } catch {
      payload = null;
    }
  }
  if (response.ok && payload && payload.status === "success") {
    return { data: payload.data, meta: payload.meta || {} };
  }
  const status = response.ok ? 502 : response.status;
  const serverMessage = payload && typeof payload.message === "string" ? payload.message : "";
  const message = readable(status, serverMessage);
  throw new ApiError(message, {
    status,
    code: (payload && payload.code) || `http_${status}`,
    retryAfter: Number(response.headers.get("Retry-After")) || null,
    serverMessage,
    field: payload && typeof payload.field === "string" ? payload.field : null,
  });
}

function readable(status, serverMessage) {
  if (status === 401) return FALLBACK_MESSAGES[401];
  if (!serverMessage || status >= 500) return fallbackMessage(status);
  // Server messages are sentences already; start them with a capital letter unless they start
  // with a parameter name ("confidence_min: ...").
  const first = serverMessage.split(/\s/, 1)[0];
  const text = /^[a-z]+$/.test(first) ? serverMessage.charAt(0).toUpperCase() + serverMessage.slice(1) : serverMessage;
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

/**
 * Show ``error`` in ``container`` in words, with a Retry button calling ``retry`` (when given)
 * and a sign-in link when the session has ended. Clears the container when ``error`` is null.
 */
export function showError(container, error, retry) {
  if (!container) return;
  container.replaceChildren();
  if (!error) {
    container.hidden = true;
    return;
  }
  container.hidden = false;
  const box = document.createElement("div");
  box.className = "api-error";
  box.setAttribute("role", "alert");
  const text = document.createElement("span");
  text.textContent = error instanceof ApiError ? error.message : FALLBACK_MESSAGES[500];
  box.append(text);
  if (error instanceof ApiError && error.status === 401) {
    const link = document.createElement("a");
    link.href = `/login?next=${encodeURIComponent(location.pathname + location.search)}`;
    link.textContent = "Sign in";
    box.append(" ", link);
  } else if (retry) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "Retry";
    button.addEventListener("click", () => {
      showError(container, null);
      retry();
    });
    box.append(" ", button);
  }
  container.append(box);
  if (!(error instanceof ApiError)) console.warn(error);
}
