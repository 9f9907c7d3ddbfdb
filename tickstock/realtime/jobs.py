"""Jobs (SPEC §13): hand them to the producer, store its reports once, tell the owner live.

- **Hand-off.** The API queues a job and publishes it (``announce_job``). Pub/sub loses a message
  nobody hears, so a queued job is published again every few seconds until the producer reports
  progress; after ``TICKSTOCK_JOB_PICKUP_SECONDS`` it fails with "the producer did not pick the
  job up", and a running job silent for ``TICKSTOCK_JOB_STALL_SECONDS`` fails as stalled.
- **Sweeping.** Every node runs the sweep each second; the rows it acts on are taken with
  ``FOR UPDATE SKIP LOCKED`` and stamped in the same transaction, so each job is announced, or
  failed, by one node (no lease to hold or hand over, and a node that dies mid-sweep only
  releases its row locks).
- **Reports.** Ingest hands the producer's job channels to ``JobUpdater.accept`` (any node may
  hear them; with pub/sub every node does). Each report is applied with a conditional update
  (``queries/jobs.py``): progress never goes backwards, a finished job stays finished, so the
  change is stored by exactly one node, and the others find nothing to change.
- **Delivery.** The node whose update changed the row appends ``job_progress`` or
  ``job_finished`` to the fan-out stream addressed to ``user:<id>`` (the same Lua step as every
  event, as alerts are), *before* its transaction commits: the row lock orders the appends of
  concurrent changes, so every node delivers them once to each of the owner's sockets, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from tickstock import metrics
from tickstock.config import Settings
from tickstock.errors import DATABASE_DOWN, REDIS_DOWN, ServiceUnavailable
from tickstock.jsonutil import dumps
from tickstock.queries.jobs import (
    Announcement,
    JobSummary,
    apply_progress,
    apply_results,
    fail_stalled_jobs,
    fail_unclaimed_jobs,
    job_uuid,
    mark_announced,
    select_jobs_to_announce,
    touch_job,
)
from tickstock.realtime.auth import user_room
from tickstock.realtime.events import (
    JOB_MESSAGE_MAX_BYTES,
    Event,
    JobResults,
    NormaliseResult,
    normalise,
)
from tickstock.realtime.history import EventStore
from tickstock.vocab import JOB_BACKTEST_CHANNEL, JOB_CANCEL_CHANNEL, JOB_DATA_LOAD_CHANNEL

log = logging.getLogger(__name__)

__all__ = [
    "JobUpdater",
    "announce_every",
    "announcement_message",
    "cancel_message",
    "job_events",
]

QUEUE_SIZE: Final = 10_000
SWEEP_LIMIT: Final = 100
# Redis or PostgreSQL away: a report waits and is applied once they are back.
PAUSING: tuple[type[Exception], ...] = (*REDIS_DOWN, *DATABASE_DOWN, ServiceUnavailable)
RETRY_CAP_S: Final = 10.0
LOG_EVERY_S: Final = 10.0
RECANCEL_EVERY_S: Final = 5.0

Publish = Callable[[str, bytes], Awaitable[Any]]


def announce_every(pickup_seconds: float) -> float:
    """How often a queued job is published again: every 5 s, more often when the pickup window
    is short (a quarter of it, at least every half second)."""
    return max(0.5, min(5.0, pickup_seconds / 4))


def announcement_message(job: Announcement | JobSummary, announcement: int) -> dict[str, Any]:
    """The message that hands a job to the producer (SPEC §13), with the original system's
    fields too (``job_type``, ``date_range``). ``announcement`` counts the publications of the
    job (1 for the first): a producer runs each ``job_id`` once and ignores the repeats."""
    params = job["params"]
    now = time.time()
    if job["kind"] == "backtest":
        return {
            "type": "backtest_job",
            "job_type": "backtest",
            "job_id": job["id"],
            "user_id": job["user_id"],
            "symbols": params.get("symbols", []),
            "start_date": params.get("start_date"),
            "end_date": params.get("end_date"),
            "date_range": {"start": params.get("start_date"), "end": params.get("end_date")},
            "patterns": params.get("patterns", []),
            "parameters": params.get("parameters", {}),
            "timestamp": now,
            "source": "tickstock",
            "announcement": announcement,
        }
    return {
        "type": "data_load",
        "job_type": "data_load",
        "job_id": job["id"],
        "symbols": params.get("symbols", "universe"),
        "years": params.get("years"),
        "timeframes": params.get("timeframes", ["daily"]),
        "requested_by": params.get("requested_by"),
        "timestamp": now,
        "source": "tickstock",
        "announcement": announcement,
    }


def announcement_channel(kind: str) -> str:
    return JOB_BACKTEST_CHANNEL if kind == "backtest" else JOB_DATA_LOAD_CHANNEL


def cancel_message(job_id: str) -> dict[str, Any]:
    return {"type": "cancel_job", "job_id": job_id, "timestamp": time.time()}


def job_events(
    jobs: Sequence[JobSummary], results: JobResults | None = None
) -> list[tuple[str, str, str, dict[str, Any]]]:
    """The fan-out entries of stored job changes: ``job_progress`` while a job is queued or
    running, ``job_finished`` when it ends (with the headline metrics of a completed backtest).
    The id (job, state version) makes a change one event however often it is appended."""
    entries = []
    for job in jobs:
        finished = job["status"] not in ("queued", "running")
        data: dict[str, Any] = dict(job)
        if finished:
            data["metrics"] = results["metrics"] if results is not None else None
        entries.append(
            (
                user_room(job["user_id"]),
                "job_finished" if finished else "job_progress",
                f"job:{job['id']}:{job['seq']}",
                data,
            )
        )
    return entries


@dataclass
class JobStats:
    """The updater's counters, for /api/streaming/status and tests."""

    stored: int = 0
    unchanged: int = 0
    unknown: int = 0
    dropped: int = 0
    announced: int = 0
    failed_unclaimed: int = 0
    failed_stalled: int = 0
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "stored": self.stored,
            "unchanged": self.unchanged,
            "unknown": self.unknown,
            "dropped": self.dropped,
            "announced": self.announced,
            "failed_unclaimed": self.failed_unclaimed,
            "failed_stalled": self.failed_stalled,
            "last_error": self.last_error,
        }


class JobUpdater:
    """The node's part in running jobs: applies the producer's reports, sweeps, announces."""

    def __init__(
        self,
        settings: Settings,
        database: Any,
        store: EventStore,
        publish: Publish,
    ) -> None:
        self.settings = settings
        self.database = database
        self.store = store
        self.publish = publish
        self.stats = JobStats()
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=QUEUE_SIZE)
        self.every = announce_every(settings.job_pickup_seconds)
        self.sweep_interval = min(1.0, self.every / 2)
        self._logged: dict[str, float] = {}
        self._recancelled: dict[str, float] = {}

    # --- reports in -----------------------------------------------------------------------------

    def accept(self, channel: str, raw: bytes | str) -> NormaliseResult:
        """Normalise a job report and queue it for storing; never blocks the ingest loop. The
        result carries the rejects (ingest counts and logs them) and no events."""
        result = normalise(raw, channel, max_bytes=JOB_MESSAGE_MAX_BYTES)
        for event in result.events:
            try:
                self.queue.put_nowait(event)
            except asyncio.QueueFull:
                self.stats.dropped += 1
                metrics.JOB_REPORTS.labels("dropped").inc()
                self._warn("queue", "job report dropped: %d waiting to be stored", QUEUE_SIZE)
        return NormaliseResult([], result.rejects, result.ignored)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._apply_loop())
            group.create_task(self._sweep_loop())

    async def _apply_loop(self) -> None:
        while True:
            event = await self.queue.get()
            backoff = 0.5
            while True:
                try:
                    await self.apply(event)
                    break
                except asyncio.CancelledError:
                    raise
                except PAUSING as exc:
                    # Stored once the database (or Redis) is back; later reports wait behind it.
                    self.stats.last_error = f"{type(exc).__name__}: {exc}"[:200]
                    self._warn("pause", "job reports paused (%r); retrying", exc)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, RETRY_CAP_S)
                except Exception as exc:
                    self.stats.last_error = f"{type(exc).__name__}: {exc}"[:200]
                    log.exception("could not apply a job report; dropped")
                    break

    async def apply(self, event: Event) -> JobSummary | None:
        """Store one report if it changes its job, and append the change for the owner's
        sockets before the commit; the stored job, or None when nothing changed."""
        data = event.data
        job_id = job_uuid(data["job_id"])
        if job_id is None:
            self._unknown(data["job_id"])
            return None
        async with self.database.write() as conn:
            if event.event_type == "job_results":
                changed = await apply_results(conn, job_id, data)  # type: ignore[arg-type]
            else:
                changed = await apply_progress(conn, job_id, data)  # type: ignore[arg-type]
            if changed is not None:
                await self.store.append_to_rooms(job_events([changed], data.get("results")))
            else:
                status = await touch_job(conn, job_id)
        if changed is not None:
            self.stats.stored += 1
            metrics.JOB_REPORTS.labels("stored").inc()
            return changed
        if status is None:
            self._unknown(data["job_id"])
            return None
        self.stats.unchanged += 1
        metrics.JOB_REPORTS.labels("unchanged").inc()
        if status == "cancelled":
            await self._cancel_again(str(job_id))
        return None

    def _unknown(self, job_id: str) -> None:
        self.stats.unknown += 1
        metrics.JOB_REPORTS.labels("unknown").inc()
        self._warn("unknown", "job report for an unknown job %r: ignored", job_id[:64])

    async def _cancel_again(self, job_id: str) -> None:
        """The producer still reports on a job that was cancelled: it may have missed the
        cancellation (pub/sub), so say it again, at most every few seconds per job."""
        now = time.monotonic()
        if now - self._recancelled.get(job_id, 0.0) < RECANCEL_EVERY_S:
            return
        self._recancelled = {
            key: at for key, at in self._recancelled.items() if now - at < RECANCEL_EVERY_S
        }
        self._recancelled[job_id] = now
        with contextlib.suppress(*PAUSING):
            await self.publish(JOB_CANCEL_CHANNEL, dumps(cancel_message(job_id)))

    def _warn(self, key: str, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._logged.get(key, 0.0) >= LOG_EVERY_S:
            self._logged[key] = now
            log.warning(message, *args)

    # --- the sweep ------------------------------------------------------------------------------

    async def _sweep_loop(self) -> None:
        while True:
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except PAUSING as exc:
                self.stats.last_error = f"{type(exc).__name__}: {exc}"[:200]
                self._warn("sweep", "job sweep paused (%r); retrying", exc)
            except Exception as exc:
                self.stats.last_error = f"{type(exc).__name__}: {exc}"[:200]
                log.exception("job sweep failed; retrying")
            await asyncio.sleep(self.sweep_interval)

    async def sweep(self) -> None:
        """Fail the jobs never picked up and the stalled ones, then announce the queued ones
        whose last announcement is a few seconds old."""
        settings = self.settings
        async with self.database.write() as conn:
            unclaimed = await fail_unclaimed_jobs(conn, settings.job_pickup_seconds, SWEEP_LIMIT)
            stalled = await fail_stalled_jobs(conn, settings.job_stall_seconds, SWEEP_LIMIT)
            if unclaimed or stalled:
                await self.store.append_to_rooms(job_events([*unclaimed, *stalled]))
        self.stats.failed_unclaimed += len(unclaimed)
        self.stats.failed_stalled += len(stalled)
        for job in unclaimed:
            log.warning("job %s failed: the producer did not pick it up", job["id"])
        for job in stalled:
            log.warning("job %s failed: %s", job["id"], job["error"])
            # It may still be running somewhere: ask the producer to stop it.
            with contextlib.suppress(*PAUSING):
                await self.publish(JOB_CANCEL_CHANNEL, dumps(cancel_message(job["id"])))
        async with self.database.write() as conn:
            queued = await select_jobs_to_announce(conn, self.every, SWEEP_LIMIT)
            for waiting in queued:
                message = announcement_message(waiting, waiting["announcements"] + 1)
                await self.publish(announcement_channel(waiting["kind"]), dumps(message))
            if queued:
                await mark_announced(conn, [waiting["id"] for waiting in queued])
        self.stats.announced += len(queued)
