// Jobs in the page shell (every page): what a job event says, and the toast of a finished job when
// the user is on another page than Backtest (which shows it in its own list).

import { h } from "./format.js";

const TOAST_MS = 10000;
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

/** The shell's part: a finished job raises a toast and refreshes the bell, except on Backtest. */
export function onJobEvent(bell, page, { type, message }) {
  if (type !== "job_finished" || page === "backtest") return;
  const job = jobOf(message);
  if (!job) return;
  jobToast(job);
  // The service files a finished job in the inbox like an alert: the bell counts it.
  bell.refresh();
}
