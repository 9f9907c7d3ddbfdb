// Symbol search and browsing over /api/symbols, paged with the API's cursor; filters in the URL.

import { api, showError } from "./api.js";
import { onShortcut, startShell } from "./app.js";
import { cursorPager } from "./pager.js";
import { formatCompact, h, readQuery, writeQuery } from "./format.js";

startShell();
const $ = (id) => document.getElementById(id);
const form = $("symbols-search");
const PAGE_SIZE = 50;

const pager = cursorPager(load);

onShortcut("/", () => $("symbols-q").focus());

function filters() {
  const values = readQuery(["q", "sector"]);
  form.elements.namedItem("q").value = values.q || "";
  form.elements.namedItem("sector").value = values.sector || "";
  return values;
}

async function load() {
  const params = { ...filters(), cursor: readQuery(["cursor"]).cursor, limit: PAGE_SIZE };
  $("symbols-status").hidden = false;
  $("symbols-status").textContent = "Loading…";
  try {
    const { data, meta } = await api("/api/symbols", { params });
    showError($("symbols-error"), null);
    $("symbols-rows").replaceChildren(
      ...data.map((item) =>
        h(
          "tr",
          {},
          h("th", { scope: "row" }, h("a", { href: `/symbols/${encodeURIComponent(item.symbol)}` }, item.symbol)),
          h("td", {}, item.name),
          h("td", {}, item.sector || "—"),
          h("td", {}, item.exchange || "—"),
          h("td", { className: "num" }, formatCompact(item.market_cap)),
        ),
      ),
    );
    pager.setNext(meta.next_cursor);
    $("symbols-status").textContent = data.length ? "" : "No symbols match.";
    $("symbols-status").hidden = data.length > 0;
  } catch (error) {
    $("symbols-status").hidden = true;
    showError($("symbols-error"), error, load);
  }
  $("next-page").disabled = !pager.next;
  $("prev-page").disabled = !readQuery(["cursor"]).cursor;
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  writeQuery(
    { q: form.elements.namedItem("q").value.trim(), sector: form.elements.namedItem("sector").value.trim(), cursor: "" },
    { push: true },
  );
  pager.reset();
  load();
});


load();
