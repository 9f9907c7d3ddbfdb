// Prev/Next paging over the REST API's opaque cursors, kept in the URL and the history state so
// a page can be bookmarked and the Back button walks pages.

import { readQuery, writeQuery } from "./format.js";

export function cursorPager(load) {
  let stack = (history.state && history.state.cursors) || [];
  let next = null;
  const remember = () => history.replaceState({ cursors: stack }, "", location.href);

  document.getElementById("next-page").addEventListener("click", () => {
    if (!next) return;
    stack = [...stack, readQuery(["cursor"]).cursor || ""];
    writeQuery({ cursor: next }, { push: true });
    remember();
    load();
  });
  document.getElementById("prev-page").addEventListener("click", () => {
    const previous = stack.length ? stack[stack.length - 1] : "";
    stack = stack.slice(0, -1);
    writeQuery({ cursor: previous }, { push: true });
    remember();
    load();
  });
  window.addEventListener("popstate", (event) => {
    stack = (event.state && event.state.cursors) || [];
    load();
  });

  return {
    /** The cursor of the page after the one just loaded (null on the last page). */
    setNext(cursor) {
      next = cursor || null;
    },
    get next() {
      return next;
    },
    /** How many pages back the current one is (0 on the first page). */
    get depth() {
      return stack.length;
    },
    /** Start over from the first page (new filters). */
    reset() {
      stack = [];
      remember();
    },
  };
}
