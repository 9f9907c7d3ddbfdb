// Administration: accounts (list, create, role, activate/deactivate), live Socket.IO
// connections on every node, and the recent ingest errors.

import { api, boot, showError } from "./api.js";
import { startShell, toast } from "./app.js";
import { h, timeElement } from "./format.js";

const { live } = startShell();
// The node's live count includes this page's own socket: refresh once it is connected.
live.addEventListener("state", (event) => {
  if (event.detail.name === "live") loadConnections();
});
const $ = (id) => document.getElementById(id);
const CONNECTIONS_REFRESH_MS = 15000;

// --------------------------------------------------------------------------- users

let usersCursor = null;

async function loadUsers({ more = false } = {}) {
  try {
    const { data, meta } = await api("/api/admin/users", { params: { limit: 100, cursor: more ? usersCursor : undefined } });
    const rows = data.map(userRow);
    if (more) $("users-rows").append(...rows);
    else $("users-rows").replaceChildren(...rows);
    usersCursor = meta.next_cursor || null;
    $("more-users").hidden = !usersCursor;
    showError($("users-error"), null);
  } catch (error) {
    showError($("users-error"), error, () => loadUsers({ more }));
  }
}

function userRow(user) {
  const self = user.id === boot.user.id;
  const role = h(
    "select",
    { "aria-label": `Role of ${user.username}`, disabled: self },
    ...["user", "admin"].map((r) => h("option", { value: r, selected: r === user.role }, r)),
  );
  role.addEventListener("change", () => updateUser(user, { role: role.value }, row));
  const status = user.locked_until ? "locked" : user.active ? "active" : "inactive";
  const toggle = h(
    "button",
    { type: "button", disabled: self, title: self ? "You cannot deactivate yourself here" : undefined },
    user.active ? "Deactivate" : "Activate",
  );
  toggle.addEventListener("click", () => updateUser(user, { active: !user.active }, row));
  // Lockouts are per client address: the owner's own address is rarely among them.
  const unlock = user.locked_until
    ? h("button", { type: "button", title: "Clear the lockouts of this account (every address)" }, "Unlock")
    : null;
  unlock?.addEventListener("click", () => unlockUser(user, row));
  const row = h(
    "tr",
    { dataset: { userId: String(user.id), username: user.username }, className: user.active ? "" : "inactive" },
    h("th", { scope: "row" }, user.username, self ? h("span", { className: "muted" }, " (you)") : null),
    h("td", {}, role),
    h("td", {}, h("span", { className: `status status-${status}` }, status)),
    h("td", { className: "num" }, String(user.live_sessions ?? "—")),
    h("td", { className: "num" }, String(user.failed_logins ?? "—")),
    h("td", {}, timeElement(user.created_at, { withDate: true })),
    h("td", { className: "actions" }, toggle, unlock),
  );
  return row;
}

async function updateUser(user, change, row) {
  row.setAttribute("aria-busy", "true");
  try {
    const { data, meta } = await api(`/api/admin/users/${user.id}`, { method: "PATCH", body: change });
    const what = "role" in change ? `${data.username} is now ${data.role}` : `${data.username} is ${data.active ? "active" : "deactivated"}`;
    toast(meta.sessions_revoked ? `${what}; their sessions were ended.` : `${what}.`);
    await loadUsers();
  } catch (error) {
    toast(`Could not update ${user.username}: ${error.message}`);
    await loadUsers();
  } finally {
    row.removeAttribute("aria-busy");
  }
}

async function unlockUser(user, row) {
  row.setAttribute("aria-busy", "true");
  try {
    const { data } = await api(`/api/admin/users/${user.id}/lockouts`, { method: "DELETE" });
    toast(`${user.username} unlocked (${data.cleared} address${data.cleared === 1 ? "" : "es"}).`);
  } catch (error) {
    toast(`Could not unlock ${user.username}: ${error.message}`);
  } finally {
    row.removeAttribute("aria-busy");
    await loadUsers();
  }
}

$("create-user").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const status = $("create-user-status");
  const body = {
    username: form.elements.namedItem("username").value.trim(),
    password: form.elements.namedItem("password").value,
    role: form.elements.namedItem("role").value,
  };
  status.className = "form-status";
  status.textContent = "Creating…";
  try {
    const { data } = await api("/api/admin/users", { method: "POST", body });
    form.reset();
    status.textContent = `Created ${data.username} (${data.role}).`;
    await loadUsers();
  } catch (error) {
    status.className = "form-status form-error";
    status.textContent = error.message;
  }
});

$("more-users").addEventListener("click", () => loadUsers({ more: true }));

// --------------------------------------------------------------------------- connections

async function loadConnections() {
  try {
    const { data, meta } = await api("/api/admin/connections", { params: { limit: 200 } });
    $("connections-rows").replaceChildren(
      ...data.map((c) =>
        h(
          "tr",
          {},
          h("th", { scope: "row" }, c.username || (c.user_id ? `#${c.user_id}` : "—")),
          h("td", {}, c.node_id || "—"),
          h("td", { className: "mono" }, c.sid || "—"),
          h("td", { className: "rooms", title: (c.rooms || []).join(", ") }, summariseRooms(c.rooms || [])),
          h("td", {}, timeElement(c.since, { withDate: true })),
        ),
      ),
    );
    if (!data.length) {
      $("connections-rows").replaceChildren(
        h("tr", {}, h("td", { colSpan: 5, className: "muted" }, "No socket has subscriptions right now.")),
      );
    }
    const node = meta.node || {};
    $("conn-summary").textContent =
      `${data.length}${meta.next_cursor ? "+" : ""} recorded socket${data.length === 1 ? "" : "s"}` +
      (node.node_id ? ` · this node (${node.node_id}) has ${node.live_sockets} live` : "");
    showError($("connections-error"), null);
  } catch (error) {
    showError($("connections-error"), error, loadConnections);
  }
}

function summariseRooms(rooms) {
  if (!rooms.length) return "—";
  const shown = rooms.slice(0, 6).join(", ");
  return rooms.length > 6 ? `${shown} … (+${rooms.length - 6})` : shown;
}

$("refresh-connections").addEventListener("click", loadConnections);

// --------------------------------------------------------------------------- errors

let errorsCursor = null;

async function loadErrors({ more = false } = {}) {
  try {
    const { data, meta } = await api("/api/admin/errors", { params: { limit: 50, cursor: more ? errorsCursor : undefined } });
    const rows = data.map((e) =>
      h(
        "tr",
        {},
        h("td", {}, timeElement(e.created_at, { withDate: true })),
        h("td", {}, e.source),
        h("td", {}, e.reason),
        h("td", { className: "mono" }, e.channel || "—"),
        h("td", { className: "message" }, e.message),
      ),
    );
    if (more) $("errors-rows").append(...rows);
    else $("errors-rows").replaceChildren(...rows);
    if (!more && !rows.length) {
      $("errors-rows").replaceChildren(h("tr", {}, h("td", { colSpan: 5, className: "muted" }, "No errors recorded.")));
    }
    errorsCursor = meta.next_cursor || null;
    $("more-errors").hidden = !errorsCursor;
    showError($("errors-error"), null);
  } catch (error) {
    showError($("errors-error"), error, () => loadErrors({ more }));
  }
}

$("refresh-errors").addEventListener("click", () => loadErrors());
$("more-errors").addEventListener("click", () => loadErrors({ more: true }));

loadUsers();
loadConnections();
loadErrors();
setInterval(() => {
  if (document.visibilityState === "visible") loadConnections();
}, CONNECTIONS_REFRESH_MS);
