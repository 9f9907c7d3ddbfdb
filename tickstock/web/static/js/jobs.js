// Jobs in the page shell (every page): what a job event says, and the toast of a finished job when
// the user is on another page than Backtest (which shows it in its own list).

import { h } from "./format.js";

const TOAST_MS = 10000;
// Jobs that finished while the user was elsewhere, until the Backtest page is opened: the bell
// counts them beside unread alerts, in every tab of this browser.
const UNSEEN_KEY = "tickstock.jobs.unseen";
const MAX_UNSEEN = 20;
export const ACTIVE = new Set(["queued", "running"]);

/** The job of a ``job_progress`` / ``job_finished`` message (the job itself, or under ``data``). */
export function jobOf(message) {
  const job = message && typeof message === "object" && message.data && typeof message.data === "object" ? message.data : message;
  if (!job || typeof job !== "object") return null;
  const id = job.id ?? job.job_id;
  return id === undefined || id === null ? null : { ...job, id: String(id) };
}

/** Progress as a fraction 0..1 (the API stores fractions; a percent is tolerated). */
export function fraction(value) {
  const number = Number(value);
  if (!Number.isFinite(number) || number <= 0) return 0;
  return number > 1 ? Math.min(number / 100, 1) : number;
}

/** "Backtest of AAPL, MSFT +3" or "Data load of the universe". */
export function jobTitle(job) {
  const params = job.params || {};
  const kind = job.kind === "data_load" ? "Data load" : "Backtest";
  const symbols = Array.isArray(params.symbols) ? params.symbols : params.symbols === "universe" ? null : [];
  if (symbols === null) return `${kind} of the universe`;
  const shown = symbols.slice(0, 3).join(", ");
  return symbols.length ? `${kind} of ${shown}${symbols.length > 3 ? ` +${symbols.length - 3}` : ""}` : kind;
}

const STATUS_WORDS = { completed: "finished", failed: "failed", cancelled: "was cancelled" };

/** The toast of a finished job: its title and outcome, opening its result on the Backtest page. */
export function jobToast(job) {
  const region = document.getElementById("toasts");
  if (!region) return null;
  const item = h(
    "a",
    { className: "toast toast-alert toast-job", href: `/backtest?job=${encodeURIComponent(job.id)}`, dataset: { jobId: job.id, status: job.status } },
    h("span", { className: "toast-title" }, `${jobTitle(job)} ${STATUS_WORDS[job.status] || job.status}`),
    h("span", { className: "toast-body" }, job.status === "failed" && job.error ? job.error : "Open the result on the Backtest page."),
  );
  region.append(item);
  setTimeout(() => item.remove(), TOAST_MS);
  return item;
}

function readUnseen() {
  try {
    const list = JSON.parse(localStorage.getItem(UNSEEN_KEY) || "[]");
    return Array.isArray(list) ? list.filter((id) => typeof id === "string") : [];
  } catch {
    return [];
  }
}

function writeUnseen(list) {
  try {
    if (list.length) localStorage.setItem(UNSEEN_KEY, JSON.stringify(list.slice(-MAX_UNSEEN)));
    else localStorage.removeItem(UNSEEN_KEY);
  } catch {
    // Private mode: the count lasts for this page only.
  }
}

/** The bell's job entries: cleared on the Backtest page (where the jobs are shown), kept in
 * step across tabs. */
export function attachJobsToBell(bell, page) {
  if (page === "backtest") writeUnseen([]);
  bell.setExtra(readUnseen().length);
  window.addEventListener("storage", (event) => {
    if (event.key === UNSEEN_KEY || event.key === null) bell.setExtra(readUnseen().length);
  });
}

/** The shell's part: a job that finishes while the user is on another page than Backtest raises
 * a toast and a bell entry, as an alert does. */
export function onJobEvent(bell, page, { type, message }) {
  if (type !== "job_finished" || page === "backtest") return;
  const job = jobOf(message);
  if (!job) return;
  jobToast(job);
  const unseen = readUnseen();
  const next = unseen.includes(job.id) ? unseen : [...unseen, job.id].slice(-MAX_UNSEEN);
  writeUnseen(next);
  bell.setExtra(next.length);
}
