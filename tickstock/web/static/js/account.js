// The Account page: change password, sessions and API tokens of the signed-in user.

import { api, showError } from "./api.js";
import { startShell, toast } from "./app.js";
import { h, timeElement } from "./format.js";

startShell();
const $ = (id) => document.getElementById(id);

// The result speaks of the last attempt: once the fields change (or the browser refuses them)
// it no longer applies.
$("password-form").addEventListener("input", () => showError($("password-result"), null));
$("password-form").addEventListener("invalid", () => showError($("password-result"), null), true);

$("password-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = { current_password: $("current-password").value, new_password: $("new-password").value };
  try {
    const { data } = await api("/api/user/password", { method: "PUT", body });
    const n = data.other_sessions_revoked;
    const result = $("password-result");
    result.replaceChildren(
      h("p", { className: "note" }, `Password changed. ${n} other session${n === 1 ? "" : "s"} and token${n === 1 ? "" : "s"} signed out.`),
    );
    result.hidden = false;
    event.target.reset();
    loadSessions();
    loadTokens();
  } catch (error) {
    showError($("password-result"), error);
  }
});

async function loadSessions() {
  try {
    const { data } = await api("/api/user/sessions");
    showError($("sessions-error"), null);
    $("session-rows").replaceChildren(
      ...data.map((s) =>
        h(
          "tr",
          { dataset: { session: s.id, current: String(s.current) } },
          h("td", { title: s.user_agent || "" }, s.browser, s.current ? h("span", { className: "muted" }, " (this browser)") : null),
          h("td", {}, s.address || "—"),
          h("td", { className: "time" }, timeElement(s.created_at, { withDate: true })),
          h("td", { className: "time" }, timeElement(s.last_seen_at, { withDate: true })),
          h(
            "td",
            { className: "actions" },
            s.current
              ? null
              : h("button", { type: "button", className: "revoke", onclick: () => revokeSession(s.id) }, "Sign out"),
          ),
        ),
      ),
    );
  } catch (error) {
    showError($("sessions-error"), error, loadSessions);
  }
}

async function revokeSession(id) {
  try {
    await api(`/api/user/sessions/${encodeURIComponent(id)}`, { method: "DELETE" });
    toast("That session was signed out.");
  } catch (error) {
    toast(`Could not sign that session out: ${error.message}`);
  }
  loadSessions();
}

async function loadTokens() {
  try {
    const { data } = await api("/api/auth/tokens");
    showError($("tokens-error"), null);
    $("tokens-status").textContent = data.length ? "" : "No API tokens yet. Create one to use the API from a script.";
    $("token-rows").replaceChildren(
      ...data.map((t) =>
        h(
          "tr",
          { dataset: { token: t.id } },
          h("td", {}, t.name || "—"),
          h("td", { className: "time" }, timeElement(t.created_at, { withDate: true })),
          h("td", { className: "time" }, timeElement(t.last_active_at, { withDate: true })),
          h("td", { className: "time" }, t.expires_at ? timeElement(t.expires_at, { withDate: true }) : "never"),
          h("td", { className: "actions" }, h("button", { type: "button", className: "revoke", onclick: () => revokeToken(t.id, t.name) }, "Revoke")),
        ),
      ),
    );
  } catch (error) {
    showError($("tokens-error"), error, loadTokens);
  }
}

async function revokeToken(id, name) {
  try {
    await api(`/api/auth/tokens/${encodeURIComponent(id)}`, { method: "DELETE" });
    toast(`Token ${name || id} revoked.`);
  } catch (error) {
    toast(`Could not revoke the token: ${error.message}`);
  }
  loadTokens();
}

$("token-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const days = $("token-days").value;
  const body = { name: $("token-name").value.trim() };
  if (days) body.expires_in_days = Number(days);
  try {
    const { data } = await api("/api/auth/tokens", { method: "POST", body });
    showError($("tokens-error"), null);
    $("token-created").hidden = false;
    $("token-value").textContent = data.token;
    $("token-curl").textContent = `curl -H "Authorization: Bearer ${data.token}" ${location.origin}/api/patterns?limit=5`;
    event.target.reset();
    loadTokens();
  } catch (error) {
    showError($("tokens-error"), error);
  }
});

$("token-copy").addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText($("token-curl").textContent);
    toast("Copied.");
  } catch {
    // Clipboard refused (insecure origin): select the text so Ctrl+C works.
    getSelection().selectAllChildren($("token-curl"));
    toast("Press Ctrl+C to copy the selected command.");
  }
});

loadSessions();
loadTokens();
